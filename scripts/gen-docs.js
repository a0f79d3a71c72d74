'use strict';
// npm run docs: regenerates docs/rpc.md and docs/errors.md from the schemas and error catalogues
// of core and every first-party plugin.
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const core = require('../packages/core');
const { renderRpcDocs, renderErrorDocs, errorCatalogues } = require('../packages/cli/dist/src/rpc-docs.js');

(async () => {
  const dirs = [join(__dirname, '../packages/cli')];
  const plugins = core.installedFirstParty(dirs);
  const d = await core.Daemon.start({ rpcSocket: null, logger: core.createLogger('silent'), config: { plugins }, pluginSearchDirs: dirs });
  writeFileSync(join(__dirname, '../docs/rpc.md'), renderRpcDocs(d.registry, plugins));
  await d.stop();
  const mods = plugins.map((p) => [p, require(require.resolve(p, { paths: dirs }))]);
  writeFileSync(join(__dirname, '../docs/errors.md'), renderErrorDocs(errorCatalogues(core, mods)));
  console.log(`docs/rpc.md: ${d.registry.names().length} methods; docs/errors.md written`);
})().catch((e) => { console.error(e); process.exit(1); });
