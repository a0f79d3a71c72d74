import t from 'tap';
import { decodeVirtioBlkConfig, encodeVirtioBlkConfig, VIRTIO_BLK_CONFIG_SIZE } from '../src';

t.test('encode/decode round trip at the documented offsets', async (t) => {
  const c = { capacity: 131072n, sizeMax: 131072, segMax: 126, blkSize: 4096, numQueues: 4, maxDiscardSectors: 32768, maxDiscardSeg: 1, maxWriteZeroesSectors: 32768, maxWriteZeroesSeg: 1, writeZeroesMayUnmap: 1 };
  const b = encodeVirtioBlkConfig(c);
  t.equal(b.length, VIRTIO_BLK_CONFIG_SIZE);
  t.equal(b.readUInt32LE(20), 4096, 'blk_size at 20');
  t.equal(b.readUInt16LE(34), 4, 'num_queues at 34');
  t.match(decodeVirtioBlkConfig(b), c);
});

t.test('a short config reads the missing fields as 0', async (t) => {
  const b = encodeVirtioBlkConfig({ capacity: 8n, blkSize: 512, numQueues: 2 }).subarray(0, 24);
  t.match(decodeVirtioBlkConfig(b), { capacity: 8n, blkSize: 512, numQueues: 0 });
});
