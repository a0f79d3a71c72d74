import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { BdevLayer, createLogger, MallocBdevModule } from '@blockwork/core';
import { encodeU64, type VhostUserConnection, VhostUserFlags, VhostUserListener, VhostUserRequest } from '@blockwork/vhost-user';
import { VhostBlkController } from '../src/vhost-blk-controller';
import { tempDir } from './fixtures/daemon';

const log = createLogger('silent');

function layerWithMalloc(): BdevLayer {
  const layer = new BdevLayer();
  new MallocBdevModule(layer).create({ name: 'Malloc0', uuid: randomUUID(), numBlocks: 2048, blockSize: 512, physicalBlockSize: 512, optimalIoBoundary: 0 });
  return layer;
}

const opts = { ctrlr: 'v0', devName: 'Malloc0', cpumask: undefined, readonly: false, client: false };

t.test('a stale socket at the path is replaced', async (t) => {
  const dir = tempDir(t);
  const stale = createServer();
  await new Promise<void>((r) => stale.listen(join(dir, 'v0'), r));
  // Close the server without unlinking: the socket file stays, as after a crash.
  (stale as unknown as { _handle: { close(): void } })._handle.close();
  const c = await VhostBlkController.create(opts, layerWithMalloc(), dir, log);
  t.teardown(() => c.destroy());
  t.ok(statSync(join(dir, 'v0')).isSocket());
});

t.test('a regular file at the path is left alone and the create fails', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'v0'), 'data');
  const layer = layerWithMalloc();
  await t.rejects(VhostBlkController.create(opts, layer, dir, log), { code: 'VHOST_SOCKET' });
  t.equal(layer.inUse('Malloc0'), false, 'bdev closed on failure');
  t.ok(statSync(join(dir, 'v0')).isFile());
});

t.test('a socket path over 107 bytes fails with VHOST_SOCKET', async (t) => {
  const dir = join(tempDir(t), 'x'.repeat(100));
  mkdirSync(dir);
  await t.rejects(VhostBlkController.create(opts, layerWithMalloc(), dir, log), { code: 'VHOST_SOCKET' });
});

t.test('destroy closes the bdev (no claim was taken) and removes the socket', async (t) => {
  const dir = tempDir(t);
  const layer = layerWithMalloc();
  const c = await VhostBlkController.create(opts, layer, dir, log);
  t.equal(layer.claimOf('Malloc0'), null, 'no claim, as SPDK');
  await c.destroy();
  t.equal(layer.inUse('Malloc0'), false);
  t.throws(() => statSync(join(dir, 'v0')));
});

/** A listening "front end" (QEMU server=on) handing out accepted connections in order. */
async function frontEndSocket(t: Test, path: string): Promise<{ listener: VhostUserListener; next(): Promise<VhostUserConnection>; count(): number }> {
  const ready: VhostUserConnection[] = [];
  const waiting: Array<(c: VhostUserConnection) => void> = [];
  let n = 0;
  const listener = await VhostUserListener.listen(path, {}, (c) => {
    n++;
    t.teardown(() => c.close());
    const w = waiting.shift();
    if (w) w(c);
    else ready.push(c);
  });
  t.teardown(() => listener.close());
  return { listener, count: () => n, next: () => new Promise((r) => (ready.length > 0 ? r(ready.shift()!) : waiting.push(r))) };
}

function features(c: VhostUserConnection): Promise<bigint> {
  return new Promise((resolve) => {
    c.onMessage = (m) => resolve(m.payload.readBigUInt64LE(0));
    c.send(VhostUserRequest.GET_FEATURES, VhostUserFlags.VERSION, new Uint8Array(0));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('client mode: creates no socket, connects once the front end listens, and serves the connection', async (t) => {
  const dir = tempDir(t);
  const c = await VhostBlkController.create({ ...opts, client: true }, layerWithMalloc(), dir, log);
  t.teardown(() => c.destroy());
  await sleep(50);
  t.notOk(existsSync(join(dir, 'v0')), 'the controller did not create the socket');
  const fe = await frontEndSocket(t, join(dir, 'v0'));
  const conn = await fe.next();
  t.equal(await features(conn), c.features(), 'the session answers GET_FEATURES');
  t.equal(c.sessions.size, 1);
});

t.test('client mode: reconnects when the front end drops the connection; destroy stops connecting and leaves the socket', async (t) => {
  const dir = tempDir(t);
  const fe = await frontEndSocket(t, join(dir, 'v0'));
  const c = await VhostBlkController.create({ ...opts, client: true }, layerWithMalloc(), dir, log);
  const first = await fe.next();
  first.close();
  const second = await fe.next();
  t.ok(await features(second), 'a new session on the new connection');
  await c.destroy();
  t.ok(statSync(join(dir, 'v0')).isSocket(), "the front end's socket is left in place");
  await fe.listener.close();
  const fe2 = await frontEndSocket(t, join(dir, 'v0'));
  await sleep(100);
  t.equal(fe2.count(), 0, 'no connection after destroy');
});

t.test('client mode: a front end that drops the connection during the set-up is retried after a second, not at once', async (t) => {
  const dir = tempDir(t);
  const fe = await frontEndSocket(t, join(dir, 'v0'));
  const c = await VhostBlkController.create({ ...opts, client: true }, layerWithMalloc(), dir, log);
  t.teardown(() => c.destroy());
  const first = await fe.next();
  await features(first); // the front end talked to this back end, then refuses it
  first.close();
  await sleep(500);
  t.equal(fe.count(), 1, 'no reconnect within 500 ms');
  const second = await fe.next();
  t.ok(await features(second), 'reconnected after the back-off');
});

t.test('client mode: a path over 107 bytes fails with VHOST_SOCKET and releases the bdev', async (t) => {
  const dir = join(tempDir(t), 'x'.repeat(100));
  mkdirSync(dir);
  const layer = layerWithMalloc();
  await t.rejects(VhostBlkController.create({ ...opts, client: true }, layer, dir, log), { code: 'VHOST_SOCKET' });
  t.equal(layer.inUse('Malloc0'), false);
});
