import type { Socket } from 'node:net';

/**
 * Bytes received from a socket and not parsed yet, as a list of chunks (no concatenation until a
 * read straddles chunks). Buffers Node hands to 'data' are never reused, so views taken from them
 * stay valid after they leave the queue.
 */
export class ByteQueue {
  private chunks: Buffer[] = [];
  /** Bytes queued. */
  length = 0;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.length += b.length;
  }

  /** Removes and returns the first `n` bytes (n ≤ length): a view when one chunk holds them, else a copy. */
  take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0];
    if (first.length >= n) {
      this.length -= n;
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    this.copyOut(out, 0, n);
    return out;
  }

  /** Moves the first `n` bytes (n ≤ length) into `dst` at `pos`. */
  copyOut(dst: Uint8Array, pos: number, n: number): void {
    let done = 0;
    while (done < n) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - done);
      dst.set(k === c.length ? c : c.subarray(0, k), pos + done);
      done += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.length -= n;
  }

  /** Removes everything queued and returns it as chunks. */
  drain(): Buffer[] {
    const c = this.chunks;
    this.chunks = [];
    this.length = 0;
    return c;
  }
}

/**
 * Promise-based exact reads for the negotiation phase (control plane, a handful of messages).
 * `detach()` hands the bytes already buffered to the transmission-phase parser.
 */
export class SocketReader {
  readonly queue = new ByteQueue();
  private want = 0;
  private waiter: { resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private ended: Error | null = null;
  private readonly onData = (b: Buffer) => {
    this.queue.push(b);
    this.wake();
  };
  private readonly onEnd = () => this.fail(new Error('connection closed by peer'));
  private readonly onError = (e: Error) => this.fail(e);

  constructor(private readonly socket: Socket) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  /** Resolves with exactly `n` bytes; rejects if the connection ends first. */
  read(n: number): Promise<Buffer> {
    if (this.queue.length >= n) return Promise.resolve(n === 0 ? Buffer.alloc(0) : this.queue.take(n));
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      this.want = n;
      this.waiter = { resolve, reject };
    });
  }

  /** Stops listening; returns the bytes received beyond what was read. */
  detach(): Buffer[] {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    return this.queue.drain();
  }

  private wake(): void {
    if (this.waiter && this.queue.length >= this.want) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve(this.queue.take(this.want));
    }
  }

  private fail(e: Error): void {
    this.ended ??= e;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(e);
  }
}
