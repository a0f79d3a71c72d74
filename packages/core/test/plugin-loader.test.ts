import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createLogger, Daemon, io, loadPlugins } from '../src/index';

const FIXTURES = resolve(__dirname, '../../../fixtures');
const log = createLogger('silent');

function pluginDir(t: { testdir(): string }, files: Record<string, string>): string {
  const dir = t.testdir();
  for (const [name, body] of Object.entries(files)) {
    mkdirSync(join(dir, name), { recursive: true });
    writeFileSync(join(dir, name, 'index.js'), body);
  }
  return dir;
}

t.test('a third-party plugin outside packages/ adds a bdev type and an RPC method, by npm name', async (t) => {
  const daemon = await Daemon.start({
    rpcSocket: null, logger: log, pluginSearchDirs: [FIXTURES],
    config: { plugins: ['@acme/bdev-ram'], subsystems: [{ subsystem: 'bdev', config: [{ method: 'bdev_acme_ram_create', params: { name: 'r0', num_blocks: 16 } }] }] },
  });
  t.teardown(() => daemon.stop());
  t.equal(await daemon.call('acme_hello'), 'hello from acme');
  const [info] = (await daemon.call('bdev_get_bdevs', { name: 'r0' })) as Array<Record<string, unknown>>;
  t.equal(info.product_name, 'Acme RAM');
  t.same(info.driver_specific, { acme_ram: { blocks: 16 } });
  const ch = daemon.layer.open('r0', true).getIoChannel();
  const data = Buffer.alloc(1024, 0x3c);
  await io.write(ch, data, 3, 2);
  const back = Buffer.alloc(1024);
  await io.read(ch, back, 3, 2);
  t.ok(back.equals(data), 'bytes written through the plugin bdev read back');
  t.ok((await daemon.call('rpc_get_methods') as string[]).includes('bdev_acme_ram_create'));
  const cfg = (await daemon.call('framework_get_config', { name: 'bdev' })) as Array<{ method: string }>;
  t.ok(cfg.some((e) => e.method === 'bdev_acme_ram_create'), 'the plugin bdev is part of save_config');
  await t.rejects(daemon.call('bdev_acme_ram_create', { name: 'bad1', num_blocks: 1 }), { code: 'BDEV_INVALID', message: /bad1/ });
});

t.test('a plugin given by path, relative to the config file', async (t) => {
  const dir = t.testdir({ 'cfg.json': JSON.stringify({ plugins: [join(FIXTURES, 'node_modules/@acme/bdev-ram')] }) });
  const daemon = await Daemon.start({ rpcSocket: null, logger: log, configPath: join(dir, 'cfg.json') });
  t.teardown(() => daemon.stop());
  t.equal(await daemon.call('acme_hello'), 'hello from acme');
});

t.test('missing, invalid, duplicate, wrong-version and dependency-less plugins are refused by code', async (t) => {
  const dir = pluginDir(t, {
    notaplugin: 'module.exports = { hello: 1 };',
    old: "exports.plugin = { name: 'old', core: '^9.0.0', register() {} };",
    needy: "exports.plugin = { name: 'needy', core: '*', dependencies: ['@blockwork/bdev-nvme'], register() {} };",
    throws: "throw new Error('boom at load');",
  });
  const p = (n: string) => join(dir, n);
  t.throws(() => loadPlugins(['@nobody/missing-plugin'], [dir]), { code: 'PLUGIN_NOT_FOUND', message: /@nobody\/missing-plugin/ });
  t.throws(() => loadPlugins([p('notaplugin')], [dir]), { code: 'PLUGIN_INVALID', message: /notaplugin.*name, core, register/ });
  t.throws(() => loadPlugins([p('throws')], [dir]), { code: 'PLUGIN_INVALID', message: /boom at load/ });
  t.throws(() => loadPlugins([p('old')], [dir]), { code: 'PLUGIN_VERSION', message: /'old' supports @blockwork\/core \^9\.0\.0/ });
  t.throws(() => loadPlugins([p('needy')], [dir]), { code: 'PLUGIN_DEPENDENCY', message: /needy.*@blockwork\/bdev-nvme/ });
  t.throws(() => loadPlugins([p('old'), p('old')], [dir]), { code: /PLUGIN_(DUPLICATE|VERSION)/ });
  const fixturePlugin = join(FIXTURES, 'node_modules/@acme/bdev-ram');
  t.throws(() => loadPlugins([fixturePlugin, fixturePlugin], [dir]), { code: 'PLUGIN_DUPLICATE', message: /@acme\/bdev-ram/ });
  await t.rejects(Daemon.start({ rpcSocket: null, logger: log, config: { plugins: ['@nobody/missing-plugin'] } }), { code: 'PLUGIN_NOT_FOUND' });
});
