import type { Logger } from '@blockwork/core';
import { execCommand, fillAbort, fillGetLogPage, fillIdentify, fillKeepAlive, fillSetFeatures } from './admin';
import { nvmeError } from './errors';
import { type IdentifyController, type IdentifyNamespace, parseIdentifyController, parseIdentifyNamespace, parseNsList } from './identify';
import { CC_ENABLE, CC_SHN_NORMAL, Cns, CSTS_CFS, CSTS_RDY, CSTS_SHST_COMPLETE, CSTS_SHST_MASK, DISCOVERY_NQN, Fid, Prop } from './nvme-spec';
import { PcieTransport } from './pcie-transport';
import { DataDir, type NvmeQpair } from './qpair';
import { TcpTransport } from './tcp-transport';
import type { NvmeTransport } from './transport';

/** An NVMe-oF (TCP) transport id, as SPDK's trid. */
export interface TcpTransportId {
  trtype: 'TCP';
  adrfam: 'IPv4' | 'IPv6';
  traddr: string;
  trsvcid: string;
  subnqn: string;
}

/** A PCIe transport id, as SPDK's: the PCI address "DDDD:BB:DD.F" of a device bound to vfio-pci. */
export interface PcieTransportId {
  trtype: 'PCIe';
  traddr: string;
}

/** Where a controller is: NVMe/TCP or local PCIe. */
export type TransportId = TcpTransportId | PcieTransportId;

/** Everything a controller needs to connect and to recover. Times in the units their names say. */
export interface ControllerOptions {
  name: string;
  trid: TransportId;
  hostnqn: string;
  /** 16-byte host identifier sent in Connect. */
  hostid: Buffer;
  hdgst: boolean;
  ddgst: boolean;
  /** I/O queue pairs wanted (each its own TCP connection); fewer if the controller grants fewer. */
  numIoQueues: number;
  /** Entries per I/O queue (capped by CAP.MQES + 1). */
  ioQueueSize: number;
  /** -1: reconnect forever; 0: no reconnect, the controller is deleted on loss; N: give up after N s. */
  ctrlrLossTimeoutSec: number;
  reconnectDelaySec: number;
  /** While reconnecting, queued I/O fails with -EIO after this many s (0: only at ctrlr loss). */
  fastIoFailTimeoutSec: number;
  connectTimeoutMs: number;
  adminTimeoutMs: number;
  /** Per-I/O timeout (0 = none); an expired I/O is aborted and fails with -ETIMEDOUT. */
  ioTimeoutMs: number;
  /** Keep Alive Timeout sent in Connect, ms (0 = none); Keep Alive is sent every half of it. TCP only. */
  katoMs: number;
}

export type ControllerState = 'connecting' | 'enabled' | 'resetting' | 'failed' | 'deleting';

/** Listener of state changes (a bdev channel resubmits or fails its queued I/O). */
export interface ControllerListener {
  onControllerState(state: ControllerState): void;
}

const ADMIN_DEPTH = 32;

/**
 * One NVMe controller, over TCP or PCIe (the transport opens queues and reaches registers):
 * admin queue set-up, CAP/VS, CC.EN, CSTS.RDY, Identify, Set Features (number of queues), I/O
 * queue pairs, keep-alive (TCP), reconnect after a connection loss per ctrlr_loss_timeout_sec /
 * reconnect_delay_sec / fast_io_fail_timeout_sec (TCP), and clean shutdown (CC.SHN). Namespaces
 * are found at connect; bdevs are made by the module.
 */
export class NvmeController {
  state: ControllerState = 'connecting';
  admin: NvmeQpair | null = null;
  io: NvmeQpair[] = [];
  readonly transport: NvmeTransport;
  cdata!: IdentifyController;
  cap = 0n;
  vs = 0;
  cntlid = 0;
  /** Namespaces found at connect: nsid → Identify Namespace. */
  readonly namespaces = new Map<number, IdentifyNamespace>();
  /** Whether queued I/O should fail now (fast_io_fail_timeout_sec passed while resetting). */
  fastFailed = false;
  /** Called once when the controller is lost for good (the module then deletes it). */
  onFailed: ((err: Error) => void) | null = null;
  private readonly listeners = new Set<ControllerListener>();
  private keepAlive: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private fastFailTimer: NodeJS.Timeout | null = null;
  private lostAt = 0;
  private lastError: Error | null = null;

  /** @param transport defaults to the one `opts.trid.trtype` names (tests hand in their own). */
  constructor(readonly opts: ControllerOptions, private readonly log: Logger, transport?: NvmeTransport) {
    const t = opts.trid;
    this.transport = transport ?? (t.trtype === 'PCIe' ? new PcieTransport(t) : new TcpTransport(t));
  }

  get isDiscovery(): boolean {
    return this.opts.trid.trtype === 'TCP' && this.opts.trid.subnqn === DISCOVERY_NQN;
  }

  /** "controller Nvme0 (127.0.0.1:4420 nqn...)" or "controller Nvme0 (PCIe 0000:00:04.0)" for messages. */
  describe(): string {
    const t = this.opts.trid;
    if (t.trtype === 'PCIe') return `controller ${this.opts.name} (PCIe ${t.traddr})`;
    return `controller ${this.opts.name} (${t.traddr}:${t.trsvcid} ${t.subnqn})`;
  }

  addListener(l: ControllerListener): void {
    this.listeners.add(l);
  }

  removeListener(l: ControllerListener): void {
    this.listeners.delete(l);
  }

  /** Connects everything and reads the namespaces. Rejects with a catalogue error; cleans up on failure. */
  async connect(): Promise<void> {
    try {
      await this.connectAll(true);
    } catch (e) {
      this.closeQpairs();
      throw e;
    }
    this.setState('enabled');
  }

  private async connectAll(first: boolean): Promise<void> {
    const o = this.opts;
    const tr = this.transport;
    const admin = await tr.openAdmin(this, ADMIN_DEPTH);
    this.admin = admin;
    admin.onTimeout = (req, q) => this.abort(q, req.cid);
    this.cap = await tr.getCap(this);
    this.vs = await tr.getReg32(this, Prop.VS);
    await tr.setReg32(this, Prop.CC, CC_ENABLE);
    await this.waitReady();
    this.cdata = parseIdentifyController(await this.identify(Cns.CONTROLLER, 0));
    if (this.opts.trid.trtype === 'PCIe') this.cntlid = this.cdata.cntlid;
    this.startKeepAlive();
    if (this.isDiscovery) return;
    const want = Math.max(1, o.numIoQueues);
    const nq = await this.cmd('Set Features Number of Queues', (s) => fillSetFeatures(s, Fid.NUMBER_OF_QUEUES, (want - 1) | ((want - 1) << 16)));
    const granted = Math.min(want, (nq.cdw0 & 0xffff) + 1, ((nq.cdw0 >>> 16) & 0xffff) + 1);
    if (first) await this.readNamespaces();
    const mqes = Number(this.cap & 0xffffn) + 1;
    // PCIe: the SQ gets depth + 1 entries (a ring holds one less than its size), so depth < MQES + 1.
    const limit = o.trid.trtype === 'PCIe' ? mqes - 1 : mqes;
    const depth = Math.max(2, Math.min(o.ioQueueSize, limit, this.cdata.maxcmd || limit));
    this.io = [];
    const qps = await Promise.all(Array.from({ length: granted }, async (_, i) => {
      const qp = await tr.openIo(this, i + 1, depth);
      qp.onTimeout = (req, q) => this.abort(q, req.cid);
      this.io.push(qp); // closed with the others if set-up fails half way
      return qp;
    }));
    this.io = qps;
  }

  /** Runs one admin command; rejects with a catalogue error naming this controller. */
  cmd(what: string, fill: (sqe: Buffer) => void, data?: { dir: DataDir; buf: Buffer }) {
    if (this.admin === null) return Promise.reject(nvmeError('NVME_DISCONNECTED', `${this.describe()}: ${what}: no admin queue`));
    return execCommand(this.admin, `${this.describe()}: ${what}`, fill, data);
  }

  async identify(cns: number, nsid: number): Promise<Buffer> {
    const buf = Buffer.alloc(4096);
    await this.cmd(`Identify CNS ${cns} nsid ${nsid}`, (s) => fillIdentify(s, cns, nsid), { dir: DataDir.C2H, buf });
    return buf;
  }

  /** Reads `bytes` of log page `lid` (e.g. 0x70 discovery). */
  async getLogPage(lid: number, bytes: number, offset = 0): Promise<Buffer> {
    const buf = Buffer.alloc(bytes);
    await this.cmd(`Get Log Page 0x${lid.toString(16)}`, (s) => fillGetLogPage(s, lid, bytes, offset), { dir: DataDir.C2H, buf });
    return buf;
  }

  private async waitReady(): Promise<void> {
    const limitMs = Math.max(500, Number((this.cap >> 24n) & 0xffn) * 500);
    const deadline = Date.now() + limitMs;
    for (;;) {
      const csts = await this.transport.getReg32(this, Prop.CSTS);
      if (csts & CSTS_CFS) throw nvmeError('NVME_CTRLR_FATAL', `${this.describe()}: CSTS.CFS set while enabling (CSTS 0x${csts.toString(16)})`);
      if (csts & CSTS_RDY) return;
      if (Date.now() > deadline) throw nvmeError('NVME_ENABLE_TIMEOUT', `${this.describe()}: CSTS.RDY not set ${limitMs} ms after CC.EN=1`);
      await sleep(10);
    }
  }

  private async readNamespaces(): Promise<void> {
    const ids = parseNsList(await this.identify(Cns.ACTIVE_NS_LIST, 0));
    for (const nsid of ids) {
      const ns = parseIdentifyNamespace(await this.identify(Cns.NAMESPACE, nsid));
      if (ns.nsze === 0) continue;
      if (ns.metadataSize !== 0) {
        this.log.warn({ ctrlr: this.opts.name, nsid }, 'namespace formatted with metadata: not exposed (unsupported)');
        continue;
      }
      this.namespaces.set(nsid, ns);
    }
  }

  private startKeepAlive(): void {
    if (this.opts.katoMs <= 0) return;
    this.keepAlive = setInterval(() => {
      this.cmd('Keep Alive', fillKeepAlive).catch((e: Error) => this.log.warn({ ctrlr: this.opts.name, err: e.message }, 'keep alive failed'));
    }, Math.max(100, Math.floor(this.opts.katoMs / 2)));
    this.keepAlive.unref();
  }

  private abort(qp: NvmeQpair, cid: number): void {
    this.log.warn({ ctrlr: this.opts.name, qid: qp.qid, cid }, 'command timed out; sending Abort');
    this.cmd(`Abort qid ${qp.qid} cid ${cid}`, (s) => fillAbort(s, qp.qid, cid)).catch(() => undefined);
  }

  private setState(s: ControllerState): void {
    this.state = s;
    for (const l of [...this.listeners]) l.onControllerState(s);
  }

  /** A queue pair's connection ended (called by the transport): start the reset/reconnect policy. */
  connectionLost(err: Error): void {
    if (this.state !== 'enabled') return;
    this.lastError = err;
    this.lostAt = Date.now();
    this.log.warn({ ctrlr: this.opts.name, err: err.message }, 'connection to the controller lost');
    this.stopTimers();
    this.state = 'resetting';
    this.fastFailed = false;
    const o = this.opts;
    if (o.fastIoFailTimeoutSec > 0) {
      this.fastFailTimer = setTimeout(() => {
        this.fastFailed = true;
        this.setState('resetting');
      }, o.fastIoFailTimeoutSec * 1000);
    }
    this.closeQpairs();
    if (o.ctrlrLossTimeoutSec === 0 || !this.transport.reconnectable) return this.fail(err);
    this.setState('resetting');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    this.retryTimer = setTimeout(() => void this.reconnect(), Math.max(100, this.opts.reconnectDelaySec * 1000));
  }

  private async reconnect(): Promise<void> {
    this.retryTimer = null;
    if (this.state !== 'resetting') return;
    try {
      await this.connectAll(false);
    } catch (e) {
      this.closeQpairs();
      this.lastError = e as Error;
      const lossMs = this.opts.ctrlrLossTimeoutSec * 1000;
      if (this.state !== 'resetting') return;
      if (lossMs > 0 && Date.now() - this.lostAt >= lossMs) return this.fail(e as Error);
      this.log.info({ ctrlr: this.opts.name, err: (e as Error).message }, 'reconnect failed; retrying');
      return this.scheduleReconnect();
    }
    if (this.state !== 'resetting') return this.closeQpairs();
    if (this.fastFailTimer) clearTimeout(this.fastFailTimer);
    this.fastFailed = false;
    this.log.info({ ctrlr: this.opts.name }, 'controller reconnected');
    this.setState('enabled');
  }

  private fail(err: Error): void {
    this.stopTimers();
    this.log.error({ ctrlr: this.opts.name, err: err.message }, 'controller lost: giving up');
    this.setState('failed');
    this.onFailed?.(err);
  }

  /** The last connection error while resetting or failed. */
  get error(): Error | null {
    return this.lastError;
  }

  private closeQpairs(): void {
    if (this.keepAlive) clearInterval(this.keepAlive);
    this.keepAlive = null;
    for (const q of this.io) q.close();
    this.io = [];
    this.admin?.close();
    this.admin = null;
    this.transport.close();
  }

  private stopTimers(): void {
    for (const t of [this.keepAlive, this.retryTimer, this.fastFailTimer]) if (t) clearTimeout(t);
    this.keepAlive = this.retryTimer = this.fastFailTimer = null;
  }

  /**
   * Detaches: I/O queues closed, then a normal shutdown notification (CC.SHN = 01b) waited for
   * until CSTS.SHST says complete (at most `timeoutMs`), then the admin queue is closed. Never throws.
   */
  async shutdown(timeoutMs = 5000): Promise<void> {
    const was = this.state;
    this.stopTimers();
    this.setState('deleting');
    const qids = this.io.map((q) => q.qid);
    for (const q of this.io) q.close();
    this.io = [];
    if (was === 'enabled' && this.admin !== null) {
      try {
        if (this.transport instanceof PcieTransport && timeoutMs > 0) await this.transport.deleteIoQueues(this, qids);
        await this.transport.setReg32(this, Prop.CC, CC_ENABLE | CC_SHN_NORMAL);
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline) {
          const csts = await this.transport.getReg32(this, Prop.CSTS);
          if ((csts & CSTS_SHST_MASK) === CSTS_SHST_COMPLETE) break;
          await sleep(10);
        }
      } catch (e) {
        this.log.warn({ ctrlr: this.opts.name, err: (e as Error).message }, 'shutdown notification failed; closing anyway');
      }
    }
    this.closeQpairs();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
