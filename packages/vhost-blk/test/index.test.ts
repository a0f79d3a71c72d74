import t from 'tap';
import { Tokens } from '@blockwork/core';
import { container } from 'tsyringe';
import plugin, { VhostBlkSubsystem } from '../src/index';

t.test('the plugin registers the vhost_blk subsystem', async (t) => {
  t.equal(plugin.name, '@blockwork/vhost-blk');
  t.equal(plugin.core, '^0.1.0');
  const c = container.createChildContainer();
  c.register(Tokens.BdevLayer, { useValue: {} });
  c.register(Tokens.DaemonOptions, { useValue: { socketDir: '/tmp' } });
  c.register(Tokens.Logger, { useValue: {} });
  plugin.register(c);
  const [s] = c.resolveAll<VhostBlkSubsystem>(Tokens.Subsystem);
  t.type(s, VhostBlkSubsystem);
  t.equal(s.name, 'vhost_blk');
  t.same(s.dependsOn, ['bdev', 'migration'], 'after migration when both are loaded');
  t.same(s.rpcMethods().map((m: { name: string }) => m.name), ['vhost_create_blk_controller', 'vhost_get_controllers', 'vhost_delete_controller', 'vhost_controller_set_coalescing']);
});
