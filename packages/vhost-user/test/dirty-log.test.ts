import t from 'tap';
import { closeFd, decodeLog, encodeLog, LOG_PAGE_SIZE, markDirtyPages, memfdCreate, mmapFd, VhostUserRequest as R } from '../src/index';

t.test('markDirtyPages sets one bit per 4 KiB page, skips and counts pages past the log', async (t) => {
  const log = new ArrayBuffer(4);
  const b = new Uint8Array(log);
  t.equal(markDirtyPages(log, 3 * LOG_PAGE_SIZE + 17, 2 * LOG_PAGE_SIZE), 0, 'pages 3, 4, 5');
  t.equal(b[0], 0b00111000);
  t.equal(markDirtyPages(log, 9 * LOG_PAGE_SIZE - 1, 2), 0, 'a 2-byte store across pages 8 and 9');
  t.equal(b[1], 0b00000011);
  t.equal(markDirtyPages(log, 30 * LOG_PAGE_SIZE, 4 * LOG_PAGE_SIZE), 2, 'pages 30, 31 set; 32, 33 past the 32-page log');
  t.equal(b[3], 0b11000000);
  t.equal(markDirtyPages(log, 2 ** 40, 1), 1, 'far past the log: nothing written');
  t.equal(markDirtyPages(log, 0, 0), 0, 'zero length marks nothing');
  t.same([...b], [0x38, 0x03, 0x00, 0xc0]);
  t.throws(() => markDirtyPages(log, -1, 1), TypeError);
  t.throws(() => markDirtyPages(log, 0.5, 1), TypeError);
  t.throws(() => markDirtyPages(log, 2 ** 60, 1), TypeError);
});

t.test('markDirtyPages on a shared mapping: the bits are visible through another mapping of the fd', async (t) => {
  const fd = memfdCreate('log', 4096);
  const a = mmapFd(fd, 64, 32);
  const b = mmapFd(fd, 4096, 0);
  t.teardown(() => { a.unmap(); b.unmap(); closeFd(fd); });
  markDirtyPages(a.buffer, 0x100000, 1);
  t.equal(new Uint8Array(b.buffer)[32 + 0x100000 / LOG_PAGE_SIZE / 8], 1);
});

t.test('SET_LOG_BASE payload codec: 16 bytes, u64 size then offset', async (t) => {
  const p = encodeLog({ mmapSize: 4096n, mmapOffset: 1n << 40n });
  t.equal(p.length, 16);
  t.same(decodeLog(R.SET_LOG_BASE, p), { mmapSize: 4096n, mmapOffset: 1n << 40n });
  t.throws(() => decodeLog(R.SET_LOG_BASE, Buffer.alloc(8)), { code: 'VHOST_USER_PAYLOAD', message: /SET_LOG_BASE: payload is 8 bytes, expected 16/ });
});
