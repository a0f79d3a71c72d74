import { BlockworkError, coreError, isBlockworkError } from '../errors';
import type { Logger } from '../logger';
import { isRpcError } from '../rpc/rpc-error';
import type { RpcRegistry } from '../rpc/rpc-registry';
import { type BlockworkConfig, entriesOf, type LocatedEntry } from './config-file';

/** Which first-party plugin provides a method (by prefix) or a subsystem, for "add this plugin" errors. */
const METHOD_PLUGINS: Array<[string, string]> = [
  ['bdev_aio_', '@blockwork/bdev-aio'],
  ['bdev_uring_', '@blockwork/bdev-uring'],
  ['bdev_nvme_', '@blockwork/bdev-nvme'],
  ['bdev_rbd_', '@blockwork/bdev-rbd'],
  ['bdev_virtio_', '@blockwork/bdev-virtio'],
  ['vhost_', '@blockwork/vhost-blk'],
  ['migration_', '@blockwork/migration'],
  ['nbd_server_', '@blockwork/nbd'],
  ['bdev_nbd_', '@blockwork/nbd'],
];
// Not 'nbd': SPDK's nbd subsystem (nbd_start_disk, a kernel /dev/nbdX) is another feature than our
// export server, so an SPDK config's nbd section is skipped like any subsystem Blockwork lacks.
const SUBSYSTEM_PLUGINS: Record<string, string> = {
  vhost_blk: '@blockwork/vhost-blk',
  migration: '@blockwork/migration',
};

export function pluginForMethod(method: string): string | undefined {
  return METHOD_PLUGINS.find(([prefix]) => method.startsWith(prefix))?.[1];
}

/**
 * SPDK writes these into every saved config whether or not the module is in use; they carry no
 * state Blockwork needs, so a missing plugin is not an error for them.
 */
function ignorableWithoutPlugin(e: LocatedEntry): boolean {
  if (e.method.endsWith('_set_options')) return true;
  return e.method === 'bdev_nvme_set_hotplug' && (e.params as { enable?: boolean } | undefined)?.enable !== true;
}

function where(e: LocatedEntry): string {
  return `config: subsystem '${e.subsystem}' entry #${e.index} (${e.method})`;
}

/**
 * Replays a config through the same RPC handlers a client would call, as SPDK does: entries whose
 * method may run at startup first, then `init` (subsystems start), then the runtime ones, each pass
 * in file order. Subsystems this daemon lacks are skipped with a notice, as SPDK skips subsystems
 * not linked into the app. Any failure stops start-up with an error naming subsystem, index, method.
 */
export async function replayConfig(
  cfg: BlockworkConfig,
  registry: RpcRegistry,
  subsystems: ReadonlySet<string>,
  init: () => Promise<void>,
  log: Logger,
): Promise<void> {
  const run: LocatedEntry[] = [];
  for (const e of entriesOf(cfg)) {
    if (!subsystems.has(e.subsystem)) {
      const plugin = SUBSYSTEM_PLUGINS[e.subsystem];
      if (plugin) throw coreError('CONFIG_PLUGIN_MISSING', `${where(e)}: subsystem '${e.subsystem}' needs plugin ${plugin}; add it to "plugins"`);
      log.info({ subsystem: e.subsystem, method: e.method }, 'config: skipping entry of a subsystem Blockwork does not have');
      continue;
    }
    if (!registry.has(e.method)) {
      if (ignorableWithoutPlugin(e)) {
        log.info({ method: e.method }, 'config: option method of a module that is not loaded, ignored');
        continue;
      }
      const plugin = pluginForMethod(e.method);
      if (plugin) throw coreError('CONFIG_PLUGIN_MISSING', `${where(e)}: method ${e.method} needs plugin ${plugin}; add it to "plugins"`);
      throw coreError('CONFIG_METHOD_UNKNOWN', `${where(e)}: unknown method ${e.method}`);
    }
    try {
      registry.checkParams(e.method, e.params);
    } catch (err) {
      throw coreError('CONFIG_INVALID', `${where(e)}: ${(err as Error).message}`, err);
    }
    run.push(e);
  }
  const startup = run.filter((e) => registry.statesOf(e.method).includes('startup'));
  const runtime = run.filter((e) => !registry.statesOf(e.method).includes('startup'));
  registry.state = 'startup';
  for (const e of startup) await call(registry, e);
  await init();
  registry.state = 'runtime';
  for (const e of runtime) await call(registry, e);
}

async function call(registry: RpcRegistry, e: LocatedEntry): Promise<void> {
  try {
    await registry.call(e.method, e.params, { signal: new AbortController().signal });
  } catch (err) {
    const msg = `${where(e)} failed: ${(err as Error).message}`;
    if (isBlockworkError(err)) throw new BlockworkError(err.code, err.errno, msg, { cause: err });
    if (isRpcError(err)) throw coreError('CONFIG_INVALID', msg, err);
    throw coreError('CONFIG_INVALID', msg, err);
  }
}
