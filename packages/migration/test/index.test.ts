import t from 'tap';
import def, { MIGRATION_ERRORS, MigrationSubsystem, plugin } from '../src/index';

t.test('exports the plugin object', async (t) => {
  t.equal(def, plugin);
  t.equal(plugin.name, '@blockwork/migration');
  t.equal(plugin.core, '^0.1.0');
  t.equal(typeof MigrationSubsystem, 'function');
  t.ok(Object.keys(MIGRATION_ERRORS).length > 5);
});

t.test('a daemon composed with the plugin has the migration subsystem and its methods', async (t) => {
  const core = await import('@blockwork/core');
  const d = await core.Daemon.start({ rpcSocket: null, logger: core.createLogger('silent'), config: { plugins: [require.resolve('../src/index')] } });
  t.teardown(() => d.stop());
  t.ok(d.subsystems.some((s) => s.name === 'migration'));
  for (const m of ['migration_start', 'migration_get_status', 'migration_complete', 'migration_cancel']) t.ok(d.registry.has(m), m);
  t.same(await d.call('migration_get_status', {}), []);
});
