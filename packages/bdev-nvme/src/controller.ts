import type { Logger } from '@blockwork/core';
import {
  type AdminError, connectData, execCommand, fillAbort, fillConnect, fillGetLogPage, fillIdentify, fillKeepAlive,
  fillPropertyGet, fillPropertySet, fillSetFeatures,
} from './admin';
import { nvmeError } from './errors';
import { type IdentifyController, type IdentifyNamespace, parseIdentifyController, parseIdentifyNamespace, parseNsList } from './identify';
import {
  CC_ENABLE, CC_SHN_NORMAL, Cns, CSTS_CFS, CSTS_RDY, CSTS_SHST_COMPLETE, CSTS_SHST_MASK, decodeStatus, DISCOVERY_NQN, Fid, Prop,
  SC_CONNECT_INVALID_HOST, SC_CONNECT_INVALID_PARAM, statusText,
} from './nvme-spec';
import { DataDir, type NvmeQpair } from './qpair';
import { TcpQpair } from './tcp-qpair';

/** An NVMe-oF transport id, as SPDK's trid. */
export interface TransportId {
  trtype: 'TCP';
  adrfam: 'IPv4' | 'IPv6';
  traddr: string;
  trsvcid: string;
  subnqn: string;
}

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
  /** Keep Alive Timeout sent in Connect, ms (0 = none); Keep Alive is sent every half of it. */
  katoMs: number;
}

export type ControllerState = 'connecting' | 'enabled' | 'resetting' | 'failed' | 'deleting';

/** Listener of state changes (a bdev channel resubmits or fails its queued I/O). */
export interface ControllerListener {
  onControllerState(state: ControllerState): void;
}

const ADMIN_DEPTH = 32;
const ADMIN_IN_CAPSULE = 8192;

/**
 * One NVMe-oF controller over TCP: admin queue set-up (ICReq, Fabrics Connect, CAP/VS, CC.EN,
 * CSTS.RDY), Identify, Set Features (number of queues), I/O queue pairs, keep-alive, reconnect
 * after a connection loss per ctrlr_loss_timeout_sec / reconnect_delay_sec / fast_io_fail_timeout_sec,
 * and clean shutdown (CC.SHN). Namespaces are found at connect; bdevs are made by the module.
 */
export class NvmeController {
  state: ControllerState = 'connecting';
  admin: TcpQpair | null = null;
  io: TcpQpair[] = [];
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

  constructor(readonly opts: ControllerOptions, private readonly log: Logger) {}

  get isDiscovery(): boolean {
    return this.opts.trid.subnqn === DISCOVERY_NQN;
  }

  /** "Nvme0 (127.0.0.1:4420 nqn...)" for messages. */
  describe(): string {
    const t = this.opts.trid;
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
    const admin = await this.openQpair(0, ADMIN_DEPTH, ADMIN_IN_CAPSULE, o.adminTimeoutMs);
    this.admin = admin;
    const res = await this.fabricsConnect(admin, o.katoMs, 0xffff);
    this.cntlid = res.cdw0 & 0xffff;
    const cap = await this.cmd('Property Get CAP', (s) => fillPropertyGet(s, Prop.CAP, true));
    this.cap = BigInt(cap.cdw0 >>> 0) | (BigInt(cap.cdw1 >>> 0) << 32n);
    this.vs = (await this.cmd('Property Get VS', (s) => fillPropertyGet(s, Prop.VS, false))).cdw0 >>> 0;
    await this.cmd('Property Set CC.EN=1', (s) => fillPropertySet(s, Prop.CC, CC_ENABLE));
    await this.waitReady();
    this.cdata = parseIdentifyController(await this.identify(Cns.CONTROLLER, 0));
    this.startKeepAlive();
    if (this.isDiscovery) return;
    const want = Math.max(1, o.numIoQueues);
    const nq = await this.cmd('Set Features Number of Queues', (s) => fillSetFeatures(s, Fid.NUMBER_OF_QUEUES, (want - 1) | ((want - 1) << 16)));
    const granted = Math.min(want, (nq.cdw0 & 0xffff) + 1, ((nq.cdw0 >>> 16) & 0xffff) + 1);
    if (first) await this.readNamespaces();
    const mqes = Number(this.cap & 0xffffn) + 1;
    const depth = Math.max(2, Math.min(o.ioQueueSize, mqes, this.cdata.maxcmd || mqes));
    const icd = Math.max(0, this.cdata.ioccsz * 16 - 64);
    this.io = await Promise.all(Array.from({ length: granted }, async (_, i) => {
      const qp = await this.openQpair(i + 1, depth, icd, o.ioTimeoutMs);
      try {
        await this.fabricsConnect(qp, 0, this.cntlid);
      } catch (e) {
        qp.close();
        throw e;
      }
      return qp;
    }));
  }

  private async openQpair(qid: number, depth: number, inCapsuleMax: number, timeoutMs: number): Promise<TcpQpair> {
    const t = this.opts.trid;
    const qp = await TcpQpair.connect({
      host: t.traddr, port: Number(t.trsvcid), family: t.adrfam === 'IPv6' ? 6 : 4, qid, depth,
      hdgst: this.opts.hdgst, ddgst: this.opts.ddgst, inCapsuleMax, connectTimeoutMs: this.opts.connectTimeoutMs, timeoutMs,
    });
    qp.onDisconnect = (err) => this.lost(err);
    qp.onTimeout = (req, q) => this.abort(q, req.cid);
    if (qid > 0) this.io.push(qp); // closed with the others if set-up fails half way
    return qp;
  }

  private async fabricsConnect(qp: NvmeQpair, katoMs: number, cntlid: number) {
    const o = this.opts;
    const data = connectData(o.hostid, cntlid, o.trid.subnqn, o.hostnqn);
    try {
      return await execCommand(qp, `Fabrics Connect (qid ${qp.qid})`, (s) => fillConnect(s, qp.qid, qp.depth - 1, katoMs),
        { dir: DataDir.H2C, buf: data }, o.connectTimeoutMs);
    } catch (e) {
      throw this.connectError(e as AdminError & { cdw0?: number });
    }
  }

  private connectError(e: AdminError & { cdw0?: number }): Error {
    if (e.nvmeStatus === undefined) return e;
    const s = decodeStatus(e.nvmeStatus);
    const t = this.opts.trid;
    // DW0 of a Connect Invalid Parameters: IPO (offset of the bad field) in bits 15:0, IATTR in bit 16.
    const ipo = (e.cdw0 ?? 0) & 0xffff;
    if (s.sct === 1 && s.sc === SC_CONNECT_INVALID_HOST || (s.sct === 1 && s.sc === SC_CONNECT_INVALID_PARAM && ipo === 512)) {
      return nvmeError('NVME_HOST_REJECTED', `${this.describe()}: target ${t.traddr}:${t.trsvcid} does not allow host ${this.opts.hostnqn} on ${t.subnqn} (${statusText(e.nvmeStatus, true)})`, e);
    }
    if (s.sct === 1 && s.sc === SC_CONNECT_INVALID_PARAM && ipo === 256) {
      return nvmeError('NVME_SUBSYSTEM_NOT_FOUND', `${this.describe()}: target ${t.traddr}:${t.trsvcid} has no subsystem '${t.subnqn}' (${statusText(e.nvmeStatus, true)})`, e);
    }
    return nvmeError('NVME_CONNECT_FAILED', `${this.describe()}: Fabrics Connect failed: ${statusText(e.nvmeStatus, true)}`, e);
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
      const csts = (await this.cmd('Property Get CSTS', (s) => fillPropertyGet(s, Prop.CSTS, false))).cdw0;
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

  /** A queue pair's connection ended: start the reset/reconnect policy. */
  private lost(err: Error): void {
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
    if (o.ctrlrLossTimeoutSec === 0) return this.fail(err);
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
    for (const q of this.io) q.close();
    this.io = [];
    if (was === 'enabled' && this.admin !== null) {
      try {
        await this.cmd('Property Set CC.SHN', (s) => fillPropertySet(s, Prop.CC, CC_ENABLE | CC_SHN_NORMAL));
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline) {
          const csts = (await this.cmd('Property Get CSTS', (s) => fillPropertyGet(s, Prop.CSTS, false))).cdw0;
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
