import { connect, type Socket } from 'node:net';
import { JsonStream } from './json-stream';
import { RpcError } from './rpc-error';

interface Waiter {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/**
 * A JSON-RPC client for a daemon's Unix socket (the CLI's `blockwork rpc`). Requests on one
 * connection may be answered out of order; replies are matched by id. A JSON-RPC error rejects
 * with RpcError carrying the server's code, message and data.
 */
export class RpcClient {
  private nextId = 1;
  private readonly waiters = new Map<number, Waiter>();
  private readonly stream = new JsonStream({ maxValueBytes: 64 * 1024 * 1024 });

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('close', () => this.failAll(new Error('connection closed by the daemon')));
    socket.on('error', (e) => this.failAll(e));
  }

  /** One call on a connection of its own (opened, then closed whatever the outcome). */
  static async callOnce(path: string, method: string, params?: unknown): Promise<unknown> {
    const c = await RpcClient.connect(path);
    try {
      return await c.call(method, params);
    } finally {
      c.close();
    }
  }

  static connect(path: string): Promise<RpcClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once('connect', () => {
        s.removeListener('error', reject);
        resolve(new RpcClient(s));
      });
      s.once('error', (e: NodeJS.ErrnoException) => {
        reject(new Error(`cannot connect to ${path}: ${e.code === 'ENOENT' ? 'no such socket (is the daemon running?)' : e.message}`));
      });
    });
  }

  call(method: string, params?: unknown): Promise<unknown> {
    const id = this.nextId++;
    const req: Record<string, unknown> = { jsonrpc: '2.0', method, id };
    if (params !== undefined) req.params = params;
    return new Promise((resolve, reject) => {
      this.waiters.set(id, { resolve, reject });
      this.socket.write(JSON.stringify(req));
    });
  }

  close(): void {
    this.socket.end();
  }

  private onData(chunk: Buffer): void {
    const { values, error } = this.stream.feed(chunk);
    for (const text of values) {
      const msg = JSON.parse(text) as { id: number; result?: unknown; error?: { code: number; message: string; data?: unknown } };
      const w = this.waiters.get(msg.id);
      if (!w) continue;
      this.waiters.delete(msg.id);
      if (msg.error) w.reject(new RpcError(msg.error.code, msg.error.message, msg.error.data));
      else w.resolve(msg.result);
    }
    if (error) this.failAll(error);
  }

  private failAll(e: Error): void {
    for (const w of this.waiters.values()) w.reject(e);
    this.waiters.clear();
  }
}
