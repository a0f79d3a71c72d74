import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { URING_ERRORS, uringError } from '../src/errors';

t.test('every catalogue code is documented in docs/bdev-uring.md', async (t) => {
  const page = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'bdev-uring.md'), 'utf8');
  for (const code of Object.keys(URING_ERRORS)) t.match(page, `\`${code}\``, `${code} documented`);
});

t.test('uringError carries code, default or given errno, and cause', async (t) => {
  const cause = new Error('x');
  const e = uringError('URING_FILE_NOT_WRITABLE', 'nope', { errno: 30, cause });
  t.match(e, { code: 'URING_FILE_NOT_WRITABLE', errno: 30, message: 'nope', cause });
  t.equal(uringError('URING_FILE_NOT_FOUND', 'm').errno, 2);
});
