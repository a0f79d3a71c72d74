import { coreError } from './errors';
import { CORE_VERSION } from './plugin/plugin-loader';
import type { RpcRegistry } from './rpc/rpc-registry';
import type { RpcMethod } from './rpc/types';
import type { Subsystem } from './subsystem';

/** What the framework methods need from the daemon. */
export interface FrameworkHost {
  readonly registry: RpcRegistry;
  /** Subsystems in dependency order. */
  readonly subsystems: readonly Subsystem[];
  /** Begins a clean shutdown (as on SIGTERM). */
  requestShutdown(signal: string): void;
  /** Upgrade handover step 1 (framework_upgrade_prepare); see Daemon.prepareUpgrade. */
  prepareUpgrade(stateFile: string | undefined, timeoutMs: number): UpgradeHandover;
}

/** What framework_upgrade_prepare answers: where the new daemon finds everything. */
export interface UpgradeHandover {
  /** This daemon's process id (the upgrader stops it with SIGTERM once the new one is ready). */
  pid: number;
  /** State file just written (save_config format + plugins): the new daemon starts from it. */
  state_file: string;
  rpc_socket: string;
  socket_dir: string;
  run_dir: string;
}

/** SPDK's framework methods; rpc.py's save_config is built from framework_get_subsystems + framework_get_config. */
export function frameworkRpcMethods(host: FrameworkHost): RpcMethod[] {
  const [major, minor, patch] = CORE_VERSION.split(/[.-]/).map((x) => Number.parseInt(x, 10));
  return [
    {
      name: 'spdk_get_version',
      description: 'Version of the daemon (Blockwork core version, in SPDK\'s result shape)',
      states: ['startup', 'runtime'],
      handler: () => ({
        version: `Blockwork v${CORE_VERSION}`,
        fields: { major, minor, patch, suffix: '', commit: '' },
      }),
    },
    {
      name: 'rpc_get_methods',
      description: 'Names of the RPC methods this daemon provides',
      states: ['startup', 'runtime'],
      params: {
        properties: {
          current: { type: 'boolean', description: 'Only methods callable in the current state' },
          include_aliases: { type: 'boolean', description: 'Include deprecated aliases (Blockwork has none)' },
        },
      },
      handler: (p: { current?: boolean }) => host.registry.names(p.current ?? false),
    },
    {
      name: 'framework_get_subsystems',
      description: 'Subsystems in initialisation order with their dependencies',
      handler: () => host.subsystems.map((s) => ({ subsystem: s.name, depends_on: [...s.dependsOn] })),
    },
    {
      name: 'framework_get_config',
      description: "One subsystem's configuration as replayable RPC calls",
      params: {
        properties: {
          name: { type: 'string', description: 'Subsystem name' },
          with_batches: { type: 'boolean', description: 'Group entries into batches (Blockwork writes none)' },
        },
        required: ['name'],
      },
      handler: (p: { name: string }) => {
        const s = host.subsystems.find((x) => x.name === p.name);
        if (!s) throw coreError('CONFIG_INVALID', `no subsystem named '${p.name}'`);
        return s.config();
      },
    },
    {
      name: 'framework_upgrade_prepare',
      description: 'Upgrade handover: save the state, then release the RPC socket and its lock while vhost and bdev I/O go on, so a new daemon can take over (blockwork upgrade); listens again if not stopped within timeout_ms',
      params: {
        properties: {
          state_file: { type: 'string', description: 'Where to save the state when the daemon runs without --state-file (default: its own state file)' },
          timeout_ms: { type: 'integer', minimum: 1000, description: 'Re-open the RPC socket if the daemon has not been stopped by then (default 60000)' },
        },
      },
      handler: (p: { state_file?: string; timeout_ms?: number }) => host.prepareUpgrade(p.state_file, p.timeout_ms ?? 60_000),
    },
    {
      name: 'spdk_kill_instance',
      description: 'Shut the daemon down as if it received the named signal (SIGINT or SIGTERM)',
      params: {
        properties: { sig_name: { type: 'string', enum: ['SIGINT', 'SIGTERM', 'SIGQUIT'], description: 'Signal name' } },
        required: ['sig_name'],
      },
      handler: (p: { sig_name: string }) => {
        setImmediate(() => host.requestShutdown(p.sig_name));
        return true;
      },
    },
  ];
}
