import t from 'tap';
import {
  decodeConfig, decodeInflight, decodeMemoryTable, decodeU64, decodeVringAddr, decodeVringFd, decodeVringState,
  encodeConfig, encodeInflight, encodeMemoryTable, encodeU64, encodeVringAddr, encodeVringFd, encodeVringState, VhostUserRequest as R,
} from '../src';

t.test('u64 round trip keeps all 64 bits', async (t) => {
  t.equal(decodeU64(R.SET_FEATURES, encodeU64(0xffff_ffff_ffff_fffen)), 0xffff_ffff_ffff_fffen);
  t.throws(() => decodeU64(R.SET_FEATURES, Buffer.alloc(4)), { code: 'VHOST_USER_PAYLOAD', message: /SET_FEATURES: payload is 4 bytes, expected 8/ });
});

t.test('vring state and addr round trip; wrong sizes are refused', async (t) => {
  t.same(decodeVringState(R.SET_VRING_NUM, encodeVringState({ index: 1, num: 256 })), { index: 1, num: 256 });
  const a = { index: 0, flags: 0, desc: 0x1000n, used: 0x3000n, avail: 0x2000n, log: 0n };
  const enc = encodeVringAddr(a);
  t.equal(enc.readBigUInt64LE(16), 0x3000n, 'used comes before avail on the wire');
  t.same(decodeVringAddr(R.SET_VRING_ADDR, enc), a);
  t.throws(() => decodeVringAddr(R.SET_VRING_ADDR, Buffer.alloc(39)), { code: 'VHOST_USER_PAYLOAD', message: /SET_VRING_ADDR/ });
  t.throws(() => decodeVringState(R.GET_VRING_BASE, Buffer.alloc(0)), { message: /GET_VRING_BASE/ });
});

t.test('vring fd payload: index and no-fd bit', async (t) => {
  t.same(decodeVringFd(R.SET_VRING_KICK, encodeVringFd(3)), { index: 3, noFd: false });
  t.same(decodeVringFd(R.SET_VRING_CALL, encodeVringFd(1, true)), { index: 1, noFd: true });
  t.throws(() => decodeVringFd(R.SET_VRING_KICK, encodeU64(1n << 20n)), { code: 'VHOST_USER_PAYLOAD' });
});

t.test('memory table: exact and full-size payloads, bad counts and sizes', async (t) => {
  const regions = [
    { guestPhysAddr: 0n, memorySize: 1n << 20n, userspaceAddr: 0x7f00_0000_0000n, mmapOffset: 0n },
    { guestPhysAddr: 1n << 32n, memorySize: 4096n, userspaceAddr: 0x7f10_0000_0000n, mmapOffset: 8192n },
  ];
  const enc = encodeMemoryTable({ regions });
  t.equal(enc.length, 8 + 64);
  t.same(decodeMemoryTable(R.SET_MEM_TABLE, enc).regions, regions);
  const full = Buffer.alloc(8 + 8 * 32);
  enc.copy(full);
  t.same(decodeMemoryTable(R.SET_MEM_TABLE, full).regions, regions, 'sizeof(VhostUserMemory) accepted');
  t.throws(() => decodeMemoryTable(R.SET_MEM_TABLE, Buffer.alloc(8)), { message: /nregions 0/ });
  const nine = Buffer.alloc(8 + 9 * 32);
  nine.writeUInt32LE(9);
  t.throws(() => decodeMemoryTable(R.SET_MEM_TABLE, nine), { message: /nregions 9/ });
  t.throws(() => decodeMemoryTable(R.SET_MEM_TABLE, enc.subarray(0, 50)), { message: /50 bytes for 2 regions/ });
  const empty = encodeMemoryTable({ regions: [{ ...regions[0], memorySize: 0n }] });
  t.throws(() => decodeMemoryTable(R.SET_MEM_TABLE, empty), { message: /size 0/ });
  const wrap = encodeMemoryTable({ regions: [{ ...regions[0], guestPhysAddr: 0xffff_ffff_ffff_f000n, memorySize: 0x2000n }] });
  t.throws(() => decodeMemoryTable(R.SET_MEM_TABLE, wrap), { message: /wraps/ });
});

t.test('config: header + bytes, limits enforced', async (t) => {
  const enc = encodeConfig({ offset: 0, size: 60 });
  t.equal(enc.length, 72);
  const d = decodeConfig(R.GET_CONFIG, enc);
  t.match(d, { offset: 0, size: 60, flags: 0 });
  t.equal(d.payload.length, 60);
  t.same([...decodeConfig(R.SET_CONFIG, encodeConfig({ offset: 32, size: 1, payload: Buffer.from([1]) })).payload], [1]);
  t.throws(() => decodeConfig(R.GET_CONFIG, encodeConfig({ offset: 0, size: 257 })), { message: /257 exceeds 256/ });
  t.throws(() => decodeConfig(R.GET_CONFIG, encodeConfig({ offset: 0, size: 10 }).subarray(0, 15)), { message: /15 bytes for a 10-byte config/ });
  t.throws(() => decodeConfig(R.GET_CONFIG, Buffer.alloc(4)), { message: /at least 12/ });
});

t.test('inflight: 24-byte (padded) and 20-byte payloads', async (t) => {
  const i = { mmapSize: 4224n, mmapOffset: 0n, numQueues: 2, queueSize: 128 };
  const enc = encodeInflight(i);
  t.equal(enc.length, 24);
  t.same(decodeInflight(R.GET_INFLIGHT_FD, enc), i);
  t.same(decodeInflight(R.SET_INFLIGHT_FD, enc.subarray(0, 20)), i);
  t.throws(() => decodeInflight(R.SET_INFLIGHT_FD, Buffer.alloc(16)), { message: /SET_INFLIGHT_FD: payload is 16 bytes/ });
});
