import { createServer, type Server, type Socket } from 'node:net';
import { unlinkSync } from 'node:fs';
import type { BdevLayer, Logger } from '@blockwork/core';
import { nbdError } from './errors';
import { NbdExport, type NbdExportInfo } from './nbd-export';
import { NBD_DEFAULT_PORT } from './protocol';
import { NbdServerConnection } from './server-connection';

/** Params of nbd_server_start. */
export interface NbdServerStartParams {
  listen_address?: string;
  port?: number;
  socket?: string;
}

/** Params of nbd_server_add_export. */
export interface NbdAddExportParams {
  bdev: string;
  name?: string;
  readonly?: boolean;
}

/**
 * The NBD export server: one listener (TCP or Unix socket) and the exports it serves. Exports exist
 * independently of the listener (they may be added before nbd_server_start, and survive a stop).
 */
export class NbdServer {
  private server: Server | null = null;
  private listenParams: NbdServerStartParams | null = null;
  private readonly exports = new Map<string, NbdExport>();
  /** Connections still negotiating or in transmission. */
  private readonly connections = new Set<NbdServerConnection>();

  constructor(
    private readonly layer: BdevLayer,
    private readonly log: Logger,
  ) {}

  get running(): boolean {
    return this.server !== null;
  }

  /** Where the server listens: TCP port actually bound (port 0 picks one), or the socket path. */
  address(): { address?: string; port?: number; socket?: string } | null {
    if (!this.server) return null;
    const a = this.server.address();
    if (a === null || typeof a === 'string') return { socket: this.listenParams?.socket };
    return { address: a.address, port: a.port };
  }

  /** Starts listening. Async: resolves once bound, rejects with NBD_LISTEN_FAILED. */
  async start(p: NbdServerStartParams): Promise<void> {
    if (this.server) throw nbdError('NBD_SERVER_RUNNING', `the NBD server is already listening (${JSON.stringify(this.address())})`);
    if (p.socket !== undefined && (p.listen_address !== undefined || p.port !== undefined)) {
      throw nbdError('NBD_ADDRESS', 'nbd_server_start: give socket, or listen_address/port, not both');
    }
    const server = createServer((s) => this.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(nbdError('NBD_LISTEN_FAILED',
        `NBD server cannot listen on ${p.socket ?? `${p.listen_address ?? '127.0.0.1'}:${p.port ?? NBD_DEFAULT_PORT}`}: ${e.message}`,
        { cause: e, errno: e.errno === undefined ? undefined : Math.abs(e.errno) })));
      if (p.socket !== undefined) server.listen(p.socket, resolve);
      else server.listen(p.port ?? NBD_DEFAULT_PORT, p.listen_address ?? '127.0.0.1', resolve);
    });
    server.on('error', (e) => this.log.error({ err: e.message }, 'nbd: server error'));
    this.server = server;
    this.listenParams = { ...p };
    this.log.info({ listen: this.address() }, 'nbd: server listening');
  }

  /** Stops listening and drops every connection; exports stay defined. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) throw nbdError('NBD_SERVER_NOT_RUNNING', 'the NBD server is not listening');
    this.server = null;
    for (const c of [...this.connections]) c.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.listenParams?.socket !== undefined) {
      try {
        unlinkSync(this.listenParams.socket);
      } catch {
        // Already gone (Node removes its own socket file on close).
      }
    }
    this.listenParams = null;
  }

  /** The params nbd_server_start was called with (for save_config), or null when stopped. */
  startParams(): NbdServerStartParams | null {
    return this.listenParams;
  }

  addExport(p: NbdAddExportParams): void {
    const bdev = this.layer.require(p.bdev);
    const name = p.name ?? bdev.name;
    if (Buffer.byteLength(name) > 4096 || name.includes('\0')) throw nbdError('NBD_EXPORT_NAME', `export name '${name}' is not allowed`);
    if (this.exports.has(name)) throw nbdError('NBD_EXPORT_EXISTS', `NBD export '${name}' already exists`);
    const exp = new NbdExport(name, this.layer, bdev.name, p.readonly === true, (e) => {
      this.log.info({ export: e.name, bdev: e.desc.bdev.name }, 'nbd: bdev removed, export dropped');
      this.dropExport(e);
    });
    this.exports.set(name, exp);
    this.log.info({ export: name, bdev: bdev.name, readonly: exp.readonly }, 'nbd: export added');
  }

  removeExport(name: string): void {
    const exp = this.exports.get(name);
    if (!exp) throw nbdError('NBD_EXPORT_NOT_FOUND', `NBD export '${name}' does not exist`);
    this.dropExport(exp);
  }

  private dropExport(exp: NbdExport): void {
    if (this.exports.get(exp.name) === exp) this.exports.delete(exp.name);
    exp.close();
  }

  /** Exports in creation order. */
  list(): NbdExportInfo[] {
    return [...this.exports.values()].map((e) => e.info());
  }

  /** Params of nbd_server_add_export for each export, for save_config. */
  exportParams(): NbdAddExportParams[] {
    return [...this.exports.values()].map((e) => {
      const p: NbdAddExportParams = { bdev: e.desc.bdev.name, name: e.name };
      if (e.readonly) p.readonly = true;
      return p;
    });
  }

  /** Stops the listener (if running) and drops every export. */
  async shutdown(): Promise<void> {
    if (this.server) await this.stop();
    for (const e of [...this.exports.values()]) this.dropExport(e);
  }

  private accept(socket: Socket): void {
    const conn = new NbdServerConnection(socket, {
      find: (n) => this.exports.get(n),
      names: () => [...this.exports.keys()],
    }, this.log, (c) => this.connections.delete(c));
    this.connections.add(conn);
    void conn.start();
  }
}
