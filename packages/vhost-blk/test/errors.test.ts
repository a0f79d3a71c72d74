import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isBlockworkError } from '@blockwork/core';
import { VHOST_BLK_ERRORS, vhostBlkError } from '../src/errors';

t.test('every code is listed in docs/vhost-blk.md', async (t) => {
  const doc = readFileSync(join(__dirname, '../../../docs/vhost-blk.md'), 'utf8');
  for (const code of Object.keys(VHOST_BLK_ERRORS)) t.match(doc, `\`${code}\``, code);
});

t.test('errors carry SPDK text, -32602, errno and a detail naming the object', async (t) => {
  const e = vhostBlkError('VHOST_BDEV_NOT_FOUND', "bdev 'x' does not exist");
  t.ok(isBlockworkError(e));
  t.match(e, { code: 'VHOST_BDEV_NOT_FOUND', errno: 19, rpcCode: -32602, message: 'No such device', data: { code: 'VHOST_BDEV_NOT_FOUND', detail: "bdev 'x' does not exist" } });
  t.equal(vhostBlkError('VHOST_PACKED_RING', 'packed ring is not supported yet').message, 'packed ring is not supported yet');
  t.equal(vhostBlkError('VHOST_CONTROLLER_NOT_FOUND', 'x', { rpcCode: -32603 }).rpcCode, -32603);
});
