import t from 'tap';
import { BdevLayer, type BdevModule, createLogger, Tokens } from '@blockwork/core';
import { container } from 'tsyringe';
import { plugin } from '../src/index';
import { UringBdevModule } from '../src/uring-bdev-module';
import { makeFile, setup, tempDir } from './fixtures/env';

t.test('the plugin registers the module under Tokens.BdevModule', async (t) => {
  const c = container.createChildContainer();
  c.registerInstance(Tokens.BdevLayer, new BdevLayer());
  c.registerInstance(Tokens.Logger, createLogger('silent'));
  plugin.register(c);
  const mods = c.resolveAll<BdevModule>(Tokens.BdevModule);
  t.equal(mods.length, 1);
  t.ok(mods[0] instanceof UringBdevModule);
  t.equal(mods[0].name, 'uring');
});

t.test('create closes the file when registration fails', async (t) => {
  const { layer, module } = setup(t);
  const file = makeFile(tempDir(t), 'a.img', 1 << 20);
  module.create({ filename: file, name: 'u0', uuid: '11111111-2222-4333-8444-555555555555' });
  // Same uuid, new name: the layer refuses after the file was opened.
  t.throws(() => module.create({ filename: file, name: 'u1', uuid: '11111111-2222-4333-8444-555555555555' }), { code: 'BDEV_EXISTS' });
  t.same(module.bdevNames(), ['u0']);
  t.equal(layer.get('u1'), undefined);
});

t.test('delete and rescan refuse bdevs of other modules', async (t) => {
  const { layer, module } = setup(t);
  const other = setup(t);
  other.module.create({ filename: makeFile(tempDir(t), 'a.img', 1 << 20), name: 'x0' });
  layer.register(other.layer.require('x0'));
  t.teardown(() => layer.unregister('x0'));
  t.rejects(module.delete('x0'), { code: 'URING_NOT_URING_BDEV' });
  t.throws(() => module.rescan('x0'), { code: 'URING_NOT_URING_BDEV' });
});
