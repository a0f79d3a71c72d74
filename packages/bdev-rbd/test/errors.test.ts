import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RBD_ERRORS, rbdError } from '../src/errors';

t.test('every catalogue code is documented in docs/bdev-rbd.md', async (t) => {
  const page = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'bdev-rbd.md'), 'utf8');
  for (const code of Object.keys(RBD_ERRORS)) t.match(page, `\`${code}\``, `${code} documented`);
});

t.test('rbdError carries code, default or given errno, and cause', async (t) => {
  const cause = new Error('x');
  t.match(rbdError('RBD_OPEN_FAILED', 'nope', { errno: 5, cause }), { code: 'RBD_OPEN_FAILED', errno: 5, message: 'nope', cause });
  t.equal(rbdError('RBD_CLUSTER_IN_USE', 'm').errno, 16);
});
