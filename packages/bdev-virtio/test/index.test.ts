import t from 'tap';
import def, { plugin, RawQueue, VirtioBdevModule, VirtioBlkBdev, VirtioBlkDriver } from '../src/index';

t.test('exports the plugin object and the low-level classes', async (t) => {
  t.equal(def, plugin);
  t.equal(plugin.name, '@blockwork/bdev-virtio');
  t.equal(plugin.core, '^0.1.0');
  t.equal(typeof plugin.register, 'function');
  for (const c of [VirtioBdevModule, VirtioBlkBdev, VirtioBlkDriver, RawQueue]) t.equal(typeof c, 'function');
});
