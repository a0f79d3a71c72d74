import {
  closeFd, decodeConfig, decodeU64, decodeVirtioBlkConfig, decodeVringState, encodeConfig, encodeMemoryTable, encodeU64,
  decodeInflight, encodeInflight, type InflightPayload, encodeVringAddr, encodeVringFd, encodeVringState, type MappedRegion, memfdCreate, type MemoryRegion, mmapFd,
  VhostUserConnection, VhostUserProtocolFeature as PF, VhostUserRequest as R, VIRTIO_BLK_CONFIG_SIZE, VirtioBlkFeature as BF,
  type VirtioBlkConfig, VirtioFeature as VF, type VringAddr,
} from '@blockwork/vhost-user';
import { virtioError } from './errors';
import { computeLayout, type MemoryLayout } from './memory-layout';
import { RawQueue } from './raw-queue';
import { VhostUserClient } from './vhost-user-client';
import { type BlkLimits, VirtQueue } from './virtqueue';

export interface VirtioBlkDriverOptions {
  /** Request queues to set up (≤ what the back end reports). */
  vqCount: number;
  /** Descriptors per queue, a power of two in 2..32768. */
  vqSize: number;
  /** Bounce chunk size in bytes = the largest data I/O (default 128 KiB; capped by SIZE_MAX). */
  chunkSize?: number;
  /** Bytes of shared memory for VirtioBlkBdev.allocDmaBuffer (zero-copy I/O), default 4 MiB. */
  dmaSize?: number;
  /** Timeout of each control request in ms (default 10 s). */
  timeoutMs?: number;
  /**
   * Negotiate INFLIGHT_SHMFD (GET_INFLIGHT_FD once, SET_INFLIGHT_FD on every connection), so that
   * a back end that restarts resubmits what was in flight; needed for `resume`. Default false.
   */
  inflight?: boolean;
}

const bit = (n: number) => 1n << BigInt(n);
/** Features this front end can use; the rest of what the device offers is declined. */
const WANTED = [VF.VERSION_1, VF.VHOST_USER_F_PROTOCOL_FEATURES, BF.SIZE_MAX, BF.SEG_MAX, BF.BLK_SIZE, BF.RO, BF.FLUSH,
  BF.TOPOLOGY, BF.MQ, BF.DISCARD, BF.WRITE_ZEROES].reduce((a, b) => a | bit(b), 0n);
const WANTED_PROTOCOL = bit(PF.MQ) | bit(PF.CONFIG) | bit(PF.REPLY_ACK);
const INFLIGHT = bit(PF.INFLIGHT_SHMFD);

/**
 * A vhost-user-blk front end: negotiation, one memfd as "guest memory" (rings, request headers,
 * bounce chunks, a zero-copy area; guest physical address = userspace address = offset in the memfd),
 * and split virtqueues. `start()` runs the whole set-up; tests of a target call the steps one by one
 * and use `rawQueue` / `client.request` / `conn.sendRaw` to send hostile input (docs/bdev-virtio.md).
 */
export class VirtioBlkDriver {
  deviceFeatures = 0n;
  /** Features acked with SET_FEATURES. */
  features = 0n;
  deviceProtocolFeatures = 0n;
  maxQueues = 1;
  config: VirtioBlkConfig | null = null;
  limits: BlkLimits = { blockSize: 512, segMax: 1, maxDiscardSectors: 0, maxWriteZeroesSectors: 0 };
  layout: MemoryLayout | null = null;
  memFd = -1;
  mem: MappedRegion | null = null;
  queues: VirtQueue[] = [];
  /** The inflight region the back end gave us (GET_INFLIGHT_FD), kept for every later connection; -1 without. */
  inflightFd = -1;
  private inflightInfo: InflightPayload | null = null;

  /** Called once per connection that goes away for any reason but a local close. */
  onDisconnect: (err: Error) => void = () => {};

  private constructor(readonly path: string, private cur: VhostUserClient, readonly opts: VirtioBlkDriverOptions) {
    cur.onDisconnect = (e) => this.onDisconnect(e);
  }

  /** The current connection's control channel (replaced by `resume`). */
  get client(): VhostUserClient {
    return this.cur;
  }

  /** Connects only; call `start()` (or the individual steps). Rejects VIRTIO_CONNECT_FAILED. */
  static async connect(path: string, opts: VirtioBlkDriverOptions): Promise<VirtioBlkDriver> {
    const { vqCount, vqSize } = opts;
    if (!(vqSize >= 2 && vqSize <= 32768 && (vqSize & (vqSize - 1)) === 0) || !(vqCount >= 1 && vqCount <= 64)) {
      throw virtioError('VIRTIO_QUEUE_COUNT', `vq_count ${vqCount} / vq_size ${vqSize}: need 1..64 queues of a power-of-two size in 2..32768`);
    }
    let conn: VhostUserConnection;
    try {
      conn = await VhostUserConnection.connect(path);
    } catch (e) {
      throw virtioError('VIRTIO_CONNECT_FAILED', `cannot connect to vhost-user socket ${path}: ${(e as Error).message}`, { errno: (e as { errno?: number }).errno, cause: e });
    }
    return new VirtioBlkDriver(path, new VhostUserClient(conn, opts.timeoutMs ?? 10_000), opts);
  }

  get conn(): VhostUserConnection {
    return this.client.conn;
  }

  has(feature: number): boolean {
    return (this.features & bit(feature)) !== 0n;
  }

  /** Negotiation, memory table, every queue. On failure the connection is closed. */
  async start(): Promise<void> {
    try {
      await this.negotiate();
      this.allocateMemory();
      await this.setInflight();
      await this.setMemTable();
      for (let q = 0; q < this.opts.vqCount; q++) await this.setupQueue(q);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** GET_FEATURES, SET_OWNER, protocol features, GET_QUEUE_NUM, GET_CONFIG (exactly 60 bytes), SET_FEATURES. */
  async negotiate(): Promise<void> {
    const c = this.client;
    this.deviceFeatures = decodeU64(R.GET_FEATURES, (await c.request(R.GET_FEATURES))!.payload);
    if ((this.deviceFeatures & bit(VF.VERSION_1)) === 0n) throw virtioError('VIRTIO_FEATURE_MISSING', `${this.path}: back end does not offer VIRTIO_F_VERSION_1`);
    await c.request(R.SET_OWNER);
    if ((this.deviceFeatures & bit(VF.VHOST_USER_F_PROTOCOL_FEATURES)) !== 0n) {
      this.deviceProtocolFeatures = decodeU64(R.GET_PROTOCOL_FEATURES, (await c.request(R.GET_PROTOCOL_FEATURES))!.payload);
      const want = this.deviceProtocolFeatures & (WANTED_PROTOCOL | (this.opts.inflight === true ? INFLIGHT : 0n));
      await c.request(R.SET_PROTOCOL_FEATURES, encodeU64(want));
      c.protocolFeatures = want;
    }
    if ((c.protocolFeatures & bit(PF.CONFIG)) === 0n) throw virtioError('VIRTIO_FEATURE_MISSING', `${this.path}: back end does not offer VHOST_USER_PROTOCOL_F_CONFIG`);
    if ((c.protocolFeatures & bit(PF.MQ)) !== 0n) this.maxQueues = Number(decodeU64(R.GET_QUEUE_NUM, (await c.request(R.GET_QUEUE_NUM))!.payload));
    // Exactly the struct size we read: qemu-storage-daemon refuses larger GET_CONFIG requests.
    const reply = decodeConfig(R.GET_CONFIG, (await c.request(R.GET_CONFIG, encodeConfig({ offset: 0, size: VIRTIO_BLK_CONFIG_SIZE })))!.payload);
    if (reply.size !== VIRTIO_BLK_CONFIG_SIZE) throw virtioError('VIRTIO_NEGOTIATION_FAILED', `${this.path}: GET_CONFIG answered ${reply.size} bytes, asked ${VIRTIO_BLK_CONFIG_SIZE}`);
    this.config = decodeVirtioBlkConfig(reply.payload);
    this.features = this.deviceFeatures & WANTED;
    if (this.has(BF.MQ) && this.config.numQueues > 0) this.maxQueues = Math.min(this.maxQueues, this.config.numQueues);
    if (this.opts.vqCount > this.maxQueues) throw virtioError('VIRTIO_QUEUE_COUNT', `${this.path}: vq_count ${this.opts.vqCount} but the back end has ${this.maxQueues} queue(s)`);
    await c.request(R.SET_FEATURES, encodeU64(this.features));
    const cfg = this.config;
    this.limits = {
      blockSize: this.has(BF.BLK_SIZE) && cfg.blkSize >= 512 ? cfg.blkSize : 512,
      segMax: this.has(BF.SEG_MAX) && cfg.segMax > 0 ? cfg.segMax : 1,
      maxDiscardSectors: cfg.maxDiscardSectors,
      maxWriteZeroesSectors: cfg.maxWriteZeroesSectors,
    };
  }

  /** Capacity in bytes (from the config read by `negotiate`). */
  get capacityBytes(): number {
    return Number(this.config?.capacity ?? 0n) * 512;
  }

  /** Creates and maps the memfd and the queue objects (no message). */
  allocateMemory(): void {
    let chunk = this.opts.chunkSize ?? 128 * 1024;
    const sizeMax = this.has(BF.SIZE_MAX) ? this.config!.sizeMax : 0;
    if (sizeMax > 0) chunk = Math.min(chunk, sizeMax - (sizeMax % this.limits.blockSize));
    this.layout = computeLayout(this.opts.vqCount, this.opts.vqSize, chunk, this.opts.dmaSize ?? 4 << 20);
    this.memFd = memfdCreate(`blockwork-virtio:${this.path}`, this.layout.size);
    this.mem = mmapFd(this.memFd, this.layout.size, 0);
    this.queues = this.layout.queues.map((q) => new VirtQueue(q, this.mem!.buffer, this.limits));
  }

  /**
   * With INFLIGHT_SHMFD negotiated: GET_INFLIGHT_FD on the first connection (the back end creates the
   * region), then SET_INFLIGHT_FD with that same region on this and every later connection — as
   * QEMU does, so a new back end finds what the previous one left in flight.
   */
  async setInflight(): Promise<void> {
    if ((this.cur.protocolFeatures & INFLIGHT) === 0n) return;
    if (this.inflightFd < 0) {
      const m = (await this.cur.request(R.GET_INFLIGHT_FD, encodeInflight({ mmapSize: 0n, mmapOffset: 0n, numQueues: this.opts.vqCount, queueSize: this.opts.vqSize })))!;
      if (m.fds.length !== 1) {
        for (const fd of m.fds) closeFd(fd);
        throw virtioError('VIRTIO_NEGOTIATION_FAILED', `${this.path}: GET_INFLIGHT_FD answered with ${m.fds.length} fds`);
      }
      this.inflightInfo = decodeInflight(R.GET_INFLIGHT_FD, m.payload);
      this.inflightFd = m.fds[0];
    }
    await this.cur.request(R.SET_INFLIGHT_FD, encodeInflight({ ...this.inflightInfo!, numQueues: this.opts.vqCount, queueSize: this.opts.vqSize }), [this.inflightFd]);
  }

  /**
   * Takes over a new connection after the back end went away (a restart or an upgrade), keeping
   * memory, rings, eventfds and every outstanding request: the whole set-up again, with the same
   * features and the inflight region, and each vring's base at the used index the last back end
   * published (what it took and did not complete is in the inflight region; it resubmits that).
   * Then one kick per queue. Rejects (and closes `conn`) when the new back end differs or refuses.
   */
  async resume(conn: VhostUserConnection): Promise<void> {
    const before = { features: this.features, capacity: this.capacityBytes, blockSize: this.limits.blockSize };
    this.cur = new VhostUserClient(conn, this.opts.timeoutMs ?? 10_000);
    try {
      await this.negotiate();
      if (this.features !== before.features || this.capacityBytes !== before.capacity || this.limits.blockSize !== before.blockSize) {
        throw virtioError('VIRTIO_NEGOTIATION_FAILED', `${this.path}: the new back end offers a different device (features 0x${this.features.toString(16)}, ${this.capacityBytes} bytes)`);
      }
      await this.setInflight();
      await this.setMemTable();
      for (let q = 0; q < this.queues.length; q++) await this.setupQueue(q, {}, this.queues[q].deviceUsedIdx(), false);
    } catch (e) {
      this.cur.close();
      throw e;
    }
    this.cur.onDisconnect = (e) => this.onDisconnect(e);
    for (const q of this.queues) q.kickNow();
  }

  /** SET_MEM_TABLE with the one memfd region; `override` replaces fields (hostile tests). */
  async setMemTable(override: Partial<MemoryRegion> = {}, fds: number[] = [this.memFd]): Promise<void> {
    const size = BigInt(this.layout!.size);
    const region: MemoryRegion = { guestPhysAddr: 0n, memorySize: size, userspaceAddr: 0n, mmapOffset: 0n, ...override };
    await this.client.request(R.SET_MEM_TABLE, encodeMemoryTable({ regions: [region] }), fds);
  }

  /** NUM, BASE (0 at first), ADDR, CALL, KICK, ENABLE for queue q; `addr` replaces ring addresses (hostile tests). */
  async setupQueue(q: number, addr: Partial<VringAddr> = {}, base = 0, start = true): Promise<void> {
    const c = this.client;
    const vq = this.queues[q];
    const L = vq.layout;
    await c.request(R.SET_VRING_NUM, encodeVringState({ index: q, num: L.size }));
    await c.request(R.SET_VRING_BASE, encodeVringState({ index: q, num: base }));
    await c.request(R.SET_VRING_ADDR, encodeVringAddr({ index: q, flags: 0, desc: BigInt(L.descOff), used: BigInt(L.usedOff), avail: BigInt(L.availOff), log: 0n, ...addr }));
    await c.request(R.SET_VRING_CALL, encodeVringFd(q), [vq.call.fd]);
    await c.request(R.SET_VRING_KICK, encodeVringFd(q), [vq.kick.fd]);
    if (this.has(VF.VHOST_USER_F_PROTOCOL_FEATURES)) await c.request(R.SET_VRING_ENABLE, encodeVringState({ index: q, num: 1 }));
    if (start) vq.start();
  }

  /** Direct access to queue q's memory for hostile tests (bypasses the I/O path; do not mix on one queue). */
  rawQueue(q: number): RawQueue {
    return new RawQueue(this.queues[q], this.mem!.buffer);
  }

  /** Drains every queue, GET_VRING_BASE per queue (stops the back end's rings), then closes everything. */
  async stop(): Promise<number[]> {
    const bases: number[] = [];
    await Promise.all(this.queues.map((q) => q.drain()));
    if (this.client.isOpen) {
      for (let q = 0; q < this.queues.length; q++) {
        const m = await this.client.request(R.GET_VRING_BASE, encodeVringState({ index: q, num: 0 }));
        bases.push(decodeVringState(R.GET_VRING_BASE, m!.payload).num);
      }
    }
    this.close();
    return bases;
  }

  /** Closes the connection, fails anything outstanding with -ENODEV, unmaps and closes the memfd. Idempotent. */
  close(): void {
    this.client.close();
    for (const q of this.queues) q.close();
    this.mem?.unmap();
    this.mem = null;
    if (this.memFd >= 0) closeFd(this.memFd);
    this.memFd = -1;
    if (this.inflightFd >= 0) closeFd(this.inflightFd);
    this.inflightFd = -1;
  }
}
