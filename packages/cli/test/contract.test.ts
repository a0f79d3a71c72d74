import t from 'tap';
import * as core from '@blockwork/core';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { COMMANDS, parser } from '../src/main';
import { errorCatalogues, renderErrorDocs, renderRpcDocs } from '../src/rpc-docs';

const REPO = resolve(__dirname, '../../..');
const dirs = [resolve(__dirname, '..')];

t.test('every plugin loads and every RPC method has a description and documented params', async (t) => {
  const plugins = core.installedFirstParty(dirs);
  t.ok(plugins.includes('@blockwork/bdev-aio') && plugins.includes('@blockwork/bdev-uring'), `first-party plugins found: ${plugins.join(', ')}`);
  const d = await core.Daemon.start({ rpcSocket: null, logger: core.createLogger('silent'), config: { plugins }, pluginSearchDirs: dirs });
  t.teardown(() => d.stop());
  for (const name of d.registry.names()) {
    const m = d.registry.get(name)!;
    t.ok(m.description.length > 10, `${name} has a description`);
    t.match(name, /^[a-z]+(_[a-z0-9]+)+$/, `${name} is snake_case`);
    for (const [param, schema] of Object.entries(m.params?.properties ?? {})) {
      t.ok(schema.description && schema.description.length > 2, `${name}.${param} has a description`);
      t.ok(schema.type !== undefined, `${name}.${param} has a type`);
    }
  }
  const onDisk = readFileSync(join(REPO, 'docs/rpc.md'), 'utf8');
  t.equal(onDisk, renderRpcDocs(d.registry, plugins), 'docs/rpc.md matches the schemas (run npm run docs)');
  const mods = plugins.map((p) => [p, require(require.resolve(p, { paths: dirs }))] as [string, Record<string, unknown>]);
  const errors = readFileSync(join(REPO, 'docs/errors.md'), 'utf8');
  t.equal(errors, renderErrorDocs(errorCatalogues(core as unknown as Record<string, unknown>, mods)), 'docs/errors.md matches the catalogues (run npm run docs)');
});

t.test('every CLI command renders its help', async (t) => {
  for (const c of COMMANDS) {
    const name = c.command.split(' ')[0];
    const out = await new Promise<string>((resolve, reject) => {
      parser([name, '--help']).exitProcess(false).parse([name, '--help'], {}, (err: Error | undefined, _argv: unknown, output: string) => (err ? reject(err) : resolve(output)));
    });
    t.match(out, new RegExp(`blockwork ${name}`), `${name} --help shows its usage`);
    t.match(out, /--help/, `${name} --help lists options`);
  }
});
