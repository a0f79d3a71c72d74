import type { IoChannel } from '@blockwork/core';
import {
  type BlkDevice, BlkRequest, BlkStatus, blkStatusOf, PARSE_NO_STATUS, PARSE_SUBMIT, parseBlkRequest, submitBlkRequest,
} from './blk-request';
import type { GuestMemory } from './guest-memory';
import type { InflightQueue } from './inflight-region';
import { ChainError, chainErrorText, DescChain, type SplitVirtqueue } from './virtqueue';

/** What a queue needs from its session: the bdev, the channel and where to report trouble. */
export interface BlkQueueContext {
  /** Geometry and capabilities of the exported bdev. */
  readonly dev: BlkDevice;
  /** The controller's I/O channel; null once the bdev is gone (requests then fail with IOERR). */
  readonly channel: IoChannel | null;
  /** A hostile or broken driver was seen on this queue; `fatal` means the queue stopped. Log once. */
  onGuestError(queue: number, reason: string, fatal: boolean): void;
  /** The controller's interrupt coalescing (vhost_controller_set_coalescing); absent: none. */
  readonly coalescing?: Coalescing;
}

/** SPDK's coalescing parameters: above `iopsThreshold` completions/s, call signals are spaced out. */
export interface Coalescing {
  delayBaseUs: number;
  iopsThreshold: number;
}

/** SPDK's stats interval: the completion rate, and so the delay, is re-evaluated every 10 ms. */
const STATS_INTERVAL_MS = 10;
/**
 * SPDK's rule grows without bound with the rate (delay_base 10 µs at 100× the threshold is 1 ms,
 * at 10,000× it is 100 ms); a guest waiting that long for an interrupt looks hung, so the delay
 * stops at 50 ms whatever the parameters.
 */
export const MAX_IRQ_DELAY_MS = 50;

/**
 * SPDK's rule: the delay grows with the excess over the threshold, delay_base × (rate − threshold)
 * / threshold, and is 0 at or below it. In milliseconds.
 */
export function coalescingDelayMs(c: Coalescing | undefined, completed: number, intervalMs: number): number {
  if (c === undefined || c.delayBaseUs <= 0 || c.iopsThreshold <= 0) return 0;
  const threshold = (c.iopsThreshold * intervalMs) / 1000;
  if (completed <= threshold) return 0;
  return Math.min(MAX_IRQ_DELAY_MS, (c.delayBaseUs / 1000) * ((completed - threshold) / threshold));
}

/**
 * Points of the inflight bookkeeping sequence, in order, for crash tests: `marked` (head flagged,
 * bdev I/O not submitted), `submitted`, then per completion `used-written`, `batch-head`,
 * `published` (used->idx stored), `cleared`, `saved` (region's used_idx updated).
 */
export type InflightStep = 'marked' | 'submitted' | 'used-written' | 'batch-head' | 'published' | 'cleared' | 'saved';

/** Optional parts of a queue. */
export interface BlkQueueOptions {
  /** This queue's inflight slice (INFLIGHT_SHMFD negotiated and SET_INFLIGHT_FD received); null: no tracking. */
  inflight?: InflightQueue | null;
  /** Called after each bookkeeping step (tests simulate a crash by throwing from it). */
  probe?: (step: InflightStep, head: number) => void;
}

/** The long-lived bdev completion callback: `arg` is the pooled request, its owner the queue. */
function onIoDone(status: number, arg: unknown): void {
  const req = arg as BlkRequest;
  (req.owner as BlkQueue).complete(req, blkStatusOf(status));
}

/**
 * One started virtqueue of a session: drains every available request on a kick, submits one bdev
 * I/O per request, writes status + used element on completion and signals the call eventfd once per
 * batch of completions (coalesced on setImmediate, respecting EVENT_IDX / NO_INTERRUPT).
 */
export class BlkQueue {
  /** Requests submitted to the bdev and not completed yet. */
  inflight = 0;
  /** No new requests are taken (GET_VRING_BASE, hot-remove, broken driver). */
  stopped = false;
  private readonly pool: BlkRequest[] = [];
  private readonly chain: DescChain;
  private flushScheduled = false;
  /** Set when `stop` has finished: guest memory may be unmapped from then on, so touch nothing. */
  private detached = false;
  private drainWaiters: Array<() => void> = [];
  private readonly flushFn = (): void => this.flush();
  private readonly ifq: InflightQueue | null;
  private readonly probe: ((step: InflightStep, head: number) => void) | undefined;
  /** Coalescing state: completions in the current stats window, its start, the current delay. */
  private windowCompleted = 0;
  private windowStart = performance.now();
  private irqDelayMs = 0;
  private nextSignalAt = 0;
  /** The driver asked for a notification that the coalescing delay holds back. */
  private signalPending = false;
  private signalTimer: NodeJS.Timeout | null = null;
  private readonly signalTimerFn = (): void => {
    this.signalTimer = null;
    this.flush();
  };

  /**
   * @param notify signals the call eventfd (synchronous, cheap); called at most once per batch.
   */
  constructor(
    readonly index: number,
    readonly vq: SplitVirtqueue,
    private readonly mem: GuestMemory,
    private readonly ctx: BlkQueueContext,
    private readonly notify: () => void,
    opts: BlkQueueOptions = {},
  ) {
    this.chain = new DescChain(vq.size);
    this.ifq = opts.inflight ?? null;
    this.probe = opts.probe;
  }

  /** Whether this queue records its requests in an inflight region (crash recovery possible). */
  get tracked(): boolean {
    return this.ifq !== null;
  }

  /**
   * Re-executes heads a previous back end left in flight (from InflightQueue.recover, oldest
   * first), before anything new is taken: the ring continues at its used->idx with those heads
   * counted as taken. Their marks stay (with their old counters) until they complete. Heads must
   * be below the queue size (the region has exactly that many entries). Never throws.
   */
  resubmit(heads: readonly number[]): void {
    this.vq.restoreFromRing(heads.length);
    for (const h of heads) {
      if (this.stopped) return;
      this.start(h);
    }
  }

  /** Kick handler: takes every available request (avail idx read once per pass). Never throws. */
  process(): void {
    const vq = this.vq;
    while (!this.stopped) {
      let n = vq.pending(vq.availIdx());
      if (n === 0) {
        if (!vq.eventIdx) return;
        vq.armAvailEvent();
        if (vq.pending(vq.availIdx()) === 0) return;
        continue;
      }
      if (n > vq.size) {
        this.fatal(`avail idx is ${n} entries ahead (queue size ${vq.size})`);
        return;
      }
      while (n-- > 0 && !this.stopped) this.take(vq.nextHead());
    }
  }

  private take(head: number): void {
    const vq = this.vq;
    if (this.inflight >= vq.size) {
      this.fatal('more requests in flight than the queue size (head reused before its completion)');
      return;
    }
    if (head >= vq.size) {
      this.fatal(`head ${head} ${chainErrorText(ChainError.HEAD_RANGE)}`);
      return;
    }
    // Every head taken is marked before anything can complete it, so that after a crash
    // used_idx + marked heads = heads taken (the rule recovery rebuilds last_avail_idx from).
    if (this.ifq !== null) {
      this.ifq.mark(head);
      if (this.probe) this.probe('marked', head);
    }
    this.start(head);
  }

  /** Walks, parses and submits a head already taken (and marked); completes it at once if it cannot be submitted. */
  private start(head: number): void {
    const r = this.vq.walk(head, this.chain);
    if (r < 0) {
      this.ctx.onGuestError(this.index, `head ${head}: ${chainErrorText(r)}`, false);
      this.finish(head, 0);
      return;
    }
    const req = this.pool.pop() ?? new BlkRequest(this);
    req.head = head;
    const res = parseBlkRequest(this.chain, this.mem, this.ctx.dev, req);
    if (res === PARSE_SUBMIT) {
      const ch = this.ctx.channel;
      if (ch !== null) {
        this.inflight++;
        submitBlkRequest(req, ch, onIoDone);
        if (this.probe) this.probe('submitted', head);
        return;
      }
      req.setStatus(BlkStatus.IOERR);
    } else if (res === PARSE_NO_STATUS) {
      this.ctx.onGuestError(this.index, `head ${head}: chain has no device-writable status byte`, false);
    } else {
      req.setStatus(res);
    }
    this.finish(head, req.usedLen);
    this.release(req);
  }

  /** Completion of a bdev I/O (from onIoDone). */
  complete(req: BlkRequest, status: number): void {
    req.setStatus(status);
    this.inflight--;
    const head = req.head;
    const len = req.usedLen;
    this.release(req);
    this.finish(head, len);
    if (this.inflight === 0 && this.drainWaiters.length > 0) {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const f of w) f();
    }
  }

  /**
   * Returns a head to the driver. Untracked: the used element now, used->idx with the batch.
   * Tracked, in the spec's order so a crash at any point is recoverable: used element,
   * last_batch_head, used->idx (its own fenced store), clear the mark, the region's used_idx.
   */
  private finish(head: number, len: number): void {
    const vq = this.vq;
    vq.pushUsed(head, len);
    this.windowCompleted++;
    const ifq = this.ifq;
    if (ifq !== null) {
      const probe = this.probe;
      if (probe) probe('used-written', head);
      ifq.setLastBatchHead(head);
      if (probe) probe('batch-head', head);
      vq.publishIdx();
      if (probe) probe('published', head);
      ifq.clear(head);
      if (probe) probe('cleared', head);
      ifq.setUsedIdx(vq.usedIdx);
      if (probe) probe('saved', head);
    }
    this.scheduleFlush();
  }

  private release(req: BlkRequest): void {
    req.iovs.length = 0;
    req.statusBytes = null;
    this.pool.push(req);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushFn);
  }

  /**
   * Publishes used->idx for everything completed so far and signals once if the driver wants it.
   * Under coalescing (rate above the threshold) a signal comes at most once per delay: the used
   * ring is still published at once (a polling driver sees it), only the interrupt waits, for the
   * next completion batch past the deadline or a timer, whichever is first.
   */
  flush(): void {
    this.flushScheduled = false;
    if (this.detached) return;
    if (this.vq.publishUsed()) this.signalPending = true;
    if (!this.signalPending) return;
    if (this.ctx.coalescing !== undefined) {
      const now = performance.now();
      if (now - this.windowStart >= STATS_INTERVAL_MS) {
        this.irqDelayMs = coalescingDelayMs(this.ctx.coalescing, this.windowCompleted, now - this.windowStart);
        // Back under the threshold: what an old burst's delay still holds back goes now.
        if (this.irqDelayMs === 0) this.nextSignalAt = 0;
        this.windowCompleted = 0;
        this.windowStart = now;
      }
      if (this.irqDelayMs > 0) {
        if (now < this.nextSignalAt) {
          // Timers have 1 ms granularity: at coalescing rates the next batch normally comes first.
          if (this.signalTimer === null) this.signalTimer = setTimeout(this.signalTimerFn, Math.max(1, Math.ceil(this.nextSignalAt - now)));
          return;
        }
        this.nextSignalAt = now + this.irqDelayMs;
      }
    }
    this.signalPending = false;
    this.notify();
  }

  /** Signals the call eventfd now, whatever the driver's suppression flags say. */
  signal(): void {
    if (!this.detached) this.notify();
  }

  private fatal(reason: string): void {
    this.stopped = true;
    this.ctx.onGuestError(this.index, reason, true);
  }

  /**
   * Stops taking requests and resolves once every in-flight request has completed and its used
   * element is published (GET_VRING_BASE, SET_MEM_TABLE, teardown). After that nothing of this
   * queue refers to guest memory.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.inflight > 0) await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    this.flush();
    // Whatever coalescing held back goes now: the queue is handed back (or the back end leaves).
    if (this.signalPending) {
      this.signalPending = false;
      this.notify();
    }
    if (this.signalTimer !== null) clearTimeout(this.signalTimer);
    this.signalTimer = null;
    this.detached = true;
  }
}
