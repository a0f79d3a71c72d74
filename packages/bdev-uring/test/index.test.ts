import t from 'tap';
import def, { plugin, UringBdevModule } from '../src/index';

t.test('exports the plugin object', async (t) => {
  t.equal(def, plugin);
  t.equal(plugin.name, '@blockwork/bdev-uring');
  t.equal(plugin.core, '^0.1.0');
  t.equal(typeof plugin.register, 'function');
  t.equal(typeof UringBdevModule, 'function');
});
