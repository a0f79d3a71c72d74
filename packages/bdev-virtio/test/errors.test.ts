import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VIRTIO_ERRORS, virtioError } from '../src/errors';

t.test('every catalogue code is documented in docs/bdev-virtio.md', async (t) => {
  const page = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'bdev-virtio.md'), 'utf8');
  for (const code of Object.keys(VIRTIO_ERRORS)) t.match(page, `\`${code}\``, `${code} documented`);
});

t.test('virtioError carries code, default or given errno, and cause', async (t) => {
  const cause = new Error('x');
  t.match(virtioError('VIRTIO_CONNECT_FAILED', 'm', { errno: 2, cause }), { code: 'VIRTIO_CONNECT_FAILED', errno: 2, cause });
  t.equal(virtioError('VIRTIO_TIMEOUT', 'm').errno, 110);
});
