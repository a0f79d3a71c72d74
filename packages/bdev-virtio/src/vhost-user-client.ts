import {
  closeFd, requestName, VhostUserConnection, VhostUserFlags, type VhostUserMessage, VhostUserProtocolFeature, VhostUserRequest as R,
} from '@blockwork/vhost-user';
import { virtioError } from './errors';

/** Requests the back end always answers (the rest are answered only with REPLY_ACK + NEED_REPLY). */
const ALWAYS_REPLIES: ReadonlySet<number> = new Set([
  R.GET_FEATURES, R.GET_PROTOCOL_FEATURES, R.GET_QUEUE_NUM, R.GET_CONFIG, R.GET_VRING_BASE,
  R.GET_INFLIGHT_FD, R.GET_STATUS, R.GET_MAX_MEM_SLOTS,
]);

interface Waiter {
  request: number;
  resolve(m: VhostUserMessage | null): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * The front end's side of the control channel: strictly one request at a time in flight is not
 * required, replies come back in order, so waiters form a FIFO. Control plane only (promises here
 * are fine). A reply that does not match, or a timeout, leaves the stream out of step, so both close
 * the connection.
 */
export class VhostUserClient {
  /** Negotiated protocol features (set by the driver after SET_PROTOCOL_FEATURES). */
  protocolFeatures = 0n;
  private readonly waiters: Waiter[] = [];
  private closeErr: Error | null = null;
  /** Resolves when the connection closes: undefined for a local close or orderly peer close, else the error. */
  readonly closed: Promise<Error | undefined>;
  private resolveClosed!: (e: Error | undefined) => void;
  /** Called once when the connection goes away for any reason but a local close. */
  onDisconnect: (err: Error) => void = () => {};

  constructor(readonly conn: VhostUserConnection, private readonly timeoutMs: number) {
    this.closed = new Promise((r) => { this.resolveClosed = r; });
    conn.onMessage = (m) => this.onMessage(m);
    conn.onClose = (err) => {
      this.resolveClosed(err);
      this.fail(virtioError('VIRTIO_DISCONNECTED', `vhost-user back end closed the connection${err ? `: ${err.message}` : ''}`, { cause: err }));
    };
  }

  get isOpen(): boolean {
    return this.conn.isOpen;
  }

  /**
   * Sends a request. Resolves with the reply for requests that have one; for the others, with
   * REPLY_ACK negotiated, waits for the ack (and rejects VIRTIO_NEGOTIATION_FAILED when non-zero),
   * else resolves null at once. `ack: false` sends without NEED_REPLY even when REPLY_ACK is on.
   */
  request(request: number, payload: Uint8Array = Buffer.alloc(0), fds: number[] = [], opts: { ack?: boolean } = {}): Promise<VhostUserMessage | null> {
    if (this.closeErr !== null || !this.conn.isOpen) return Promise.reject(this.closeErr ?? virtioError('VIRTIO_DISCONNECTED', 'vhost-user connection is closed'));
    const replies = ALWAYS_REPLIES.has(request);
    const ack = !replies && opts.ack !== false && (this.protocolFeatures & (1n << BigInt(VhostUserProtocolFeature.REPLY_ACK))) !== 0n;
    const flags = VhostUserFlags.VERSION | (ack ? VhostUserFlags.NEED_REPLY : 0);
    const p = replies || ack
      ? new Promise<VhostUserMessage | null>((resolve, reject) => {
        const timer = setTimeout(() => this.timeout(request), this.timeoutMs);
        this.waiters.push({ request, resolve, reject, timer });
      })
      : Promise.resolve(null);
    this.conn.send(request, flags, payload, fds);
    if (!ack) return p;
    return p.then((m) => {
      const v = m!.payload.length === 8 ? m!.payload.readBigUInt64LE(0) : -1n;
      if (v !== 0n) throw virtioError('VIRTIO_NEGOTIATION_FAILED', `back end refused ${requestName(request)} (ack ${v})`);
      return m;
    });
  }

  private onMessage(m: VhostUserMessage): void {
    const w = this.waiters.shift();
    if (w === undefined || w.request !== m.request || (m.flags & VhostUserFlags.REPLY) === 0) {
      for (const fd of m.fds) closeFd(fd);
      const what = w === undefined ? 'unexpected' : `expected a reply to ${requestName(w.request)}, got`;
      const err = virtioError('VIRTIO_NEGOTIATION_FAILED', `${what} ${requestName(m.request)} (flags 0x${m.flags.toString(16)})`);
      if (w !== undefined) {
        clearTimeout(w.timer);
        w.reject(err);
      }
      this.fail(err);
      return;
    }
    clearTimeout(w.timer);
    w.resolve(m);
  }

  private timeout(request: number): void {
    this.fail(virtioError('VIRTIO_TIMEOUT', `no reply to ${requestName(request)} within ${this.timeoutMs} ms`));
  }

  /** Rejects every waiter and closes the connection. */
  fail(err: Error, local = false): void {
    this.resolveClosed(local ? undefined : err);
    if (this.closeErr !== null) return;
    this.closeErr = err;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.conn.close();
    if (!local) this.onDisconnect(err);
  }

  close(): void {
    this.fail(virtioError('VIRTIO_DISCONNECTED', 'vhost-user connection closed by the front end'), true);
  }
}
