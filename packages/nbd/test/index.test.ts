import t from 'tap';
import def, { NBD_ERRORS, NbdBdevModule, NbdSubsystem, plugin } from '../src/index';
import { startDaemon } from './fixtures/helpers';

t.test('exports the plugin object', async (t) => {
  t.equal(def, plugin);
  t.equal(plugin.name, '@blockwork/nbd');
  t.equal(plugin.core, '^0.1.0');
  t.equal(typeof NbdBdevModule, 'function');
  t.equal(typeof NbdSubsystem, 'function');
  t.ok(NBD_ERRORS.NBD_HANDSHAKE);
});

t.test('a daemon with the plugin has the nbd subsystem and every method, each param described', async (t) => {
  const d = await startDaemon();
  t.teardown(() => d.stop());
  t.ok(d.subsystems.some((s) => s.name === 'nbd'));
  const names = (await d.call('rpc_get_methods')) as string[];
  for (const m of ['nbd_server_start', 'nbd_server_stop', 'nbd_server_add_export', 'nbd_server_remove_export', 'nbd_server_get_exports', 'bdev_nbd_attach', 'bdev_nbd_detach']) {
    t.ok(names.includes(m), m);
  }
  const mod = new NbdBdevModule(d.layer, d.log);
  for (const m of mod.rpcMethods()) for (const [k, p] of Object.entries(m.params?.properties ?? {})) t.ok(p.description.length > 0, `${m.name}.${k}`);
});
