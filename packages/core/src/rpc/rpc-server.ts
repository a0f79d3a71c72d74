import { chmod, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { Errno, strerror } from '../errno';
import { coreError, isBlockworkError } from '../errors';
import type { Logger } from '../logger';
import { coreNative } from '../native';
import { JsonStream } from './json-stream';
import { RpcCode, isRpcError } from './rpc-error';
import type { RpcContext } from './types';

/** Runs one request. Throw RpcError, BlockworkError or anything else; the server maps it. */
export type RpcDispatch = (method: string, params: unknown, ctx: RpcContext) => Promise<unknown>;

/** Options of an {@link RpcServer}. */
export interface RpcServerOptions {
  /** Unix socket path (SPDK: /var/tmp/spdk.sock). `${path}.lock` is taken with flock to own it. */
  path: string;
  /** Permission bits of the socket file; optional, default 0o600. */
  mode?: number;
  /** Called once per request with params as received (undefined when absent or null). */
  dispatch: RpcDispatch;
  /** Connection-level events and internal errors are logged here. */
  log: Logger;
  /** Concurrent clients; more are accepted and closed at once. Optional, default 64 (SPDK). */
  maxConnections?: number;
}

type Id = string | number | null;

interface ErrorBody {
  code: number;
  message: string;
  data?: unknown;
}

interface Request {
  id: Id;
  method: string;
  params: unknown;
}

/** What a connection needs from its server. */
interface ConnectionHost {
  readonly dispatch: RpcDispatch;
  readonly log: Logger;
  closed(conn: RpcConnection): void;
}

const DEFAULT_MODE = 0o600;
const DEFAULT_MAX_CONNECTIONS = 64;

/**
 * JSON-RPC 2.0 server on a Unix socket, wire-compatible with SPDK's scripts/rpc.py: requests are
 * concatenated JSON values with no delimiter, responses are compact JSON each followed by "\n",
 * requests on one connection run concurrently and are answered as they complete. The only place
 * where handler errors become JSON-RPC error codes.
 */
export class RpcServer {
  private server: Server | null = null;
  private lockFd = -1;
  private readonly conns = new Set<RpcConnection>();
  private readonly host: ConnectionHost;

  constructor(private readonly opts: RpcServerOptions) {
    this.host = { dispatch: opts.dispatch, log: opts.log, closed: (c) => this.conns.delete(c) };
  }

  /**
   * Takes the lock, replaces a stale socket file and listens. Async; rejects with code
   * RPC_SOCKET_IN_USE (leaving the socket alone) when another server owns the path.
   */
  async listen(): Promise<void> {
    if (this.server !== null || this.lockFd >= 0) throw new Error(`RPC server on ${this.opts.path} is already listening`);
    // sun_path holds 107 bytes; a longer path is silently truncated by the kernel, binding elsewhere.
    if (Buffer.byteLength(this.opts.path) > 107) {
      throw coreError('RPC_SOCKET_PATH', `RPC socket path ${this.opts.path} is longer than the 107 bytes a Unix socket address holds`);
    }
    this.lockFd = this.lock();
    try {
      await unlinkIfExists(this.opts.path);
      this.server = await this.bind();
      await chmod(this.opts.path, this.opts.mode ?? DEFAULT_MODE);
    } catch (e) {
      this.server?.close();
      this.server = null;
      await this.unlock();
      throw e;
    }
    this.opts.log.info({ path: this.opts.path }, 'RPC server listening');
  }

  /** Stops accepting, aborts in-flight requests, drops clients, removes socket and lock file. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server !== null) {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const conn of [...this.conns]) conn.destroy();
      await stopped;
      // libuv already unlinks a pipe's path on close; this covers a path replaced meanwhile.
      await unlinkIfExists(this.opts.path);
    }
    await this.unlock();
  }

  private lock(): number {
    const lockPath = `${this.opts.path}.lock`;
    const fd = coreNative().lockFile(lockPath);
    if (typeof fd === 'number') return fd;
    if (fd.syscall === 'flock' && (fd.errno === Errno.EWOULDBLOCK || fd.errno === Errno.EAGAIN)) {
      throw coreError('RPC_SOCKET_IN_USE', `RPC socket ${this.opts.path} is in use by another process (lock ${lockPath} held)`);
    }
    const err: NodeJS.ErrnoException = new Error(`${fd.syscall} ${lockPath}: ${strerror(fd.errno)}`);
    Object.assign(err, { errno: -fd.errno, code: getSystemErrorName(-fd.errno), syscall: fd.syscall, path: lockPath });
    throw err;
  }

  /** Unlinks the lock file while still holding it, so no other server can slip in between. */
  private async unlock(): Promise<void> {
    if (this.lockFd < 0) return;
    await unlinkIfExists(`${this.opts.path}.lock`);
    coreNative().unlockFile(this.lockFd);
    this.lockFd = -1;
  }

  private bind(): Promise<Server> {
    const server = createServer((socket) => this.accept(socket));
    const mode = this.opts.mode ?? DEFAULT_MODE;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.once('listening', () => {
        server.off('error', reject);
        server.on('error', (err) => this.opts.log.error({ err }, 'RPC server error'));
        resolve(server);
      });
      // listen(path) binds synchronously in a non-cluster process, so the umask covers exactly
      // this socket's creation: the file never exists with wider permissions than `mode`.
      const umask = process.umask(~mode & 0o777);
      try {
        server.listen({ path: this.opts.path, backlog: 512 });
      } finally {
        process.umask(umask);
      }
    });
  }

  private accept(socket: Socket): void {
    const max = this.opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    if (this.server === null || this.conns.size >= max) {
      this.opts.log.warn({ max }, 'RPC connection limit reached or server closing; closing new connection');
      socket.on('error', () => undefined);
      socket.destroy();
      return;
    }
    this.conns.add(new RpcConnection(socket, this.host));
  }
}

/** One client: splits its byte stream into requests and writes each answer when it is ready. */
class RpcConnection {
  private readonly stream = new JsonStream();
  private readonly aborter = new AbortController();
  private open = true;

  constructor(
    private readonly socket: Socket,
    private readonly host: ConnectionHost,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // EPIPE/ECONNRESET from a client that went away: 'close' follows and does the cleanup.
    socket.on('error', (err) => host.log.debug({ err: err.message }, 'RPC client socket error'));
    socket.on('close', () => this.shutdown());
  }

  /** Server shutdown: abort everything in flight and drop the client. */
  destroy(): void {
    this.shutdown();
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (!this.open) return;
    const { values, error } = this.stream.feed(chunk);
    for (const text of values) {
      let request: unknown;
      try {
        request = JSON.parse(text);
      } catch (e) {
        return this.parseError(e as Error);
      }
      this.handle(request).catch((err: unknown) => this.host.log.error({ err }, 'RPC request handling failed'));
    }
    if (error) this.parseError(error);
  }

  /** SPDK closes the connection on malformed input; we still try to deliver the -32700 first. */
  private parseError(err: Error): void {
    this.host.log.warn({ reason: err.message }, 'jsonrpc parse request failed; closing connection');
    this.send(errorText(null, { code: RpcCode.PARSE_ERROR, message: 'Parse error' }));
    this.shutdown();
    this.socket.end(() => this.socket.destroy());
  }

  private async handle(request: unknown): Promise<void> {
    const reply = Array.isArray(request) ? await this.runBatch(request) : await this.runOne(request);
    if (reply !== null) this.send(reply);
  }

  /** Batch (SPDK v26.05): one array answer without the notifications' results; empty is invalid. */
  private async runBatch(members: unknown[]): Promise<string | null> {
    if (members.length === 0) return errorText(null, { code: RpcCode.INVALID_REQUEST, message: 'Invalid request' });
    const replies = (await Promise.all(members.map((m) => this.runOne(m)))).filter((r) => r !== null);
    return replies.length === 0 ? null : `[${replies.join(',')}]`;
  }

  /** The response text, or null when nothing is to be sent (notification success, client gone). */
  private async runOne(raw: unknown): Promise<string | null> {
    const req = parseRequest(raw);
    if (typeof req === 'string') {
      this.host.log.debug({ reason: req }, 'invalid JSON-RPC request');
      return errorText(null, { code: RpcCode.INVALID_REQUEST, message: 'Invalid request' });
    }
    try {
      const result = await this.host.dispatch(req.method, req.params, { signal: this.aborter.signal });
      if (!this.open || req.id === null) return null;
      return JSON.stringify({ jsonrpc: '2.0', id: req.id, result: result === undefined ? null : result });
    } catch (e) {
      if (!this.open) return null;
      // SPDK sends errors even for notifications, with "id": null.
      return errorText(req.id, toErrorBody(e, req.method, this.host.log));
    }
  }

  private send(text: string): void {
    if (!this.open || this.socket.destroyed || !this.socket.writable) return;
    this.socket.write(`${text}\n`);
  }

  private shutdown(): void {
    if (!this.open) return;
    this.open = false;
    this.aborter.abort(new Error('RPC client disconnected'));
    this.host.closed(this);
  }
}

/**
 * SPDK's envelope checks; every failure is -32600 with id null, since SPDK records the id only
 * after version and method passed. Returns the reason text on failure.
 */
function parseRequest(raw: unknown): Request | string {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'request is not an object';
  const r = raw as Record<string, unknown>;
  if (r.jsonrpc !== undefined && r.jsonrpc !== '2.0') return 'jsonrpc must be "2.0"';
  if (typeof r.method !== 'string') return 'method must be a string';
  const id = r.id ?? null;
  if (id !== null && typeof id !== 'string' && typeof id !== 'number') return 'id must be a string, number or null';
  // null params count as absent; arrays pass through for the method to reject (-32602).
  const params = r.params ?? undefined;
  if (params !== undefined && typeof params !== 'object') return 'params must be an object or array';
  return { id, method: r.method, params };
}

function toErrorBody(e: unknown, method: string, log: Logger): ErrorBody {
  if (isRpcError(e)) return e.data === undefined ? { code: e.rpcCode, message: e.message } : { code: e.rpcCode, message: e.message, data: e.data };
  // Node's system errors also match here with a negative errno; both become -errno, as SPDK.
  if (isBlockworkError(e)) return { code: -Math.abs(e.errno), message: e.message, data: { code: e.code } };
  log.error({ err: e, method }, 'RPC handler failed');
  const text = e instanceof Error ? e.message : String(e);
  return { code: RpcCode.INTERNAL_ERROR, message: `Internal error: ${text}` };
}

function errorText(id: Id, error: ErrorBody): string {
  try {
    return JSON.stringify({ jsonrpc: '2.0', id, error });
  } catch {
    // Unserialisable `data` (a BigInt, a cycle) must not cost the client its answer.
    return JSON.stringify({ jsonrpc: '2.0', id, error: { code: error.code, message: error.message } });
  }
}

async function unlinkIfExists(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
