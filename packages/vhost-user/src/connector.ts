import { VhostUserConnection } from './connection';

/** Default time between two connect attempts while the peer is not listening, in ms. */
export const DEFAULT_CONNECT_RETRY_MS = 10;

/** What a VhostUserConnector reports to its owner. Called on Node's loop. */
export interface VhostUserConnectorEvents {
  /**
   * A new connection; the owner now owns it. It may still sit in the listener's backlog (the peer
   * has not accepted yet): its first message tells when it was taken. `attempts` counts the
   * connect calls since `connect()`, `outageMs` the time since then.
   */
  onConnection(c: VhostUserConnection, info: { attempts: number; outageMs: number }): void;
  /** The first failed attempt of an outage (positive errno: ENOENT, ECONNREFUSED, EAGAIN, EACCES…). Once per `connect()`. */
  onUnreachable?(errno: number): void;
}

/**
 * The connecting side of a vhost-user socket whose peer listens: a back end in client mode
 * (DPDK's RTE_VHOST_USER_CLIENT) connecting to QEMU's `server=on` chardev, or a front end
 * connecting to a back end. `connect()` tries at once and then every `retryMs` until a connect
 * succeeds, whatever the failure (no socket yet, nobody listening, backlog full, permissions an
 * operator may still fix). Each attempt is one non-blocking system call; the timer does not keep
 * the process alive. After a connection was handed over the connector is idle: the owner calls
 * `connect()` again when that connection is gone.
 */
export class VhostUserConnector {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private attempts = 0;
  private since = 0;

  constructor(
    /** Socket path of the listening peer (at most 107 bytes). */
    readonly path: string,
    private readonly events: VhostUserConnectorEvents,
    /** Milliseconds between attempts while the peer cannot be reached. */
    readonly retryMs = DEFAULT_CONNECT_RETRY_MS,
  ) {}

  /** True while attempts are scheduled (an outage). */
  get retrying(): boolean {
    return this.timer !== null;
  }

  /**
   * Starts connecting: one attempt now (synchronously), then every `retryMs`. Does nothing while
   * already retrying or after `stop()`. Throws VHOST_USER_SOCKET_PATH for a path that cannot fit.
   */
  connect(): void {
    if (this.stopped || this.timer !== null) return;
    this.attempts = 0;
    this.since = Date.now();
    this.attempt();
  }

  /** Cancels any pending attempt for good; the connection already handed over is the owner's. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private attempt(): void {
    this.timer = null;
    if (this.stopped) return;
    this.attempts++;
    const r = VhostUserConnection.tryConnect(this.path);
    if (typeof r !== 'number') {
      this.events.onConnection(r, { attempts: this.attempts, outageMs: Date.now() - this.since });
      return;
    }
    if (this.attempts === 1) this.events.onUnreachable?.(r);
    this.timer = setTimeout(() => this.attempt(), this.retryMs);
    this.timer.unref();
  }
}
