import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger, Daemon, parseConfig, readConfigFile, stripComments } from '../src/index';

const log = createLogger('silent');
const start = (config: unknown) => Daemon.start({ rpcSocket: null, logger: log, config: config as never });
const bdevSection = (...config: unknown[]) => ({ subsystems: [{ subsystem: 'bdev', config }] });

t.test('comments are stripped outside strings only', async (t) => {
  const text = '{ /* block */ "a": "x // not a comment /* nor this */", // line\n "b": 1 }';
  t.same(JSON.parse(stripComments(text)), { a: 'x // not a comment /* nor this */', b: 1 });
  t.same(parseConfig('{"s": "a\\"//b"} // tail', 'inline'), { s: 'a"//b' });
});

t.test('bad files and shapes name the file and what is wrong', async (t) => {
  const dir = t.testdir({ 'bad.json': '{ "subsystems": [ }', 'shape.json': '{"subsystems": [{"subsystem": "bdev", "config": [{"params": {}}]}]}' });
  t.throws(() => readConfigFile(join(dir, 'missing.json')), { code: 'CONFIG_PARSE', message: /missing\.json cannot be read/ });
  t.throws(() => readConfigFile(join(dir, 'bad.json')), { code: 'CONFIG_PARSE', message: /bad\.json/ });
  t.throws(() => readConfigFile(join(dir, 'shape.json')), { code: 'CONFIG_INVALID', message: /subsystem 'bdev' entry #0 must be \{"method"/ });
  t.throws(() => parseConfig('[]', 'x'), { code: 'CONFIG_INVALID', message: /top level/ });
  t.throws(() => parseConfig('{"plugins": "a"}', 'x'), { code: 'CONFIG_INVALID', message: /plugins/ });
});

t.test('params are validated before anything runs, naming subsystem, index, method and param', async (t) => {
  await t.rejects(start(bdevSection({ method: 'bdev_malloc_create', params: { name: 'm', num_blocks: 8, block_size: 512, colour: 'red' } })),
    { code: 'CONFIG_INVALID', message: /subsystem 'bdev' entry #0 \(bdev_malloc_create\).*unknown param 'colour'/ });
  await t.rejects(start(bdevSection({ method: 'bdev_null_create', params: { name: 'n' } })),
    { code: 'CONFIG_INVALID', message: /entry #0 \(bdev_null_create\).*missing required param 'num_blocks'/ });
  await t.rejects(start(bdevSection({ method: 'bdev_malloc_create', params: { name: 'm', num_blocks: 8, block_size: 512 } }, { method: 'bdev_null_create', params: { name: 'n', num_blocks: '8', block_size: 512 } })),
    { code: 'CONFIG_INVALID', message: /entry #1 \(bdev_null_create\).*'num_blocks' must be integer/ });
});

t.test('a failing entry stops start-up with its location', async (t) => {
  await t.rejects(start(bdevSection(
    { method: 'bdev_malloc_create', params: { name: 'm', num_blocks: 8, block_size: 512 } },
    { method: 'bdev_null_create', params: { name: 'm', num_blocks: 8, block_size: 512 } },
  )), { code: 'BDEV_EXISTS', message: /entry #1 \(bdev_null_create\) failed: .*'m' already exists/ });
});

t.test('methods of plugins that are not loaded name the plugin; unknown methods name the method', async (t) => {
  await t.rejects(start({ plugins: [], ...bdevSection({ method: 'bdev_aio_create', params: { name: 'a', filename: '/tmp/x' } }) }),
    { code: 'CONFIG_PLUGIN_MISSING', message: /bdev_aio_create needs plugin @blockwork\/bdev-aio/ });
  await t.rejects(start({ plugins: [], subsystems: [{ subsystem: 'vhost_blk', config: [{ method: 'vhost_create_blk_controller', params: {} }] }] }),
    { code: 'CONFIG_PLUGIN_MISSING', message: /needs plugin @blockwork\/vhost-blk/ });
  await t.rejects(start(bdevSection({ method: 'bdev_frobnicate', params: {} })), { code: 'CONFIG_METHOD_UNKNOWN', message: /unknown method bdev_frobnicate/ });
});

t.test('an SPDK-saved config loads: foreign subsystems skipped, options accepted, passthru before its base', async (t) => {
  const spdk = {
    subsystems: [
      { subsystem: 'keyring', config: [] },
      { subsystem: 'iobuf', config: [{ method: 'iobuf_set_options', params: { small_pool_count: 8192, large_pool_count: 1024 } }] },
      { subsystem: 'sock', config: [{ method: 'sock_set_default_impl', params: { impl_name: 'posix' } }] },
      { subsystem: 'accel', config: [{ method: 'accel_set_options', params: { small_cache_size: 128 } }] },
      { subsystem: 'vmd', config: [] },
      {
        subsystem: 'bdev',
        config: [
          { method: 'bdev_set_options', params: { bdev_io_pool_size: 65535, bdev_io_cache_size: 256, bdev_auto_examine: true, iobuf_small_cache_size: 128, iobuf_large_cache_size: 16 } },
          { method: 'bdev_nvme_set_options', params: { action_on_timeout: 'none', timeout_us: 0 } },
          { method: 'bdev_passthru_create', params: { base_bdev_name: 'Malloc1', name: 'pt0', uuid: 'a2d09f67-56b0-59c9-b21c-32951a4cf447' } },
          { method: 'bdev_nvme_set_hotplug', params: { period_us: 100000, enable: false } },
          { method: 'bdev_null_create', params: { name: 'Null0', num_blocks: 16384, block_size: 4096, physical_block_size: 4096, md_size: 0, dif_type: 0, dif_is_head_of_md: false, dif_pi_format: 0, uuid: '7c9f318a-5606-4ccc-9567-064da9a8a5e9', preferred_write_granularity: 0, preferred_write_alignment: 0, optimal_write_size: 0, preferred_unmap_granularity: 0, preferred_unmap_alignment: 0 } },
          { method: 'bdev_malloc_create', params: { name: 'Malloc1', num_blocks: 65536, block_size: 512, physical_block_size: 512, uuid: '0d577231-ba8a-46ad-b5fd-98f2eeb6ad70', optimal_io_boundary: 0, md_size: 0, dif_type: 0, dif_is_head_of_md: false, dif_pi_format: 0, numa_id: -1 } },
          { method: 'bdev_wait_for_examine' },
        ],
      },
      { subsystem: 'scsi', config: null },
    ],
  };
  const dir = t.testdir({ 'spdk.json': `// saved by SPDK v26.05\n${JSON.stringify(spdk, null, 2)}` });
  const d = await Daemon.start({ rpcSocket: null, logger: log, configPath: join(dir, 'spdk.json'), config: undefined });
  t.teardown(() => d.stop());
  const bdevs = (await d.call('bdev_get_bdevs')) as Array<Record<string, unknown>>;
  t.same(bdevs.map((b) => b.name).sort(), ['Malloc1', 'Null0', 'pt0']);
  const m1 = bdevs.find((b) => b.name === 'Malloc1')!;
  t.equal(m1.claimed, true, 'the passthru attached to its late base and claims it');
  t.equal(m1.claim_type, 'exclusive_write');
  t.equal(bdevs.find((b) => b.name === 'pt0')!.uuid, 'a2d09f67-56b0-59c9-b21c-32951a4cf447');
  t.equal(bdevs.find((b) => b.name === 'Null0')!.uuid, '7c9f318a-5606-4ccc-9567-064da9a8a5e9');
});

t.test('startup methods run before runtime ones and are refused at runtime', async (t) => {
  const d = await start(bdevSection({ method: 'bdev_malloc_create', params: { name: 'm', num_blocks: 8, block_size: 512 } }, { method: 'bdev_set_options', params: { bdev_io_pool_size: 1 } }));
  t.teardown(() => d.stop());
  await t.rejects(d.call('bdev_set_options', {}), { rpcCode: -1, message: /before framework is initialized/ });
});

t.test('a config file written by save_config loads back to the same state', async (t) => {
  const d1 = await start(bdevSection(
    { method: 'bdev_malloc_create', params: { name: 'M', num_blocks: 100, block_size: 4096 } },
    { method: 'bdev_null_create', params: { name: 'N', num_blocks: 50, block_size: 512 } },
    { method: 'bdev_passthru_create', params: { name: 'P', base_bdev_name: 'M' } },
  ));
  const saved = { subsystems: [{ subsystem: 'bdev', config: await d1.call('framework_get_config', { name: 'bdev' }) }] };
  const before = await d1.call('bdev_get_bdevs');
  await d1.stop();
  const dir = t.testdir();
  writeFileSync(join(dir, 'saved.json'), JSON.stringify(saved, null, 2));
  const d2 = await Daemon.start({ rpcSocket: null, logger: log, configPath: join(dir, 'saved.json') });
  t.teardown(() => d2.stop());
  t.same(await d2.call('bdev_get_bdevs'), before);
  t.same(await d2.call('framework_get_config', { name: 'bdev' }), saved.subsystems[0].config);
});
