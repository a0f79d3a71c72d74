import 'reflect-metadata';
import { BdevLayer, type BdevModule, Tokens, createLogger } from '@blockwork/core';
import t from 'tap';
import { container } from 'tsyringe';
import defaultPlugin, { AioBdevModule, plugin } from '../src/index';

t.test('the plugin object names the package and a core range', async (t) => {
  t.equal(plugin.name, '@blockwork/bdev-aio');
  t.equal(plugin.core, '^0.1.0');
  t.equal(defaultPlugin, plugin);
});

t.test('register puts AioBdevModule under Tokens.BdevModule, resolvable from a child container', async (t) => {
  const c = container.createChildContainer();
  c.registerInstance(Tokens.BdevLayer, new BdevLayer());
  c.registerInstance(Tokens.Logger, createLogger('silent'));
  plugin.register(c);
  const mods = c.resolveAll<BdevModule>(Tokens.BdevModule);
  t.equal(mods.length, 1);
  t.ok(mods[0] instanceof AioBdevModule);
  t.equal(mods[0].name, 'aio');
  t.same(mods[0].rpcMethods().map((m) => m.name), ['bdev_aio_create', 'bdev_aio_delete', 'bdev_aio_rescan']);
});
