import type { Logger } from '@blockwork/core';
import { VhostUserConnector } from '@blockwork/vhost-user';
import type { VirtioAttachParams } from './rpc';
import type { VirtioBlkDriver } from './virtio-blk-driver';

/**
 * Follows a back end across restarts and upgrades (attach param `reconnect_ms`): when the
 * connection goes away, outstanding requests stay in the rings, new ones keep queueing, and the
 * socket path is retried every `reconnect_ms` until a back end answers; the driver then replays
 * the set-up on the new connection (`VirtioBlkDriver.resume`) and the back end completes or
 * resubmits everything. Logged once per outage, with its length when over.
 */
export class BackEndReconnect {
  private readonly connector: VhostUserConnector;
  /** When the connection went away (ms), 0 while connected. */
  private since = 0;
  private stopped = false;
  /** Completed outages: ms from losing the back end to the resumed set-up. */
  readonly outages: number[] = [];

  constructor(private readonly p: VirtioAttachParams, private readonly driver: VirtioBlkDriver, private readonly log: Logger) {
    this.connector = new VhostUserConnector(p.traddr, {
      onConnection: (conn) => {
        driver.resume(conn).then(() => {
          const ms = Date.now() - this.since;
          this.outages.push(ms);
          this.since = 0;
          this.log.info({ controller: p.name, traddr: p.traddr, outageMs: ms }, 'vhost-user back end reconnected; pending I/O continues');
        }, (err: Error) => {
          if (this.stopped) return;
          this.log.warn({ controller: p.name, traddr: p.traddr, err: err.message }, 'vhost-user back end refused the set-up; retrying');
          this.retry();
        });
      },
    }, p.reconnect_ms);
    driver.onDisconnect = (err) => {
      if (this.stopped) return;
      this.since = Date.now();
      this.log.warn({ controller: p.name, traddr: p.traddr, err: err.message, reconnectMs: p.reconnect_ms }, 'vhost-user back end went away; reconnecting, I/O stays pending');
      this.connector.connect();
    };
  }

  /** True while the back end is away. */
  get down(): boolean {
    return this.since !== 0;
  }

  /** No more reconnects (detach, shutdown). */
  stop(): void {
    this.stopped = true;
    this.connector.stop();
  }

  private retry(): void {
    // Give a back end that closed on us a moment instead of spinning on it.
    setTimeout(() => this.connector.connect(), this.p.reconnect_ms).unref();
  }
}
