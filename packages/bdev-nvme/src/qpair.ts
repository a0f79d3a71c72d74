import { SQE_SIZE } from './nvme-spec';

/** Direction of a command's data. */
export const enum DataDir {
  NONE = 0,
  /** Host to controller (write, DSM ranges, Connect data). */
  H2C = 1,
  /** Controller to host (read, identify, log pages). */
  C2H = 2,
}

/** Local completion statuses (negative errno) a queue pair reports besides NVMe status fields. */
export const QP_TIMEOUT = -110; // -ETIMEDOUT
export const QP_DISCONNECTED = -104; // -ECONNRESET
export const QP_CANCELED = -125; // -ECANCELED

/**
 * Completion callback. `status`: 0 success; > 0 the NVMe status field (SCT << 8 | SC, DNR in bit
 * 14; decode with nvme-spec's decodeStatus); < 0 a local errno (QP_TIMEOUT, QP_DISCONNECTED,
 * QP_CANCELED). `req.cdw0`/`cdw1` hold the CQE's command-specific dwords during the call only.
 */
export type NvmeCallback = (status: number, req: NvmeRequest) => void;

const FREE = 0;
const ACTIVE = 1;
/** Timed out and completed to its owner, but the cid stays reserved until the controller answers or the queue is reset. */
const ABANDONED = 2;

/**
 * One command slot of a queue pair. Slots are allocated once per queue pair and reused: the slot
 * index is the command id, so submission allocates nothing. Owners fill `sqe` (bytes 2–3 are set
 * by the queue pair), `iovs`, `dataLen`, `dir`, `cb`, `arg`, then call `qpair.submit`.
 */
export class NvmeRequest {
  /** The 64-byte submission queue entry. */
  readonly sqe = Buffer.alloc(SQE_SIZE);
  /** Data buffers, owned by the submitter until completion. */
  iovs: Uint8Array[] = [];
  /** Bytes of data described by `iovs` (0 when none). */
  dataLen = 0;
  dir: DataDir = DataDir.NONE;
  cb: NvmeCallback | null = null;
  /** Opaque submitter context, handed back with the completion. */
  arg: unknown = undefined;
  cdw0 = 0;
  cdw1 = 0;
  /** Transport scratch: bytes moved so far (C2HData received, R2T-requested H2C sent). */
  xferred = 0;
  /** ms timestamp (performance.now) after which the command times out; 0 = never. */
  deadline = 0;
  state = FREE;

  constructor(readonly cid: number) {}

  /** True while the command is submitted and its owner still waits for it. */
  get active(): boolean {
    return this.state === ACTIVE;
  }

  /** True after a timeout: data or completion arriving for it must be dropped. */
  get abandoned(): boolean {
    return this.state === ABANDONED;
  }
}

/**
 * A submission/completion queue pair, transport independent: command id allocation (slot index,
 * LIFO reuse), the outstanding table, per-command timeouts and bulk failure on disconnect. A
 * transport (NVMe/TCP; PCIe with SQ tail doorbells and CQ phase tags) implements
 * `transportSubmit` and calls `complete` for each completion it receives.
 */
export abstract class NvmeQpair {
  private readonly slots: NvmeRequest[];
  private readonly free: number[];
  private active = 0;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Called for each command that timed out, after its owner was told (the controller sends Abort). */
  onTimeout: ((req: NvmeRequest, qp: NvmeQpair) => void) | null = null;

  /**
   * @param qid queue id (0 = admin).
   * @param depth entries (SQSIZE + 1); also the number of command ids.
   * @param timeoutMs per-command timeout in ms; 0 disables.
   */
  constructor(readonly qid: number, readonly depth: number, readonly timeoutMs: number) {
    this.slots = Array.from({ length: depth }, (_, i) => new NvmeRequest(i));
    // Popped from the end: cid 0 first, and a just-freed cid is reused first (cache friendly).
    this.free = Array.from({ length: depth }, (_, i) => depth - 1 - i);
  }

  /** Commands submitted and not completed (timed-out ones with a reserved cid included). */
  get outstanding(): number {
    return this.depth - this.free.length;
  }

  /** Whether the queue pair was closed (no more submissions). */
  get isClosed(): boolean {
    return this.closed;
  }

  /** A free command slot, or null when all command ids are in use. Synchronous, allocation free. */
  alloc(): NvmeRequest | null {
    if (this.closed) return null;
    const i = this.free.pop();
    if (i === undefined) return null;
    const r = this.slots[i];
    r.iovs = EMPTY;
    r.dataLen = 0;
    r.dir = DataDir.NONE;
    r.xferred = 0;
    r.cdw0 = 0;
    r.cdw1 = 0;
    return r;
  }

  /** Returns an allocated slot that was not submitted. */
  release(req: NvmeRequest): void {
    req.state = FREE;
    req.cb = null;
    req.arg = undefined;
    req.iovs = EMPTY;
    this.free.push(req.cid);
  }

  /** Submits an allocated slot. Never throws; a closed queue pair completes it with QP_DISCONNECTED. */
  submit(req: NvmeRequest, timeoutMs = this.timeoutMs): void {
    req.sqe.writeUInt16LE(req.cid, 2);
    req.state = ACTIVE;
    req.deadline = timeoutMs > 0 ? performance.now() + timeoutMs : 0;
    this.active++;
    if (timeoutMs > 0 && this.timer === null) this.armTimer();
    if (this.closed) {
      this.finish(req, QP_DISCONNECTED);
      return;
    }
    this.transportSubmit(req);
  }

  /** The slot with this command id if a command with it is outstanding (active or abandoned). */
  lookup(cid: number): NvmeRequest | undefined {
    const r = this.slots[cid];
    return r !== undefined && r.state !== FREE ? r : undefined;
  }

  /**
   * Delivers a completion (called by the transport). Returns false if no command with this id is
   * outstanding — a protocol error the transport turns into a connection reset.
   */
  complete(cid: number, status: number, cdw0 = 0, cdw1 = 0): boolean {
    const r = this.slots[cid];
    if (r === undefined || r.state === FREE) return false;
    if (r.state === ABANDONED) {
      this.release(r);
      return true;
    }
    r.cdw0 = cdw0;
    r.cdw1 = cdw1;
    this.finish(r, status);
    return true;
  }

  /**
   * Closes the queue pair: every outstanding command completes with `status` (default
   * QP_DISCONNECTED) and every command id is freed. Idempotent; later submissions fail the same way.
   */
  failAll(status = QP_DISCONNECTED): void {
    this.closed = true;
    this.stopTimer();
    for (const r of this.slots) {
      if (r.state === ACTIVE) this.finish(r, status);
      else if (r.state === ABANDONED) this.release(r);
    }
  }

  private finish(r: NvmeRequest, status: number): void {
    const cb = r.cb;
    this.active--;
    r.state = FREE;
    r.cb = null;
    // Freed before the callback: the owner may submit again from it and get this cid back.
    this.free.push(r.cid);
    cb?.(status, r);
    if (this.active === 0) this.stopTimer();
  }

  /** Scans for expired commands; a coarse timer (a quarter of the timeout, ≤ 1 s) instead of one per command. */
  private armTimer(): void {
    const period = Math.max(10, Math.min(1000, Math.floor(this.timeoutMs / 4) || 1000));
    this.timer = setInterval(() => this.expire(performance.now()), period);
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Times out every active command whose deadline passed before `now`. Public for tests. */
  expire(now: number): void {
    for (const r of this.slots) {
      if (r.state !== ACTIVE || r.deadline === 0 || r.deadline > now) continue;
      const cb = r.cb;
      this.active--;
      r.state = ABANDONED;
      r.cb = null;
      cb?.(QP_TIMEOUT, r);
      this.onTimeout?.(r, this);
    }
    if (this.active === 0) this.stopTimer();
  }

  /** Stops the queue pair: outstanding commands fail with QP_DISCONNECTED. Transports also release their resources. */
  close(): void {
    this.failAll(QP_DISCONNECTED);
  }

  /** Hands a command to the transport (write the capsule / SQ entry and ring the doorbell). */
  protected abstract transportSubmit(req: NvmeRequest): void;
}

const EMPTY: Uint8Array[] = [];
