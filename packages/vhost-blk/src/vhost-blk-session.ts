import type { IoChannel, Logger } from '@blockwork/core';
import {
  closeFd, decodeConfig, decodeMemoryTable, decodeU64, decodeVringAddr, decodeVringFd, decodeVringState, encodeConfig, encodeU64,
  encodeVringState, EventFd, type MappedRegion, mmapFd, requestName, ringOrder, type VhostUserConnection, type VhostUserMessage,
  VHOST_VRING_F_LOG, VhostUserFlags, VhostUserProtocolFeature, VhostUserRequest as R, VirtioFeature,
} from '@blockwork/vhost-user';
import { MAX_QUEUES, OFFERED_PROTOCOL_FEATURES } from './blk-config';
import { BlkQueue, type BlkQueueContext, type Coalescing } from './blk-queue';
import type { BlkDevice } from './blk-request';
import { DirtyLog } from './dirty-log';
import { GuestMemory, type MemoryRegionSpec } from './guest-memory';
import type { InflightQueue } from './inflight-region';
import { type FdReply, SessionInflight } from './session-inflight';
import { MAX_QUEUE_SIZE, SplitVirtqueue } from './virtqueue';

/** What a session needs from its controller. */
export interface SessionHost {
  readonly name: string;
  readonly log: Logger;
  /** Current device (null after hot-remove) and channel (null after hot-remove). */
  readonly dev: BlkDevice;
  readonly channel: IoChannel | null;
  /** vhost_controller_set_coalescing's values, shared by reference with every queue. */
  readonly coalescing: Coalescing;
  /** Virtio features offered to this front end. */
  features(): bigint;
  /** The 256-byte virtio_blk_config image. */
  configImage(): Buffer;
  /** Called once the session is torn down. */
  sessionClosed(s: VhostBlkSession): void;
}

interface Vring {
  num: number;
  base: number;
  /** `log`: guest physical address of the used ring for the dirty log, -1 without VHOST_VRING_F_LOG. */
  addr: { desc: number; avail: number; used: number; log: number } | null;
  kick: EventFd | null;
  call: EventFd | null;
  err: EventFd | null;
  enabled: boolean;
  queue: BlkQueue | null;
  /** Kick handler, created once per vring. */
  readonly onKick: () => void;
}

/** Device status bit: the device hit an error and needs a reset (virtio 1.x §2.1). */
const STATUS_NEEDS_RESET = 0x40;
const EVENT_IDX = 1n << BigInt(VirtioFeature.RING_EVENT_IDX);
const PROTOCOL_FEATURES = 1n << BigInt(VirtioFeature.VHOST_USER_F_PROTOCOL_FEATURES);
const REPLY_ACK = 1n << BigInt(VhostUserProtocolFeature.REPLY_ACK);
const INFLIGHT_SHMFD = 1n << BigInt(VhostUserProtocolFeature.INFLIGHT_SHMFD);
const LOG_SHMFD = 1n << BigInt(VhostUserProtocolFeature.LOG_SHMFD);
const LOG_ALL = 1n << BigInt(VirtioFeature.LOG_ALL);

/** A message that breaks the protocol: the connection is closed (this session only). */
class Malformed extends Error {}

function toNumber(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Malformed(`${what} 0x${v.toString(16)} is beyond 2^53`);
  return Number(v);
}

/**
 * One front end's connection to a controller: the vhost-user state machine (features, memory
 * table, vrings, config, status) and the started queues. Messages are handled strictly in order;
 * those that must wait for I/O to drain (GET_VRING_BASE, SET_MEM_TABLE, RESET_OWNER) hold back the
 * ones after them. A malformed message closes this connection only, logged once.
 */
export class VhostBlkSession implements BlkQueueContext {
  private static nextVid = 0;
  readonly vid = VhostBlkSession.nextVid++;
  features = 0n;
  protocolFeatures = 0n;
  status = 0;
  private mem: GuestMemory | null = null;
  private mappings: MappedRegion[] = [];
  private readonly inflightState = new SessionInflight();
  // QEMU sizes the log to cover all guest memory it migrates, so a page past it is outside what
  // it tracks for us: skipping that bit (and saying so once) beats stopping the guest's disk.
  private readonly dirtyLog = new DirtyLog((gpa, len, bytes) =>
    this.warnOnce('log-overflow', `dirty log of ${bytes} bytes does not cover guest physical 0x${gpa.toString(16)}+${len}: those pages are not logged`));
  private readonly vrings: Vring[] = [];
  private pending: Promise<void> = Promise.resolve();
  /** Whether the data path currently logs into the dirty log (reported when it changes). */
  private logging = false;
  /** Per-message timings at debug level (where a migration's or upgrade's pause goes). */
  private readonly traceMessages: boolean;
  private closed = false;
  private warned = new Set<string>();
  /** Resolves when the session is fully torn down. */
  readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(
    readonly id: number,
    private readonly host: SessionHost,
    private readonly conn: VhostUserConnection,
  ) {
    this.done = new Promise((r) => (this.resolveDone = r));
    this.traceMessages = host.log.isLevelEnabled('debug');
    for (let i = 0; i < MAX_QUEUES; i++) {
      const v: Vring = { num: 0, base: 0, addr: null, kick: null, call: null, err: null, enabled: false, queue: null, onKick: () => v.queue?.process() };
      this.vrings.push(v);
    }
    conn.onMessage = (m) => {
      this.pending = this.pending.then(() => this.dispatch(m));
    };
    conn.onClose = (err) => {
      if (err) this.host.log.warn({ ctrlr: host.name, session: this.name, err: err.message }, 'vhost-user connection failed');
      void this.close();
    };
  }

  get name(): string {
    return `${this.host.name}s${this.vid}`;
  }

  get dev(): BlkDevice {
    return this.host.dev;
  }

  get channel(): IoChannel | null {
    return this.host.channel;
  }

  /** BlkQueueContext: undefined when delay_base_us is 0, so the data path skips coalescing entirely. */
  get coalescing(): Coalescing | undefined {
    const c = this.host.coalescing;
    return c.delayBaseUs > 0 ? c : undefined;
  }

  /** Whether any queue is running. */
  get started(): boolean {
    return this.vrings.some((v) => v.queue !== null && !v.queue.stopped);
  }

  /** Highest configured queue index + 1 (SPDK's max_queues). */
  get maxQueues(): number {
    let n = 0;
    this.vrings.forEach((v, i) => {
      if (v.addr !== null) n = i + 1;
    });
    return n;
  }

  get inflight(): number {
    return this.vrings.reduce((s, v) => s + (v.queue?.inflight ?? 0), 0);
  }

  /** BlkQueueContext: hostile driver input. Fatal ones set NEEDS_RESET. Logged once per reason kind. */
  onGuestError(queue: number, reason: string, fatal: boolean): void {
    if (fatal) this.status |= STATUS_NEEDS_RESET;
    const key = `${queue}:${fatal}`;
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.host.log.warn({ ctrlr: this.host.name, session: this.name, queue, fatal }, `guest error: ${reason}`);
  }

  /** Hot-remove of the bdev: stop every queue (in-flight I/O completes with the layer's status), mark NEEDS_RESET. */
  bdevRemoved(): void {
    let running = false;
    for (const v of this.vrings) {
      if (v.queue && !v.queue.stopped) {
        running = true;
        v.queue.stopped = true;
      }
    }
    if (running) this.status |= STATUS_NEEDS_RESET;
  }

  private async dispatch(m: VhostUserMessage): Promise<void> {
    if (this.closed) {
      for (const fd of m.fds) safeClose(fd);
      return;
    }
    const t0 = this.traceMessages ? performance.now() : 0;
    try {
      const reply = await this.handle(m);
      if (this.traceMessages) this.trace(m, reply, t0);
      if (reply instanceof Uint8Array) this.send(m.request, reply);
      else if (reply !== undefined) this.sendFds(m.request, reply);
      else if ((m.flags & VhostUserFlags.NEED_REPLY) !== 0 && (this.protocolFeatures & REPLY_ACK) !== 0n) this.send(m.request, encodeU64(0));
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      this.host.log.warn({ ctrlr: this.host.name, session: this.name, request: requestName(m.request) }, `malformed vhost-user message, closing the connection: ${why}`);
      // Not awaited: close() queues its teardown behind this very message.
      void this.close();
    } finally {
      // Handlers that keep or close an fd empty m.fds; whatever is left was not wanted.
      for (const fd of m.fds) safeClose(fd);
      m.fds.length = 0;
    }
  }

  /** Debug line per message: request, small payloads and replies in hex, handling time. */
  private trace(m: VhostUserMessage, reply: Uint8Array | FdReply | undefined, t0: number): void {
    const hex = (b: Uint8Array) => (b.length <= 40 ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex') : `${b.length} bytes`);
    const r = reply instanceof Uint8Array ? hex(reply) : reply === undefined ? undefined : hex(reply.payload);
    this.host.log.debug({ ctrlr: this.host.name, session: this.name, request: requestName(m.request), payload: hex(m.payload), reply: r, ms: +(performance.now() - t0).toFixed(2) }, 'vhost-user message handled');
  }

  private send(request: number, payload: Uint8Array): void {
    if (this.conn.isOpen) this.conn.send(request, VhostUserFlags.VERSION | VhostUserFlags.REPLY, payload);
  }

  private sendFds(request: number, r: FdReply): void {
    try {
      if (this.conn.isOpen) this.conn.send(request, VhostUserFlags.VERSION | VhostUserFlags.REPLY, r.payload, r.fds);
    } finally {
      // SCM_RIGHTS gave the peer its own copy.
      for (const fd of r.fds) safeClose(fd);
    }
  }

  private vring(index: number): Vring {
    if (!Number.isInteger(index) || index >= MAX_QUEUES) throw new Malformed(`queue index ${index} ≥ ${MAX_QUEUES}`);
    return this.vrings[index];
  }

  /** Handles one message; returns the reply payload for requests that have one. */
  private async handle(m: VhostUserMessage): Promise<Uint8Array | FdReply | undefined> {
    const p = m.payload;
    switch (m.request) {
      case R.GET_FEATURES:
        return encodeU64(this.host.features());
      case R.SET_FEATURES: {
        const f = decodeU64(m.request, p);
        if ((f & ~this.host.features()) !== 0n) throw new Malformed(`features 0x${f.toString(16)} were not offered`);
        this.features = f;
        // QEMU toggles LOG_ALL here at migration start and end, queues running.
        this.applyDirtyLog();
        return undefined;
      }
      case R.GET_PROTOCOL_FEATURES:
        return encodeU64(OFFERED_PROTOCOL_FEATURES);
      case R.SET_PROTOCOL_FEATURES:
        this.protocolFeatures = decodeU64(m.request, p) & OFFERED_PROTOCOL_FEATURES;
        return undefined;
      case R.SET_OWNER:
        return undefined;
      case R.RESET_OWNER:
        await this.reset();
        return undefined;
      case R.GET_QUEUE_NUM:
        return encodeU64(MAX_QUEUES);
      case R.SET_MEM_TABLE:
        await this.setMemTable(m);
        return undefined;
      case R.SET_VRING_NUM: {
        const s = decodeVringState(m.request, p);
        if (s.num < 1 || s.num > MAX_QUEUE_SIZE || (s.num & (s.num - 1)) !== 0) throw new Malformed(`queue size ${s.num} is not a power of two ≤ ${MAX_QUEUE_SIZE}`);
        this.vring(s.index).num = s.num;
        return undefined;
      }
      case R.SET_VRING_BASE: {
        const s = decodeVringState(m.request, p);
        this.vring(s.index).base = s.num & 0xffff;
        return undefined;
      }
      case R.SET_VRING_ADDR: {
        const a = decodeVringAddr(m.request, p);
        const v = this.vring(a.index);
        const log = (a.flags & VHOST_VRING_F_LOG) !== 0 ? toNumber(a.log, 'log address') : -1;
        v.addr = { desc: toNumber(a.desc, 'desc address'), avail: toNumber(a.avail, 'avail address'), used: toNumber(a.used, 'used address'), log };
        if (this.mem !== null && v.num > 0) this.locate(a.index, v); // checked now; located again at start
        // At migration start QEMU resends the addresses of running queues with the LOG flag.
        if (v.queue !== null) v.queue.vq.logUsed = log;
        return undefined;
      }
      case R.GET_VRING_BASE: {
        const s = decodeVringState(m.request, p);
        const v = this.vring(s.index);
        await this.stopQueue(v);
        v.kick?.close();
        v.kick = null;
        return encodeVringState({ index: s.index, num: v.base });
      }
      case R.SET_VRING_KICK:
      case R.SET_VRING_CALL:
      case R.SET_VRING_ERR:
        this.setVringFd(m);
        return undefined;
      case R.SET_VRING_ENABLE: {
        const s = decodeVringState(m.request, p);
        const v = this.vring(s.index);
        v.enabled = s.num !== 0;
        if (v.enabled) this.tryStart(s.index);
        else await this.stopQueue(v);
        return undefined;
      }
      case R.GET_CONFIG: {
        const c = decodeConfig(m.request, p);
        const img = this.host.configImage();
        return encodeConfig({ offset: c.offset, size: c.size, flags: c.flags, payload: img.subarray(c.offset, c.offset + c.size) });
      }
      case R.SET_CONFIG:
        decodeConfig(m.request, p);
        this.warnOnce('SET_CONFIG', 'SET_CONFIG refused: the virtio-blk config space is read-only here');
        return (m.flags & VhostUserFlags.NEED_REPLY) !== 0 ? encodeU64(1) : undefined;
      case R.SET_STATUS:
        this.status = Number(decodeU64(m.request, p) & 0xffn) | (this.status & STATUS_NEEDS_RESET);
        return undefined;
      case R.GET_STATUS:
        return encodeU64(this.status);
      case R.SET_LOG_BASE:
        if ((this.protocolFeatures & LOG_SHMFD) === 0n) throw new Malformed('SET_LOG_BASE without LOG_SHMFD negotiated');
        this.dirtyLog.set(m.request, p, m.fds);
        this.applyDirtyLog();
        // QEMU 7.2 (vhost_user_set_log_base) waits for a reply with this request code whenever
        // LOG_SHMFD is negotiated and reads whatever payload comes; DPDK sends none, nor do we.
        return new Uint8Array(0);
      case R.GET_INFLIGHT_FD:
        // QEMU keeps the region across our restarts and hands it back with SET_INFLIGHT_FD.
        return SessionInflight.allocate(m.request, m.payload, this.name);
      case R.SET_INFLIGHT_FD:
        if (this.vrings.some((v) => v.queue !== null)) throw new Malformed('SET_INFLIGHT_FD while queues are running');
        this.inflightState.set(m.request, m.payload, m.fds);
        return undefined;
      default:
        this.warnOnce(`req${m.request}`, `unsupported vhost-user request ${requestName(m.request)} ignored`);
        return (m.flags & VhostUserFlags.NEED_REPLY) !== 0 ? encodeU64(1) : undefined;
    }
  }

  /** Hands the dirty log to the data path while LOG_ALL is negotiated and a log is mapped. */
  private applyDirtyLog(): void {
    const on = (this.features & LOG_ALL) !== 0n && this.dirtyLog.mapped;
    if (this.mem !== null) this.mem.dirty = on ? this.dirtyLog : null;
    if (on === this.logging) return;
    this.logging = on;
    this.host.log.info({ ctrlr: this.host.name, session: this.name, logBytes: this.dirtyLog.size, marks: this.dirtyLog.marks }, on ? 'dirty logging on (live migration)' : 'dirty logging off');
  }

  private warnOnce(key: string, text: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.host.log.warn({ ctrlr: this.host.name, session: this.name }, text);
  }

  /** The inflight slice of a queue about to start, or null (logged once per session and reason). */
  private inflightFor(index: number, v: Vring): InflightQueue | null {
    if ((this.protocolFeatures & INFLIGHT_SHMFD) === 0n) {
      this.infoOnce('no-inflight', 'crash recovery is not available for this connection: the front end did not negotiate INFLIGHT_SHMFD, so I/O in flight when the daemon dies may be lost or completed twice');
      return null;
    }
    const q = this.inflightState.queueFor(index, v.num);
    if (typeof q !== 'string') return q;
    if (this.inflightState.mapped) this.warnOnce(`inflight${index}`, `${q}: not tracked`);
    else this.infoOnce('no-inflight', `crash recovery is not available for this connection: INFLIGHT_SHMFD was negotiated but ${q}`);
    return null;
  }

  private infoOnce(key: string, text: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.host.log.info({ ctrlr: this.host.name, session: this.name }, text);
  }

  private setVringFd(m: VhostUserMessage): void {
    const f = decodeVringFd(m.request, m.payload);
    const v = this.vring(f.index);
    if (f.noFd ? m.fds.length !== 0 : m.fds.length !== 1) throw new Malformed(`expected ${f.noFd ? 'no fd' : 'one fd'}, got ${m.fds.length}`);
    const ev = f.noFd ? null : new EventFd(m.fds[0]);
    m.fds.length = 0;
    if (m.request === R.SET_VRING_CALL) {
      v.call?.close();
      v.call = ev;
    } else if (m.request === R.SET_VRING_ERR) {
      v.err?.close();
      v.err = ev;
    } else {
      v.kick?.close();
      v.kick = ev;
      if (v.queue !== null) ev?.watch(v.onKick);
      // Without PROTOCOL_FEATURES a ring starts enabled on its kick (vhost-user.rst, "Ring states").
      if ((this.features & PROTOCOL_FEATURES) === 0n) v.enabled = true;
      if (ev === null) this.warnOnce('poll', 'kick without an fd (polling mode) is not supported; the queue only runs on other events');
      this.tryStart(f.index);
    }
  }

  private locate(index: number, v: Vring): SplitVirtqueue {
    const q = SplitVirtqueue.create(this.mem!, v.num, v.addr!, (this.features & EVENT_IDX) !== 0n, v.base, ringOrder);
    if (typeof q === 'string') throw new Malformed(`queue ${index}: ${q}`);
    return q;
  }

  /** Starts a queue once it has memory, size, addresses, a kick fd and is enabled. */
  private tryStart(index: number): void {
    const v = this.vrings[index];
    if (v.queue !== null || this.mem === null || v.addr === null || v.num === 0 || v.kick === null || !v.enabled) return;
    if (this.host.channel === null) return;
    const ifq = this.inflightFor(index, v);
    const q = new BlkQueue(index, this.locate(index, v), this.mem, this, () => {
      try {
        v.call?.signal();
      } catch {
        // A call fd the front end closed: the guest is going away; nothing to report per I/O.
      }
    }, { inflight: ifq });
    v.queue = q;
    v.kick.watch(v.onKick);
    if (ifq !== null) {
      // Before any new avail entry: what a previous back end left in flight, oldest first.
      const rec = ifq.recover(q.vq.ringUsedIdx());
      if (!rec.fresh) {
        q.resubmit(rec.heads);
        if (rec.heads.length > 0 || rec.fixedUp) {
          this.host.log.info({ ctrlr: this.host.name, session: this.name, queue: index, resubmitted: rec.heads.length, fixedUp: rec.fixedUp }, 'recovered in-flight requests from the inflight region');
        }
      }
    }
    q.process();
    // A back end killed after publishing used->idx but before its batched call signal leaves the
    // guest waiting for an interrupt that never comes, and it then sends nothing new. One signal at
    // start (spurious at worst: the driver finds nothing new) closes that gap.
    q.signal();
  }

  /** Stops a queue, waits for its I/O and remembers where it stopped (SET_VRING_BASE value). */
  private async stopQueue(v: Vring): Promise<void> {
    const q = v.queue;
    if (q === null) return;
    v.kick?.unwatch();
    await q.stop();
    v.base = q.vq.lastAvailIdx;
    v.queue = null;
  }

  /** The front end shrank a memory region's file under us (a SIGBUS was caught): drop it. */
  private memoryLost(region: number): void {
    this.host.log.warn({ ctrlr: this.host.name, session: this.name, region }, 'front end truncated its guest memory under the mapping (SIGBUS caught), closing the connection');
    void this.close();
  }

  private async setMemTable(m: VhostUserMessage): Promise<void> {
    const t = decodeMemoryTable(m.request, m.payload);
    if (m.fds.length !== t.regions.length) throw new Malformed(`${t.regions.length} regions but ${m.fds.length} fds`);
    const maps: MappedRegion[] = [];
    const specs: MemoryRegionSpec[] = [];
    try {
      t.regions.forEach((r, i) => {
        const size = toNumber(r.memorySize, 'memory_size');
        const map = mmapFd(m.fds[i], size, toNumber(r.mmapOffset, 'mmap_offset'), { onPoisoned: () => this.memoryLost(i) });
        maps.push(map);
        specs.push({ guestPhysAddr: toNumber(r.guestPhysAddr, 'guest_phys_addr'), size, userAddr: toNumber(r.userspaceAddr, 'userspace_addr'), bytes: new Uint8Array(map.buffer) });
      });
      const mem = GuestMemory.create(specs);
      if (typeof mem === 'string') throw new Malformed(mem);
      // Views of the old table must be gone before it is unmapped: stop and drain every queue.
      const running = this.vrings.map((v, i) => (v.queue !== null ? i : -1)).filter((i) => i >= 0);
      for (const i of running) await this.stopQueue(this.vrings[i]);
      this.unmapAll();
      this.mem = mem;
      this.mappings = maps;
      this.applyDirtyLog();
      for (const i of running) this.tryStart(i);
    } catch (e) {
      for (const map of maps) if (!this.mappings.includes(map)) map.unmap();
      throw e;
    } finally {
      // The mappings stay valid without the fds.
      for (const fd of m.fds) safeClose(fd);
      m.fds.length = 0;
    }
  }

  private unmapAll(): void {
    this.mem = null;
    for (const map of this.mappings) map.unmap();
    this.mappings = [];
  }

  private async reset(): Promise<void> {
    for (const v of this.vrings) {
      await this.stopQueue(v);
      v.kick?.close();
      v.call?.close();
      v.err?.close();
      Object.assign(v, { num: 0, base: 0, addr: null, kick: null, call: null, err: null, enabled: false });
    }
    this.unmapAll();
    this.inflightState.release();
    this.features = 0n;
    this.applyDirtyLog();
    this.dirtyLog.release();
    this.status = 0;
  }

  /**
   * Stops taking requests, drains every queue (their completions reach the used ring and the
   * inflight marks are cleared while the front end still listens), then closes the connection and
   * releases fds and memory. Draining first is what makes a planned stop (upgrade) resubmit
   * nothing after the front end reconnects. Idempotent.
   */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.pending = this.pending.then(async () => {
        for (const v of this.vrings) await this.stopQueue(v);
        this.conn.close();
        await this.reset();
        this.host.sessionClosed(this);
        this.resolveDone();
      });
    }
    return this.done;
  }
}

function safeClose(fd: number): void {
  try {
    closeFd(fd);
  } catch {
    // Already closed or never valid: nothing more to release.
  }
}
