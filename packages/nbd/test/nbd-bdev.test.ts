import t from 'tap';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { allocAligned, Errno, io, type IoChannel, IoType } from '@blockwork/core';
import { exportingDaemon, startDaemon, tempDir } from './fixtures/helpers';

function submit(ch: IoChannel, type: IoType, off: number, n: number, iovs: Uint8Array[] = []): Promise<number> {
  return new Promise((resolve) => ch.submit(type, off, n, iovs, (s) => resolve(s)));
}

t.test('attach reports geometry and driver_specific; detach removes the bdev', async (t) => {
  const dir = tempDir(t);
  const { d: server, socket } = await exportingDaemon(dir, { blocks: 1024, blockSize: 4096 });
  t.teardown(() => server.stop());
  const d = await startDaemon();
  t.teardown(() => d.stop());
  await d.call('bdev_nbd_attach', { name: 'r0', socket, export_name: 'disk' });
  const [b] = (await d.call('bdev_get_bdevs', { name: 'r0' })) as Array<Record<string, unknown>>;
  t.match(b, { product_name: 'NBD disk', block_size: 4096, num_blocks: 1024, driver_specific: { nbd: { socket, export_name: 'disk', address: null, port: null } } });
  await t.rejects(d.call('bdev_nbd_attach', { name: 'r0', socket, export_name: 'disk' }), { code: 'BDEV_EXISTS' });
  await t.rejects(d.call('bdev_nbd_attach', { name: 'r1', socket, export_name: 'nope' }), { code: 'NBD_EXPORT_REFUSED' });
  await t.rejects(d.call('bdev_nbd_attach', { name: 'r1', socket: join(dir, 'none.sock') }), { code: 'NBD_CONNECT_FAILED' });
  await t.rejects(d.call('bdev_nbd_attach', { name: 'r1', socket, port: 1 }), { code: 'NBD_ADDRESS' });
  await d.call('bdev_malloc_create', { name: 'm', num_blocks: 16, block_size: 512 });
  await t.rejects(d.call('bdev_nbd_detach', { name: 'm' }), { code: 'NBD_NOT_NBD_BDEV' });
  t.equal(await d.call('bdev_nbd_detach', { name: 'r0' }), true);
  t.same(await d.call('bdev_get_bdevs', { name: 'r0' }).catch((e) => e.code), 'BDEV_NOT_FOUND');
});

t.test('not an NBD server → NBD_HANDSHAKE', async (t) => {
  const sock = join(tempDir(t), 'junk.sock');
  const junk = createServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\nxxxxxxxxxxxxxxxx'));
  await new Promise<void>((r) => junk.listen(sock, r));
  t.teardown(() => junk.close());
  const d = await startDaemon();
  t.teardown(() => d.stop());
  await t.rejects(d.call('bdev_nbd_attach', { name: 'j', socket: sock }), { code: 'NBD_HANDSHAKE' });
});

t.test('I/O larger than the server maximum (32 MiB) is split and reassembled', async (t) => {
  const { d: server, socket } = await exportingDaemon(tempDir(t), { blocks: 40960, blockSize: 2048 });
  t.teardown(() => server.stop());
  const d = await startDaemon();
  t.teardown(() => d.stop());
  await d.call('bdev_nbd_attach', { name: 'big', socket, export_name: 'disk' });
  const desc = d.layer.open('big', true);
  t.teardown(() => desc.close());
  const ch = desc.getIoChannel();
  const n = (40 << 20) / 2048;
  const data = allocAligned(40 << 20, 4096);
  for (let i = 0; i < data.length; i += 4096) data[i] = (i / 4096) & 0xff;
  await io.write(ch, data, 0, n);
  const back = allocAligned(40 << 20, 4096);
  await io.read(ch, back, 0, n);
  t.ok(Buffer.from(back).equals(Buffer.from(data)), '40 MiB round trip');
  await io.writeZeroes(ch, 0, n);
  await io.read(ch, back, 0, n);
  t.ok(back.every((x) => x === 0), '40 MiB write_zeroes');
});

t.test('server goes away: in-flight I/O fails with -EIO, later I/O -ENOTCONN, reconnect on next I/O once it is back', async (t) => {
  const dir = tempDir(t);
  const { d: server, socket } = await exportingDaemon(dir);
  t.teardown(() => server.stop());
  const d = await startDaemon();
  t.teardown(() => d.stop());
  await d.call('bdev_nbd_attach', { name: 'r0', socket, export_name: 'disk' });
  const desc = d.layer.open('r0', true);
  t.teardown(() => desc.close());
  const ch = desc.getIoChannel();
  await io.write(ch, Buffer.alloc(512, 0x11), 3, 1);
  // Stop the listener and drop connections: our requests below are in flight or about to be.
  const inflight = Array.from({ length: 8 }, (_, i) => submit(ch, IoType.WRITE, i, 1, [Buffer.alloc(512, 1)]));
  await server.call('nbd_server_stop');
  const statuses = await Promise.all(inflight);
  for (const s of statuses) t.ok(s === 0 || s === -Errno.EIO, `in-flight I/O ended with ${s} (0 or -EIO), not hung`);
  t.equal(await submit(ch, IoType.READ, 0, 1, [Buffer.alloc(512)]), -Errno.ENOTCONN, 'server down: -ENOTCONN');
  t.ok(d.layer.get('r0'), 'the bdev stays');
  await server.call('nbd_server_start', { socket });
  const buf = Buffer.alloc(512);
  t.equal(await submit(ch, IoType.READ, 3, 1, [buf]), 0, 'next I/O reconnects');
  t.same(buf, Buffer.alloc(512, 0x11), 'and reads the data');
});

t.test('server killed mid-read: the read fails with -EIO, never hangs', async (t) => {
  const sock = join(tempDir(t), 'fake.sock');
  const { d: real, socket } = await exportingDaemon(tempDir(t));
  t.teardown(() => real.stop());
  // A proxy that negotiates through to the real server, then dies after the first request header.
  let requests = 0;
  const proxy = createServer((c) => {
    const up = connect(socket);
    c.on('data', (b) => {
      if (requests > 0 && b.length >= 28) {
        c.destroy();
        up.destroy();
        return;
      }
      up.write(b);
    });
    up.on('data', (b) => c.write(b));
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => proxy.listen(sock, r));
  t.teardown(() => proxy.close());
  const d = await startDaemon();
  t.teardown(() => d.stop());
  await d.call('bdev_nbd_attach', { name: 'p0', socket: sock, export_name: 'disk' });
  requests = 1;
  const desc = d.layer.open('p0', false);
  t.teardown(() => desc.close());
  t.equal(await submit(desc.getIoChannel(), IoType.READ, 0, 1, [Buffer.alloc(512)]), -Errno.EIO);
});
