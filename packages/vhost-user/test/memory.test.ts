import t from 'tap';
import { closeFd, fdSize, memfdCreate, mmapFd, ringOrder } from '../src';

t.test('memfdCreate makes a zeroed fd of the requested size', async (t) => {
  const fd = memfdCreate('bw', 12345);
  t.teardown(() => closeFd(fd));
  t.equal(fdSize(fd), 12345);
  const m = mmapFd(fd, 12345, 0);
  t.equal(m.buffer.byteLength, 12345);
  t.equal(m.size, 12345);
  t.ok(new Uint8Array(m.buffer).every((b) => b === 0));
  m.unmap();
});

t.test('mmapFd refuses a range past the end of the fd', async (t) => {
  const fd = memfdCreate('bw', 8192);
  t.teardown(() => closeFd(fd));
  t.throws(() => mmapFd(fd, 8193, 0), { code: 'VHOST_USER_MMAP_RANGE' });
  t.throws(() => mmapFd(fd, 4096, 4097), { code: 'VHOST_USER_MMAP_RANGE' });
  t.throws(() => mmapFd(fd, 0, 0), { code: 'VHOST_USER_MMAP_RANGE' });
  const ok = mmapFd(fd, 4096, 4096);
  ok.unmap();
  t.pass('offset + size == file size is fine');
});

t.test('an unaligned offset maps the right bytes', async (t) => {
  const fd = memfdCreate('bw', 16384);
  t.teardown(() => closeFd(fd));
  const whole = mmapFd(fd, 16384, 0);
  new Uint8Array(whole.buffer)[5000] = 0x5a;
  const part = mmapFd(fd, 100, 4999);
  t.equal(new Uint8Array(part.buffer)[1], 0x5a);
  part.unmap();
  whole.unmap();
});

t.test('unmap detaches the buffer so old views are empty, and is idempotent', async (t) => {
  const fd = memfdCreate('bw', 4096);
  t.teardown(() => closeFd(fd));
  const m = mmapFd(fd, 4096, 0);
  const view = new Uint8Array(m.buffer);
  m.unmap();
  t.equal(view.length, 0);
  t.equal(m.buffer.byteLength, 0);
  m.unmap();
  t.pass();
});

t.test('a read-only mapping of a writable memfd', async (t) => {
  const fd = memfdCreate('bw', 4096);
  t.teardown(() => closeFd(fd));
  const rw = mmapFd(fd, 4096, 0);
  const ro = mmapFd(fd, 4096, 0, { writable: false });
  new Uint8Array(rw.buffer)[0] = 9;
  t.equal(new Uint8Array(ro.buffer)[0], 9);
  ro.unmap();
  rw.unmap();
});

t.test('closeFd and fdSize report errno on a bad fd', async (t) => {
  t.throws(() => closeFd(987654), { code: 'VHOST_USER_SYSCALL', errno: 9 });
  t.throws(() => fdSize(987654), { code: 'VHOST_USER_SYSCALL', errno: 9 });
});

t.test('ringOrder stores and loads 16-bit indices and checks bounds', async (t) => {
  const fd = memfdCreate('bw', 4096);
  t.teardown(() => closeFd(fd));
  const m = mmapFd(fd, 4096, 0);
  const v = new Uint16Array(m.buffer, 0, 8);
  ringOrder.storeRelease16(v, 1, 0x1234);
  ringOrder.storeFence16(v, 2, 0xffff + 2);
  t.equal(ringOrder.loadAcquire16(v, 1), 0x1234);
  t.equal(v[2], 1, 'wraps at 16 bits');
  t.throws(() => ringOrder.loadAcquire16(v, 8), TypeError);
  m.unmap();
});
