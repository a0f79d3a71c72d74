import t from 'tap';
import { Errno } from '@blockwork/core';
import {
  decodeInfoRequest, decodeRequest, encodeInfoRequest, encodeRequest, encodeSimpleReply, NBD_CMD_WRITE, NBD_CMD_FLAG_FUA,
  NBD_EINVAL, NBD_EIO, NBD_EPERM, NBD_ESHUTDOWN, NBD_SIMPLE_REPLY_MAGIC, nbdErrorOf, statusOfNbdError,
} from '../src/protocol';
import { segmentsOf } from '../src/server-request';

t.test('request header round trip, offsets above 4 GiB', async (t) => {
  const b = Buffer.alloc(28);
  encodeRequest(b, 0, NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 0xdeadbeef, 42, 5 * 2 ** 32 + 4096, 65536);
  t.match(decodeRequest(b), { type: NBD_CMD_WRITE, flags: NBD_CMD_FLAG_FUA, handleHi: 0xdeadbeef, handleLo: 42, offset: 5 * 2 ** 32 + 4096, offsetSafe: true, length: 65536 });
  b.writeUInt32BE(0xffffffff, 16);
  t.equal(decodeRequest(b)!.offsetSafe, false, 'offset beyond 2^53 flagged');
  b.writeUInt32BE(0x12345678, 0);
  t.equal(decodeRequest(b), null, 'bad magic');
});

t.test('simple reply header', async (t) => {
  const b = Buffer.alloc(16);
  encodeSimpleReply(b, 0, NBD_EINVAL, 1, 2);
  t.same([b.readUInt32BE(0), b.readUInt32BE(4), b.readUInt32BE(8), b.readUInt32BE(12)], [NBD_SIMPLE_REPLY_MAGIC, 22, 1, 2]);
});

t.test('NBD_OPT_GO data round trip; inconsistent lengths rejected', async (t) => {
  t.same(decodeInfoRequest(encodeInfoRequest('vol', [3, 0])), { name: 'vol', infos: [3, 0] });
  const bad = encodeInfoRequest('vol', [3]);
  bad.writeUInt32BE(100, 0);
  t.equal(decodeInfoRequest(bad), null);
  t.equal(decodeInfoRequest(Buffer.alloc(3)), null);
});

t.test('errno mapping both ways', async (t) => {
  t.equal(nbdErrorOf(0), 0);
  t.equal(nbdErrorOf(-Errno.EROFS), NBD_EPERM);
  t.equal(nbdErrorOf(-Errno.ENODEV), NBD_ESHUTDOWN);
  t.equal(nbdErrorOf(-Errno.ETIMEDOUT), NBD_EIO);
  t.equal(statusOfNbdError(NBD_EINVAL), -Errno.EINVAL);
  t.equal(statusOfNbdError(12345), -Errno.EIO);
});

t.test('unaligned ranges split into partial head, whole middle, partial tail', async (t) => {
  t.same(segmentsOf(100, 1000, 512).map((x) => [x.partial, x.blk, x.nBlocks, x.len]), [[true, 0, 1, 412], [false, 1, 1, 512], [true, 2, 1, 76]]);
  const s = segmentsOf(100, 2000, 512);
  t.same(s.map((x) => [x.partial, x.blk, x.nBlocks, x.inBlk, x.len, x.srcOff]), [
    [true, 0, 1, 100, 412, 0], [false, 1, 3, 0, 1536, 412], [true, 4, 1, 0, 52, 1948],
  ]);
  t.same(segmentsOf(10, 20, 512).map((x) => [x.partial, x.blk, x.inBlk, x.len]), [[true, 0, 10, 20]]);
  t.same(segmentsOf(1024, 1024, 512).map((x) => [x.partial, x.blk, x.nBlocks]), [[false, 2, 2]]);
});
