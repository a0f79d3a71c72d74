import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NBD_ERRORS, nbdError } from '../src/errors';

t.test('every catalogue code is documented in docs/nbd.md', async (t) => {
  const page = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'nbd.md'), 'utf8');
  for (const code of Object.keys(NBD_ERRORS)) t.match(page, `\`${code}\``, `${code} documented`);
});

t.test('nbdError carries code, default or given errno, and cause', async (t) => {
  const cause = new Error('x');
  t.match(nbdError('NBD_CONNECT_FAILED', 'nope', { errno: 113, cause }), { code: 'NBD_CONNECT_FAILED', errno: 113, message: 'nope', cause });
  t.equal(nbdError('NBD_EXPORT_NOT_FOUND', 'm').errno, 2);
});
