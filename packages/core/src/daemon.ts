import { mkdirSync } from 'node:fs';
import { container as rootContainer, type DependencyContainer, Lifecycle } from 'tsyringe';
import { BdevLayer } from './bdev/bdev-layer';
import { BdevSubsystem } from './bdev/bdev-subsystem';
import { MallocBdevModule } from './bdev/malloc/malloc-module';
import { NullBdevModule } from './bdev/null/null-module';
import { PassthruBdevModule } from './bdev/passthru/passthru-module';
import type { BdevModule } from './bdev/types';
import { type BlockworkConfig, readConfigFile } from './config/config-file';
import { replayConfig } from './config/config-replay';
import { frameworkRpcMethods, type UpgradeHandover } from './framework-rpc';
import { createLogger, type Logger } from './logger';
import { configDir, installedFirstParty, loadPlugins, registerPlugins } from './plugin/plugin-loader';
import { RpcRegistry } from './rpc/rpc-registry';
import { RpcServer } from './rpc/rpc-server';
import type { RpcMethodProvider } from './rpc/types';
import type { Subsystem } from './subsystem';
import { Tokens } from './tokens';
import { orderSubsystems } from './subsystem-order';
import { PerfRpc } from './perf/perf-rpc';
import { StateFile } from './state-file';
import { coreError } from './errors';

/** Default RPC socket, as the CLI documents it. */
export const DEFAULT_RPC_SOCKET = '/var/tmp/blockwork.sock';

export interface DaemonOptions {
  /** Config file to load (SPDK JSON config + `plugins`). */
  configPath?: string;
  /** Config object, when not read from a file (e.g. the CLI's embedded default). */
  config?: BlockworkConfig;
  /** RPC socket path; null for an in-process daemon without a socket (tests, `blockwork perf --config`). */
  rpcSocket?: string | null;
  /** Mode of the RPC socket (default 0o600). */
  rpcSocketMode?: number;
  /** Directory for vhost controller sockets (SPDK's -S); default the run directory. */
  socketDir?: string;
  /** Run directory for state and sockets (default /var/tmp/blockwork). */
  runDir?: string;
  /**
   * State file (save_config format + plugins), rewritten after every RPC that changes state. If it
   * exists at start it is loaded instead of `config`/`configPath`: a restart comes back as it was.
   */
  stateFile?: string;
  /** Directories to resolve plugin names from besides the config's (the CLI passes its own). */
  pluginSearchDirs?: string[];
  logger?: Logger;
}

/**
 * A composed Blockwork daemon: a child DI container holding the bdev layer, core's modules and
 * every plugin's classes, an RPC registry, the config replayed into it, and the RPC socket.
 */
export class Daemon {
  readonly subsystems: Subsystem[];
  private server: RpcServer | null = null;
  private state: StateFile | null = null;
  private stopping: Promise<void> | null = null;
  private pluginSpecs: string[] = [];
  /** Armed by prepareUpgrade; also keeps the process alive once the RPC server is gone. */
  private upgradeTimer: NodeJS.Timeout | null = null;
  private readonly shutdownListeners: Array<(signal: string) => void> = [];

  private constructor(
    readonly container: DependencyContainer,
    readonly layer: BdevLayer,
    readonly registry: RpcRegistry,
    readonly log: Logger,
    readonly options: DaemonOptions,
  ) {
    this.subsystems = orderSubsystems(container.isRegistered(Tokens.Subsystem) ? container.resolveAll<Subsystem>(Tokens.Subsystem) : []);
  }

  /** Composes, loads the config, and listens on the RPC socket (unless rpcSocket is null). */
  static async start(options: DaemonOptions = {}): Promise<Daemon> {
    const log = options.logger ?? createLogger();
    const saved = options.stateFile ? StateFile.load(options.stateFile) : null;
    if (saved) log.info({ stateFile: options.stateFile }, 'restoring state saved by the previous run');
    const cfg = saved ?? options.config ?? (options.configPath ? readConfigFile(options.configPath) : {});
    const searchDirs = [configDir(options.configPath), ...(options.pluginSearchDirs ?? [])];
    const plugins = loadPlugins(cfg.plugins ?? installedFirstParty(searchDirs), searchDirs);
    const c = rootContainer.createChildContainer();
    const layer = new BdevLayer();
    const registry = new RpcRegistry();
    const runDir = options.runDir ?? '/var/tmp/blockwork';
    const resolved: DaemonOptions = { ...options, runDir, socketDir: options.socketDir ?? runDir };
    c.register(Tokens.BdevLayer, { useValue: layer });
    c.register(Tokens.Logger, { useValue: log });
    c.register(Tokens.RpcRegistry, { useValue: registry });
    c.register(Tokens.DaemonOptions, { useValue: resolved });
    const builtIn: Array<new (...args: never[]) => BdevModule> = [MallocBdevModule, NullBdevModule, PassthruBdevModule];
    for (const m of builtIn) {
      c.register<BdevModule>(Tokens.BdevModule, { useClass: m as never }, { lifecycle: Lifecycle.ContainerScoped });
    }
    c.register(Tokens.Subsystem, { useClass: BdevSubsystem }, { lifecycle: Lifecycle.ContainerScoped });
    c.register(Tokens.RpcMethodProvider, { useClass: PerfRpc }, { lifecycle: Lifecycle.ContainerScoped });
    registerPlugins(c, plugins);
    log.info({ plugins: plugins.map((p) => p.plugin.name) }, 'plugins loaded');
    const d = new Daemon(c, layer, registry, log, resolved);
    d.pluginSpecs = plugins.map((p) => p.spec);
    if (options.stateFile) d.state = new StateFile(options.stateFile, plugins.map((p) => p.spec), () => d.subsystems, log);
    d.collectMethods();
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
    try {
      await replayConfig(cfg, registry, new Set(d.subsystems.map((s) => s.name)), () => d.initSubsystems(), log);
      d.state?.save();
      if (options.rpcSocket !== null) await d.listen(options.rpcSocket ?? DEFAULT_RPC_SOCKET);
    } catch (e) {
      await d.stop();
      throw e;
    }
    log.info({ bdevs: layer.list().map((b) => b.name), rpcSocket: options.rpcSocket }, 'daemon started');
    return d;
  }

  private collectMethods(): void {
    const modules = this.container.resolveAll<BdevModule>(Tokens.BdevModule);
    this.layer.setExaminers(modules);
    const providers = this.container.isRegistered(Tokens.RpcMethodProvider)
      ? this.container.resolveAll<RpcMethodProvider>(Tokens.RpcMethodProvider)
      : [];
    const methods = [
      ...frameworkRpcMethods(this),
      ...modules.flatMap((m) => m.rpcMethods()),
      ...this.subsystems.flatMap((s) => s.rpcMethods?.() ?? []),
      ...providers.flatMap((p) => p.rpcMethods()),
    ];
    for (const m of methods) this.registry.add(m);
  }

  private async initSubsystems(): Promise<void> {
    for (const s of this.subsystems) await s.init?.();
  }

  private async listen(path: string): Promise<void> {
    this.server = new RpcServer({
      path,
      mode: this.options.rpcSocketMode ?? 0o600,
      dispatch: async (method, params, ctx) => {
        const result = await this.registry.call(method, params, ctx);
        if (this.state && StateFile.changes(method)) this.state.save();
        return result;
      },
      log: this.log,
    });
    await this.server.listen();
  }

  /**
   * Upgrade handover, step 1: writes the state (to `stateFile`, else the daemon's own state file),
   * then, once the answer is on its way, releases the RPC socket and its lock. Bdevs and vhost
   * sessions keep serving I/O while the new daemon starts, replays that state (re-creating the
   * vhost sockets at the same paths) and takes the RPC socket; the upgrader then stops this one
   * (SIGTERM). If that has not happened within `timeoutMs` the upgrade was abandoned and the RPC
   * socket is opened again (if the lock is free).
   */
  prepareUpgrade(stateFile: string | undefined, timeoutMs: number): UpgradeHandover {
    const path = stateFile ?? this.options.stateFile;
    const rpcSocket = this.options.rpcSocket ?? DEFAULT_RPC_SOCKET;
    if (!path) throw coreError('CONFIG_INVALID', 'the daemon runs without --state-file: give state_file to save its state for the new daemon');
    if (!this.server) throw coreError('CONFIG_INVALID', 'the daemon has no RPC socket to hand over');
    if (path === this.options.stateFile && this.state) this.state.save();
    else new StateFile(path, this.pluginSpecs, () => this.subsystems, this.log).save();
    const server = this.server;
    this.server = null;
    // After the answer is flushed: close() drops client connections.
    setTimeout(() => {
      void server.close().then(() => this.log.info({ rpcSocket, stateFile: path }, 'upgrade: RPC socket released; serving I/O until stopped'));
    }, 50);
    if (this.upgradeTimer) clearTimeout(this.upgradeTimer);
    this.upgradeTimer = setTimeout(() => {
      this.upgradeTimer = null;
      if (this.stopping || this.server) return;
      this.log.warn({ rpcSocket }, 'upgrade abandoned (not stopped in time): listening on the RPC socket again');
      this.listen(rpcSocket).catch((e: Error) => this.log.error({ err: e.message, rpcSocket }, 'cannot re-open the RPC socket after an abandoned upgrade'));
    }, timeoutMs);
    return { pid: process.pid, state_file: path, rpc_socket: rpcSocket, socket_dir: this.options.socketDir!, run_dir: this.options.runDir! };
  }

  /** Calls an RPC method in-process, with the same validation as over the socket. */
  call(method: string, params?: unknown): Promise<unknown> {
    return this.registry.call(method, params, { signal: new AbortController().signal });
  }

  /** Registers a listener for shutdown requests (spdk_kill_instance); the CLI wires it to stop(). */
  onShutdownRequest(fn: (signal: string) => void): void {
    this.shutdownListeners.push(fn);
  }

  requestShutdown(signal: string): void {
    if (this.shutdownListeners.length === 0) void this.stop();
    for (const fn of this.shutdownListeners) fn(signal);
  }

  /** Stops the RPC server, then finishes subsystems in reverse order (bdevs unregistered newest first). */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.upgradeTimer) clearTimeout(this.upgradeTimer);
      this.upgradeTimer = null;
      await this.server?.close();
      for (const s of [...this.subsystems].reverse()) {
        try {
          await s.fini?.();
        } catch (e) {
          this.log.error({ err: e, subsystem: s.name }, 'subsystem fini failed');
        }
      }
      this.log.info('daemon stopped');
    })();
    return this.stopping;
  }
}
