import t from 'tap';
import { decodeVirtioBlkConfig, VirtioBlkFeature } from '@blockwork/vhost-user';
import { blkConfigImage, offeredFeatures, OFFERED_PROTOCOL_FEATURES } from '../src/blk-config';
import type { BlkDevice } from '../src/blk-request';

const dev = (over: Partial<BlkDevice> = {}): BlkDevice => ({
  blockSize: 4096, numBlocks: 1000, readonly: false, flush: true, unmap: true, writeZeroes: true, serial: new Uint8Array(0), ...over,
});
const has = (f: bigint, b: number) => (f & (1n << BigInt(b))) !== 0n;

t.test('features follow the bdev and the read-only flag', async (t) => {
  const rw = offeredFeatures(dev());
  t.ok(has(rw, VirtioBlkFeature.FLUSH) && has(rw, VirtioBlkFeature.DISCARD) && has(rw, VirtioBlkFeature.WRITE_ZEROES));
  t.notOk(has(rw, VirtioBlkFeature.RO));
  const bare = offeredFeatures(dev({ flush: false, unmap: false, writeZeroes: false }));
  t.notOk(has(bare, VirtioBlkFeature.FLUSH) || has(bare, VirtioBlkFeature.DISCARD) || has(bare, VirtioBlkFeature.WRITE_ZEROES));
  const ro = offeredFeatures(dev({ readonly: true }));
  t.ok(has(ro, VirtioBlkFeature.RO));
  t.notOk(has(ro, VirtioBlkFeature.DISCARD) || has(ro, VirtioBlkFeature.WRITE_ZEROES), 'no discard on a read-only controller');
  t.equal(OFFERED_PROTOCOL_FEATURES, 0x1120bn, 'MQ, LOG_SHMFD, REPLY_ACK, CONFIG, INFLIGHT_SHMFD, STATUS');
});

t.test('config image: capacity in 512-byte sectors, limits, 256 bytes', async (t) => {
  const img = blkConfigImage(dev(), 32);
  t.equal(img.length, 256);
  t.match(decodeVirtioBlkConfig(img), {
    capacity: 8000n, blkSize: 4096, sizeMax: 131072, segMax: 126, minIoSize: 1, optIoSize: 32, numQueues: 64,
    maxDiscardSectors: 32768, maxDiscardSeg: 1, discardSectorAlignment: 8, maxWriteZeroesSectors: 32768, maxWriteZeroesSeg: 1, writeZeroesMayUnmap: 1,
  });
  t.ok(img.subarray(60).every((b) => b === 0), 'zero past the struct');
  t.equal(decodeVirtioBlkConfig(blkConfigImage(null)).capacity, 0n, 'no device: capacity 0');
});
