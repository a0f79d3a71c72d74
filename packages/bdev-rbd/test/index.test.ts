import t from 'tap';
import def, { plugin, RBD_ERRORS, RbdBdevModule } from '../src/index';

t.test('exports the plugin object', async (t) => {
  t.equal(def, plugin);
  t.equal(plugin.name, '@blockwork/bdev-rbd');
  t.equal(plugin.core, '^0.1.0');
  t.equal(typeof plugin.register, 'function');
  t.equal(typeof RbdBdevModule, 'function');
  t.ok('RBD_LIBRARY_MISSING' in RBD_ERRORS);
});
