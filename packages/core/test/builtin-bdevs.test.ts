import t from 'tap';
import { randomBytes } from 'node:crypto';
import { createLogger, Daemon, io, runBdevCompliance } from '../src/index';

const log = createLogger('silent');
const start = (config: unknown) => Daemon.start({ rpcSocket: null, logger: log, config: config as never });

runBdevCompliance(t, 'malloc', {
  plugins: [],
  create: async (d) => (await d.call('bdev_malloc_create', { name: 'M0', num_blocks: 256, block_size: 512 })) as string,
});

// The null bdev stores nothing: its data checks are skipped by design, the rest must hold.
runBdevCompliance(t, 'null', {
  plugins: [],
  storesData: false,
  create: async (d) => (await d.call('bdev_null_create', { name: 'N0', num_blocks: 256, block_size: 4096 })) as string,
});

runBdevCompliance(t, 'passthru', {
  plugins: [],
  create: async (d) => {
    await d.call('bdev_malloc_create', { name: 'base', num_blocks: 512, block_size: 4096 });
    return (await d.call('bdev_passthru_create', { name: 'pt', base_bdev_name: 'base' })) as string;
  },
});

t.test('data written through the API really lives in the malloc bdev', async (t) => {
  const daemon = await start({});
  t.teardown(() => daemon.stop());
  await daemon.call('bdev_malloc_create', { name: 'M0', num_blocks: 64 * 1024, block_size: 4096 });
  const desc = daemon.layer.open('M0', true);
  const ch = desc.getIoChannel();
  const pattern = randomBytes(4096 * 16);
  // Crosses the store's 16 MiB chunk boundary (block 4096).
  await io.write(ch, pattern, 4090, 16);
  const back = Buffer.alloc(pattern.length);
  await io.read(ch, back, 4090, 16);
  t.ok(back.equals(pattern), 'pattern read back across a chunk boundary');
  const untouched = Buffer.alloc(4096, 0x55);
  await io.read(ch, untouched, 60000, 1);
  t.ok(untouched.equals(Buffer.alloc(4096)), 'never-written blocks read as zeros');
  desc.close();
});

t.test('bdev_malloc_create: default name, duplicate, metadata and block size errors', async (t) => {
  const daemon = await start({});
  t.teardown(() => daemon.stop());
  t.equal(await daemon.call('bdev_malloc_create', { num_blocks: 8, block_size: 512 }), 'Malloc0');
  t.equal(await daemon.call('bdev_malloc_create', { num_blocks: 8, block_size: 512 }), 'Malloc1');
  await t.rejects(daemon.call('bdev_malloc_create', { name: 'Malloc0', num_blocks: 8, block_size: 512 }), { code: 'BDEV_EXISTS', errno: 17 });
  await t.rejects(daemon.call('bdev_malloc_create', { name: 'x', num_blocks: 8, block_size: 520 }), { code: 'BDEV_INVALID', message: /multiple of 512/ });
  await t.rejects(daemon.call('bdev_malloc_create', { name: 'x', num_blocks: 8, block_size: 512, md_size: 8 }), { code: 'BDEV_INVALID', message: /md_size/ });
  await t.rejects(daemon.call('bdev_malloc_delete', { name: 'nope' }), { code: 'BDEV_NOT_FOUND', errno: 19 });
  t.equal(await daemon.call('bdev_malloc_delete', { name: 'Malloc0' }), true);
  t.same(((await daemon.call('bdev_get_bdevs')) as Array<{ name: string }>).map((b) => b.name), ['Malloc1']);
});

t.test('optimal_io_boundary splits I/O and data stays correct', async (t) => {
  const daemon = await start({});
  t.teardown(() => daemon.stop());
  await daemon.call('bdev_malloc_create', { name: 'S', num_blocks: 128, block_size: 512, optimal_io_boundary: 8 });
  const desc = daemon.layer.open('S', true);
  const ch = desc.getIoChannel();
  const data = randomBytes(20 * 512);
  await io.write(ch, [data.subarray(0, 1000 + 24), data.subarray(1024)], 5, 20);
  const back = Buffer.alloc(data.length);
  await io.read(ch, back, 5, 20);
  t.ok(back.equals(data), 'split write then split read returns the data');
  const stat = daemon.layer.stat('S').toJson('S');
  t.equal(stat.num_write_ops, 1, 'a split I/O counts once');
  t.equal(stat.bytes_written, 20 * 512);
  desc.close();
});
