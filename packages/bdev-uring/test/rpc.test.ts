import t from 'tap';
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { allocAligned, type BdevEvent, io } from '@blockwork/core';
import { makeFile, setup, tempDir } from './fixtures/env';

/** The error a call threw (or undefined). */
async function errorOf(f: () => unknown): Promise<{ code?: string; errno?: number; message?: string } | undefined> {
  try {
    await f();
    return undefined;
  } catch (e) {
    return e as { code: string; errno: number; message: string };
  }
}

t.test('every method and param is described', async (t) => {
  const { module } = setup(t);
  const methods = module.rpcMethods();
  t.same(methods.map((m) => m.name), ['bdev_uring_create', 'bdev_uring_delete', 'bdev_uring_rescan']);
  for (const m of methods) {
    t.ok(m.description.length > 10, `${m.name} has a description`);
    for (const [k, p] of Object.entries(m.params?.properties ?? {})) t.ok(p.description.length > 5, `${m.name}.${k} described`);
  }
  t.same(methods[0].params?.required, ['filename', 'name']);
});

t.test('create returns the name and registers a bdev', async (t) => {
  const { layer, call } = setup(t);
  const file = makeFile(tempDir(t), 'a.img', 1 << 20);
  t.equal(await call('bdev_uring_create', { filename: file, name: 'u0' }), 'u0');
  const b = layer.require('u0');
  t.equal(b.blockSize, 512);
  t.equal(b.numBlocks, 2048);
  t.match(b.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'random v4 uuid');
  t.equal(await call('bdev_uring_create', { filename: makeFile(tempDir(t), 'b.img', 1 << 20), name: 'u1', block_size: 4096, uuid: 'AAAAAAAA-0000-4000-8000-000000000001' }), 'u1');
  t.equal(layer.require('u1').blockSize, 4096);
  t.equal(layer.require('u1').uuid, 'aaaaaaaa-0000-4000-8000-000000000001', 'given uuid, lower-cased');
});

t.test('duplicate name fails with BDEV_EXISTS', async (t) => {
  const { call } = setup(t);
  const file = makeFile(tempDir(t), 'a.img', 1 << 20);
  await call('bdev_uring_create', { filename: file, name: 'u0' });
  const e = await errorOf(() => call('bdev_uring_create', { filename: file, name: 'u0' }));
  t.equal(e?.code, 'BDEV_EXISTS');
  t.equal(e?.errno, 17);
});

t.test('missing file fails with ENOENT naming the file', async (t) => {
  const { call } = setup(t);
  const missing = join(tempDir(t), 'nope.img');
  const e = await errorOf(() => call('bdev_uring_create', { filename: missing, name: 'u0' }));
  t.equal(e?.code, 'URING_FILE_NOT_FOUND');
  t.equal(e?.errno, 2);
  t.match(e?.message, missing);
});

t.test('a directory fails with EISDIR', async (t) => {
  const { call } = setup(t);
  const dir = join(tempDir(t), 'sub');
  mkdirSync(dir);
  const e = await errorOf(() => call('bdev_uring_create', { filename: dir, name: 'u0' }));
  t.equal(e?.code, 'URING_FILE_IS_DIRECTORY');
  t.equal(e?.errno, 21);
  t.match(e?.message, dir);
});

t.test('a file that cannot be opened for writing fails with EACCES', async (t) => {
  const { call } = setup(t);
  // Tests run as root, which bypasses file modes. Read-only sysctl files (mode 0444) refuse O_RDWR
  // even to root: procfs checks the mode bits itself instead of honouring CAP_DAC_OVERRIDE.
  const path = '/proc/sys/kernel/osrelease';
  const e = await errorOf(() => call('bdev_uring_create', { filename: path, name: 'u0' }));
  t.equal(e?.code, 'URING_FILE_NOT_WRITABLE');
  t.equal(e?.errno, 13);
  t.match(e?.message, path);
});

t.test('delete unregisters; unknown names fail with ENODEV', async (t) => {
  const { layer, call, module } = setup(t);
  await call('bdev_uring_create', { filename: makeFile(tempDir(t), 'a.img', 1 << 20), name: 'u0' });
  t.equal(await call('bdev_uring_delete', { name: 'u0' }), true);
  t.equal(layer.get('u0'), undefined);
  t.same(module.bdevNames(), []);
  const e = await errorOf(() => call('bdev_uring_delete', { name: 'u0' }));
  t.equal(e?.code, 'BDEV_NOT_FOUND');
  t.equal(e?.errno, 19);
});

t.test('delete with I/O in flight completes or fails those I/Os cleanly', async (t) => {
  const { layer, call } = setup(t);
  await call('bdev_uring_create', { filename: makeFile(tempDir(t), 'a.img', 8 << 20), name: 'u0' });
  const events: BdevEvent[] = [];
  const desc = layer.open('u0', true, (ev) => events.push(ev));
  const ch = desc.getIoChannel();
  const statuses: number[] = [];
  const N = 600;
  for (let i = 0; i < N; i++) ch.write([allocAligned(4096)], i * 8, 8, (s) => statuses.push(s));
  const deleting = call('bdev_uring_delete', { name: 'u0' });
  let late = 1;
  ch.read([allocAligned(512)], 0, 1, (s) => { late = s; });
  await deleting;
  desc.close();
  t.equal(statuses.length, N, 'every in-flight I/O completed');
  t.ok(statuses.every((s) => s === 0 || s === -19), 'each completed with success or -ENODEV');
  t.equal(late, -19, 'I/O submitted after delete started fails with -ENODEV');
  t.same(events, ['remove'], 'descriptor owner heard of the removal');
  t.equal(layer.get('u0'), undefined);
});

t.test('rescan picks up a grown file and notifies descriptors', async (t) => {
  const { layer, call } = setup(t);
  const file = makeFile(tempDir(t), 'a.img', 1 << 20);
  await call('bdev_uring_create', { filename: file, name: 'u0' });
  const events: BdevEvent[] = [];
  const desc = layer.open('u0', true, (ev) => events.push(ev));
  t.teardown(() => desc.close());
  appendFileSync(file, Buffer.alloc(1 << 20));
  t.equal(await call('bdev_uring_rescan', { name: 'u0' }), true);
  t.equal(layer.require('u0').numBlocks, 4096);
  t.same(events, ['resize']);
  const ch = desc.getIoChannel();
  const w = allocAligned(512).fill(0x5a);
  await io.write(ch, w, 4095, 1);
  const r = allocAligned(512);
  await io.read(ch, r, 4095, 1);
  t.ok(r.equals(w), 'the new last block is usable');
});
