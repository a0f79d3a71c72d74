import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { allocAligned, type BdevLayer, type IoChannel, io } from '@blockwork/core';
import type { MigrationStatus } from '../src/mirror-job';
import { errorOf, setup, sleep, until } from './fixtures/env';

const MiB = 2 ** 20;

/** Reads a whole bdev through a fresh read-only descriptor. */
async function readAll(layer: BdevLayer, name: string): Promise<Buffer> {
  const d = layer.open(name, false);
  const b = layer.require(name);
  const buf = allocAligned(b.numBlocks * b.blockSize);
  await io.read(d.getIoChannel(), buf, 0, b.numBlocks);
  d.close();
  return buf;
}

/** A perf-like loop: random 4 KiB writes (and some unmaps) at QD8 until stopped; resolves with the count. */
function randomWriter(ch: IoChannel, blocks: number, stop: () => boolean): Promise<number> {
  let n = 0;
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const one = async () => {
    while (!stop()) {
      const off = Math.floor(rnd() * (blocks / 8)) * 8;
      if (n % 17 === 0) await io.unmap(ch, off, 8);
      else await io.write(ch, Buffer.alloc(4096, (n & 0xff) || 1), off, 8);
      n++;
      if (n % 64 === 0) await sleep(0);
    }
  };
  return Promise.all(Array.from({ length: 8 }, one)).then(() => n);
}

async function status(call: (m: string, p: unknown) => Promise<unknown>, name: string): Promise<MigrationStatus> {
  return ((await call('migration_get_status', { name })) as MigrationStatus[])[0];
}

t.test('every method and param is described', async (t) => {
  const { sub } = setup(t);
  const methods = sub.rpcMethods();
  t.same(methods.map((m) => m.name), ['migration_start', 'migration_get_status', 'migration_complete', 'migration_cancel']);
  for (const m of methods) {
    t.ok(m.description.length > 10, `${m.name} has a description`);
    for (const [k, p] of Object.entries(m.params?.properties ?? {})) t.ok(p.description.length > 5, `${m.name}.${k} described`);
  }
  t.same(methods[0].params?.required, ['name', 'source_bdev', 'target_bdev']);
});

t.test('mirror under random writes from another descriptor: after complete, target equals source', async (t) => {
  const { layer, call, mk, runDir } = setup(t);
  mk('src', 8 * MiB / 512);
  mk('dst', 8 * MiB / 512);
  const seed = layer.open('src', true).getIoChannel();
  await io.write(seed, Buffer.alloc(8 * MiB, 0x11), 0, 8 * MiB / 512);
  let stop = false;
  const writer = randomWriter(seed, 8 * MiB / 512, () => stop);
  await sleep(20);
  t.equal(await call('migration_start', { name: 'm0', source_bdev: 'src', target_bdev: 'dst', granularity_kib: 64 }), 'm0');
  t.ok(existsSync(join(runDir, 'migration-m0.bitmap')), 'bitmap under the run directory');
  t.equal(layer.claimOf('dst')?.module, 'migration', 'target claimed');
  t.equal(layer.claimOf('src'), null, 'source not claimed');
  await until(async () => ['dirty', 'converged'].includes((await status(call, 'm0')).phase), 20000, 'bulk pass done');
  await sleep(100);
  t.equal(await call('migration_complete', { name: 'm0' }), true);
  const s = await status(call, 'm0');
  t.equal(s.phase, 'completed');
  t.equal(s.dirty_granules, 0);
  t.ok(s.bytes_copied >= 8 * MiB, `copied ${s.bytes_copied} bytes (≥ one full pass)`);
  stop = true;
  const writes = await writer;
  t.ok(writes > 100, `${writes} writes ran during the migration`);
  await until(async () => (await status(call, 'm0')).dirty_granules === 0, 5000, 'write-through settles');
  const [a, b] = [await readAll(layer, 'src'), await readAll(layer, 'dst')];
  t.ok(a.equals(b), 'source and target are byte-identical');
  t.equal(await call('migration_cancel', { name: 'm0' }), true);
  t.equal(layer.claimOf('dst'), null, 'claim released');
});

t.test('writes arriving during the final pass are held, then land on both', async (t) => {
  const { layer, call, mk } = setup(t);
  mk('src', 2 * MiB / 512);
  mk('dst', 2 * MiB / 512);
  const ch = layer.open('src', true).getIoChannel();
  await call('migration_start', { name: 'm1', source_bdev: 'src', target_bdev: 'dst', granularity_kib: 4 });
  await until(async () => (await status(call, 'm1')).phase === 'converged', 20000, 'converged');
  // Make the final pass long enough to observe: dirty everything again.
  await io.write(ch, Buffer.alloc(2 * MiB, 0x22), 0, 2 * MiB / 512);
  const completing = call('migration_complete', { name: 'm1' });
  await until(async () => (await status(call, 'm1')).phase === 'completing', 5000, 'completing');
  let landed = false;
  const held = io.write(ch, Buffer.alloc(4096, 0x77), 100, 8).then(() => { landed = true; });
  await sleep(5);
  const phaseWhileHeld = (await status(call, 'm1')).phase;
  t.ok(!landed || phaseWhileHeld === 'completed', 'the write does not complete before the final pass ends');
  await completing;
  await held;
  t.ok(landed);
  const [a, b] = [await readAll(layer, 'src'), await readAll(layer, 'dst')];
  t.ok(a.subarray(100 * 512, 108 * 512).equals(Buffer.alloc(4096, 0x77)), 'the held write is on the source');
  t.ok(b.subarray(100 * 512, 108 * 512).equals(Buffer.alloc(4096, 0x77)), 'and on the target');
  t.ok(a.equals(b), 'both equal');
  await io.write(ch, Buffer.alloc(512, 0x99), 7, 1);
  t.ok((await readAll(layer, 'dst')).subarray(7 * 512, 8 * 512).equals(Buffer.alloc(512, 0x99)), 'after completion, writes go through to the target');
});

t.test('rate limit holds the copy rate near the limit and progress reports rate and ETA', async (t) => {
  const { call, mk } = setup(t);
  mk('src', 16 * MiB / 512);
  mk('dst', 16 * MiB / 512);
  await call('migration_start', { name: 'm2', source_bdev: 'src', target_bdev: 'dst', rate_limit_mib_per_s: 4 });
  await sleep(1500);
  const s = await status(call, 'm2');
  t.equal(s.phase, 'bulk');
  t.ok(s.bytes_copied > 2 * MiB && s.bytes_copied < 8 * MiB, `${(s.bytes_copied / MiB).toFixed(1)} MiB in 1.5 s at 4 MiB/s (burst 0.4 MiB)`);
  t.ok(s.rate_mib_per_s > 2 && s.rate_mib_per_s < 6, `rate ${s.rate_mib_per_s} MiB/s`);
  t.ok(s.eta_s !== null && s.eta_s > 1 && s.eta_s < 10, `eta ${s.eta_s} s`);
  t.equal(s.total_granules, 256);
  t.equal(s.granularity_kib, 64);
});

t.test('cancel removes tracking, releases the target and deletes the bitmap', async (t) => {
  const { layer, call, mk, runDir } = setup(t);
  mk('src', 4 * MiB / 512);
  mk('dst', 4 * MiB / 512);
  await call('migration_start', { name: 'm3', source_bdev: 'src', target_bdev: 'dst', rate_limit_mib_per_s: 1 });
  t.equal(await call('migration_cancel', { name: 'm3' }), true);
  t.notOk(existsSync(join(runDir, 'migration-m3.bitmap')));
  t.equal(layer.claimOf('dst'), null);
  t.equal((await errorOf(() => call('migration_get_status', { name: 'm3' })))?.code, 'MIGRATION_NOT_FOUND');
  const w = layer.open('dst', true);
  w.close();
  t.pass('target writable by others again');
});

t.test('bad requests fail with coded errors', async (t) => {
  const { call, mk, layer } = setup(t);
  mk('src', 4096);
  mk('small', 1024);
  mk('dst', 4096);
  t.match(await errorOf(() => call('migration_start', { name: 'x', source_bdev: 'src', target_bdev: 'small' })), { code: 'MIGRATION_TARGET_TOO_SMALL', errno: 28 });
  t.match(await errorOf(() => call('migration_start', { name: 'x', source_bdev: 'src', target_bdev: 'src' })), { code: 'MIGRATION_INVALID_PARAM' });
  t.match(await errorOf(() => call('migration_start', { name: 'x', source_bdev: 'src', target_bdev: 'dst', granularity_kib: 12 })), { code: 'MIGRATION_INVALID_PARAM' });
  t.match(await errorOf(() => call('migration_start', { name: 'x', source_bdev: 'nope', target_bdev: 'dst' })), { code: 'BDEV_NOT_FOUND' });
  const other = layer.open('dst', true);
  t.match(await errorOf(() => call('migration_start', { name: 'x', source_bdev: 'src', target_bdev: 'dst' })), { code: 'BDEV_CLAIMED' });
  other.close();
  await call('migration_start', { name: 'x', source_bdev: 'src', target_bdev: 'dst', rate_limit_mib_per_s: 1 });
  t.match(await errorOf(() => call('migration_start', { name: 'x', source_bdev: 'src', target_bdev: 'dst' })), { code: 'MIGRATION_EXISTS' });
  t.match(await errorOf(() => call('migration_complete', { name: 'y' })), { code: 'MIGRATION_NOT_FOUND' });
});

t.test('removing the target fails the job with the reason; complete then reports it', async (t) => {
  const { call, mk, malloc } = setup(t);
  mk('src', 8192);
  mk('dst', 8192);
  await call('migration_start', { name: 'm4', source_bdev: 'src', target_bdev: 'dst', rate_limit_mib_per_s: 1 });
  await malloc.delete('dst');
  const s = await status(call, 'm4');
  t.equal(s.phase, 'failed');
  t.match(s.error, /target bdev was removed/);
  t.match(await errorOf(() => call('migration_complete', { name: 'm4' })), { code: 'MIGRATION_WRONG_PHASE' });
  t.equal(await call('migration_cancel', { name: 'm4' }), true, 'cancel forgets a failed job');
});

t.test('save_config lists running jobs as migration_start with their bitmap path', async (t) => {
  const { sub, call, mk, runDir } = setup(t);
  mk('src', 4096);
  mk('dst', 4096);
  await call('migration_start', { name: 'm5', source_bdev: 'src', target_bdev: 'dst', rate_limit_mib_per_s: 1 });
  t.same(sub.config(), [{ method: 'migration_start', params: {
    name: 'm5', source_bdev: 'src', target_bdev: 'dst', rate_limit_mib_per_s: 1, bitmap_path: join(runDir, 'migration-m5.bitmap'), granularity_kib: 64,
  } }]);
});
