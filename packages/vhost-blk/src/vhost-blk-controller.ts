import { lstatSync, renameSync, unlinkSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { type BdevDesc, type BdevLayer, Errno, type IoChannel, isBlockworkError, type Logger } from '@blockwork/core';
import { requestName, type VhostUserConnection, VhostUserConnector, VhostUserListener } from '@blockwork/vhost-user';
import { blkConfigImage, blkDeviceOf, offeredFeatures } from './blk-config';
import type { Coalescing } from './blk-queue';
import type { BlkDevice } from './blk-request';
import { vhostBlkError } from './errors';
import { type SessionHost, VhostBlkSession } from './vhost-blk-session';

/** SPDK's coalescing defaults. */
export const DEFAULT_DELAY_BASE_US = 20;
export const DEFAULT_IOPS_THRESHOLD = 60000;

/** What vhost_create_blk_controller was given (kept for save_config and vhost_get_controllers). */
export interface BlkControllerOptions {
  ctrlr: string;
  devName: string;
  /** As given (SPDK accepts hex or a list); reported as "0x…". Informational: one event loop runs everything. */
  cpumask: string | undefined;
  readonly: boolean;
  /**
   * Client mode (DPDK's RTE_VHOST_USER_CLIENT): the front end (QEMU `server=on`) owns the socket at
   * `<socketDir>/<ctrlr>` and the controller connects to it, retrying every few ms whenever it is
   * not connected, until deleted.
   */
  client: boolean;
}

/** Time between connect attempts in client mode while the front end is not listening, ms. */
export const CLIENT_RETRY_MS = 10;
/** Client mode: wait before reconnecting to a front end that closed the connection during the set-up, ms. */
const REFUSED_BACKOFF_MS = 1000;

/**
 * A vhost-user-blk controller: one listening socket `<socketDir>/<ctrlr>` (mode 0600), or in client
 * mode one connection to the front end's socket at that path, exporting one
 * bdev, opened for writing (unless read-only) without a claim, as SPDK does: a migration
 * destination must export the same bdev over NBD while its controller waits for the incoming VM,
 * and a bdev claimed by another module (passthru, a mirror) still refuses the write open.
 * Each connection is a VhostBlkSession; all sessions share the controller's I/O channel.
 */
export class VhostBlkController implements SessionHost {
  readonly sessions = new Set<VhostBlkSession>();
  /** Applied by every queue of every session (blk-queue.ts), read at each completion batch. */
  readonly coalescing: Coalescing = { delayBaseUs: DEFAULT_DELAY_BASE_US, iopsThreshold: DEFAULT_IOPS_THRESHOLD };

  get delayBaseUs(): number {
    return this.coalescing.delayBaseUs;
  }

  set delayBaseUs(v: number) {
    this.coalescing.delayBaseUs = v;
  }

  get iopsThreshold(): number {
    return this.coalescing.iopsThreshold;
  }

  set iopsThreshold(v: number) {
    this.coalescing.iopsThreshold = v;
  }
  dev: BlkDevice;
  channel: IoChannel | null;
  private listener: VhostUserListener | null = null;
  private connector: VhostUserConnector | null = null;
  /** Sessions the front end has talked to but that have not started a queue: when it did talk (ms). */
  private readonly settingUp = new Map<VhostBlkSession, number>();
  /** Inode of our socket file, to notice when a new daemon took the path over (upgrade). */
  private socketId = '';
  private nextSessionId = 0;
  private removed = false;

  private constructor(
    readonly opts: BlkControllerOptions,
    readonly socketPath: string,
    private readonly desc: BdevDesc,
    readonly log: Logger,
  ) {
    this.dev = blkDeviceOf(desc.bdev, opts.readonly);
    this.channel = desc.getIoChannel();
  }

  get name(): string {
    return this.opts.ctrlr;
  }

  /** Opens the bdev, then listens (or starts connecting, in client mode). Throws VHOST_BDEV_NOT_FOUND, VHOST_BDEV_CLAIMED or VHOST_SOCKET. */
  static async create(opts: BlkControllerOptions, layer: BdevLayer, socketDir: string, log: Logger): Promise<VhostBlkController> {
    const path = join(socketDir, opts.ctrlr);
    let ctrl: VhostBlkController | null = null;
    let desc: BdevDesc;
    try {
      desc = layer.open(opts.devName, !opts.readonly, (event) => {
        if (event === 'remove') ctrl?.bdevRemoved();
        else if (event === 'resize' && ctrl) ctrl.dev = blkDeviceOf(ctrl.desc.bdev, opts.readonly);
      });
    } catch (e) {
      if (isBlockworkError(e) && e.code === 'BDEV_NOT_FOUND') throw vhostBlkError('VHOST_BDEV_NOT_FOUND', `bdev '${opts.devName}' does not exist`, { cause: e });
      if (isBlockworkError(e) && e.code === 'BDEV_CLAIMED') throw vhostBlkError('VHOST_BDEV_CLAIMED', e.message, { cause: e });
      throw e;
    }
    ctrl = new VhostBlkController(opts, path, desc, log);
    try {
      if (opts.client) ctrl.startConnecting();
      else await ctrl.listen(socketDir);
    } catch (e) {
      desc.close();
      if (isBlockworkError(e) && e.code.startsWith('VHOST_')) throw vhostBlkError('VHOST_SOCKET', `controller ${opts.ctrlr}: ${e.message}`, { errno: e.errno, cause: e });
      const errno = (e as NodeJS.ErrnoException).errno;
      if (errno !== undefined) throw vhostBlkError('VHOST_SOCKET', `controller ${opts.ctrlr}: ${(e as Error).message}`, { errno: -errno, cause: e });
      throw e;
    }
    log.info({ ctrlr: opts.ctrlr, bdev: desc.bdev.name, socket: path, readonly: opts.readonly, client: opts.client }, 'vhost-blk controller created');
    return ctrl;
  }

  /** Server mode: listen at a private name, then rename it over the controller's path. */
  private async listen(socketDir: string): Promise<void> {
    const path = this.socketPath;
    checkNotOtherFile(path);
    // Bound at a private name, then renamed over the path: the path never disappears (a daemon
    // taking over from another one replaces its socket atomically), and the native listener's
    // own unlink on close or exit only ever touches the private name.
    const tmp = join(socketDir, `.${this.opts.ctrlr}.${process.pid}`);
    removeStaleSocket(tmp);
    const listener = await VhostUserListener.listen(tmp, { mode: 0o600 }, (conn) => this.accept(conn));
    listener.setRef(false);
    try {
      checkNotOtherFile(path);
      renameSync(tmp, path);
    } catch (e) {
      await listener.close();
      throw e;
    }
    this.listener = listener;
    this.socketId = fileId(path);
  }

  /**
   * Client mode: connect now and whenever the connection is gone. A connect succeeds as soon as the
   * connection sits in the front end's backlog; QEMU 7.2 accepts one client at a time and takes the
   * next queued one the moment the current one closes, so during an upgrade the new daemon's
   * connection waits there and the handover costs no reconnect period.
   */
  private startConnecting(): void {
    this.connector = new VhostUserConnector(this.socketPath, {
      onUnreachable: (errno) => this.log.info(
        { ctrlr: this.name, socket: this.socketPath, errno },
        `vhost-user front end not listening (${errnoName(errno)}); connecting every ${CLIENT_RETRY_MS} ms until it is`,
      ),
      onConnection: (conn, info) => {
        if (info.attempts > 1) this.log.info({ ctrlr: this.name, socket: this.socketPath, attempts: info.attempts, waitedMs: info.outageMs }, 'vhost-user front end listening again');
        this.accept(conn);
      },
    }, CLIENT_RETRY_MS);
    this.connector.connect();
  }

  /**
   * A new session. The front end counts as connected at its first message (in client mode the
   * connection may wait in QEMU's backlog until then); the first start of a queue is logged with
   * the negotiation time, the figure an upgrade's pause is made of.
   */
  private accept(conn: VhostUserConnection): void {
    const s = new VhostBlkSession(this.nextSessionId++, this, conn);
    this.sessions.add(s);
    const t0 = Date.now();
    const inner = conn.onMessage;
    let first = 0;
    let started = false;
    // Where the set-up time goes: message count and the longest wait between two messages (our
    // handling of the first plus the front end's turn), named by the request before it.
    let messages = 0;
    let prev = 0;
    let prevReq = 0;
    let slowest = { ms: 0, after: '' };
    conn.onMessage = (m) => {
      const now = performance.now();
      if (first === 0) {
        first = Date.now();
        this.settingUp.set(s, first);
        this.log.info({ ctrlr: this.name, session: s.name, waitedMs: first - t0 }, 'vhost-user front end connected');
      } else if (!started && now - prev > slowest.ms) slowest = { ms: Math.round(now - prev), after: requestName(prevReq) };
      messages++;
      prev = now;
      prevReq = m.request;
      inner(m);
      // Handlers run on the session's promise chain; a queue that starts does so before this runs.
      if (!started) {
        setImmediate(() => {
          if (started || !s.started) return;
          started = true;
          this.settingUp.delete(s);
          this.log.info({ ctrlr: this.name, session: s.name, negotiationMs: Date.now() - first, messages, slowestGapMs: slowest.ms, slowestAfter: slowest.after }, 'vhost-user session started');
        });
      }
    };
    if (this.opts.client) this.log.info({ ctrlr: this.name, session: s.name }, 'connected to the front end\'s socket; waiting for it to accept');
  }

  /** The bdev's name (as opened). */
  get bdevName(): string {
    return this.desc.bdev.name;
  }

  features(): bigint {
    return offeredFeatures(this.dev);
  }

  configImage(): Buffer {
    return blkConfigImage(this.removed ? null : this.dev, this.desc.bdev.optimalIoBoundary);
  }

  sessionClosed(s: VhostBlkSession): void {
    this.sessions.delete(s);
    this.log.info({ ctrlr: this.name, session: s.name }, 'vhost-user session closed');
    const talked = this.settingUp.get(s);
    this.settingUp.delete(s);
    if (this.connector === null || this.sessions.size > 0) return;
    // Client mode: the front end went away (or restarts); be there when it listens again. A front
    // end that dropped us during the set-up (it refuses this back end) is retried after a second,
    // not in a tight accept-and-close loop.
    if (talked !== undefined && Date.now() - talked < REFUSED_BACKOFF_MS) {
      const c = this.connector;
      setTimeout(() => c.connect(), REFUSED_BACKOFF_MS).unref();
    } else this.connector.connect();
  }

  /** Hot-remove: new requests fail with IOERR, running queues stop, sessions are marked NEEDS_RESET. */
  bdevRemoved(): void {
    this.removed = true;
    this.channel = null;
    for (const s of this.sessions) s.bdevRemoved();
    this.desc.close();
    this.log.warn({ ctrlr: this.name, bdev: this.opts.devName }, 'bdev hot-removed: controller queues stopped');
  }

  /** Stops listening, closes every session (draining its I/O) and releases the bdev. */
  async destroy(): Promise<void> {
    // Client mode: no more connects (the old daemon of an upgrade must not queue behind the new
    // one), and the socket is the front end's.
    this.connector?.stop();
    if (this.opts.client) {
      // Nothing to unlink.
    } else if (this.ownsSocketPath()) unlinkQuiet(this.socketPath);
    // Another daemon (an upgrade's new process) has put its socket at our path: leave it.
    else this.log.info({ ctrlr: this.name, socket: this.socketPath }, 'socket path taken over by another process; leaving it in place');
    await this.listener?.close();
    this.listener = null;
    await Promise.all([...this.sessions].map((s) => s.close()));
    this.channel = null;
    this.desc.close();
  }

  private ownsSocketPath(): boolean {
    try {
      return fileId(this.socketPath) === this.socketId;
    } catch {
      return true; // gone: closing unlinks nothing of anyone else's
    }
  }
}

function errnoName(errno: number): string {
  return Object.entries(constants.errno).find(([, v]) => v === errno)?.[0] ?? `errno ${errno}`;
}

/** Inode plus change time in ns: an inode number alone may be reused at once for the new socket. */
function fileId(path: string): string {
  const st = lstatSync(path, { bigint: true });
  return `${st.dev}:${st.ino}:${st.ctimeNs}`;
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}

/** SPDK replaces an existing socket at the controller's path; anything that is not a socket is left alone. */
function checkNotOtherFile(path: string): void {
  try {
    if (!lstatSync(path).isSocket()) throw vhostBlkError('VHOST_SOCKET', `${path} exists and is not a socket`, { errno: Errno.EEXIST });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** A leftover private socket of a dead process with our pid. */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
