import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VHOST_USER_ERRORS, vhostUserError } from '../src';

t.test('every catalogue code is documented in docs/vhost-user.md', async (t) => {
  const page = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'vhost-user.md'), 'utf8');
  for (const code of Object.keys(VHOST_USER_ERRORS)) t.match(page, `\`${code}\``, `${code} documented`);
});

t.test('vhostUserError carries code, default or given errno, and cause', async (t) => {
  const cause = new Error('x');
  t.match(vhostUserError('VHOST_USER_CONNECT_FAILED', 'm', { errno: 2, cause }), { code: 'VHOST_USER_CONNECT_FAILED', errno: 2, cause });
  t.equal(vhostUserError('VHOST_USER_FRAMING', 'm').errno, 71);
});
