import { allocAligned } from '../aligned-buffer';
import type { BdevDesc, BdevLayer } from '../bdev/bdev-layer';
import type { IoChannel } from '../bdev/io-channel';
import { LatencyHistogram } from '../bdev/iostat';
import { coreError } from '../errors';
import { fillPattern, checkPattern } from './pattern';

export type PerfWorkload = 'read' | 'write' | 'randread' | 'randwrite' | 'randrw' | 'verify';
export const PERF_WORKLOADS: readonly PerfWorkload[] = ['read', 'write', 'randread', 'randwrite', 'randrw', 'verify'];

export interface PerfOptions {
  bdev: string;
  /** Queue depth (I/Os kept in flight). */
  queueDepth: number;
  /** I/O size in bytes (a multiple of the block size). */
  ioSize: number;
  workload: PerfWorkload;
  /** Read percentage for randrw (0..100). */
  rwMixRead?: number;
  /** Run time in seconds. */
  timeSec: number;
}

/** The summary `blockwork perf --json` prints: stable field names for scripts. */
export interface PerfResult {
  bdev: string;
  workload: PerfWorkload;
  queue_depth: number;
  io_size: number;
  seconds: number;
  ios: number;
  iops: number;
  mib_per_s: number;
  lat_us: { avg: number; p50: number; p99: number; p999: number };
  errors: number;
  /** verify only: blocks whose data did not match what was written. */
  miscompares: number;
}

export interface PerfProgress {
  elapsed: number;
  ios: number;
  iops: number;
  mib_per_s: number;
}

interface Slot {
  index: number;
  buf: Buffer;
  iovs: Uint8Array[];
  start: number;
  offset: number;
  /** verify: 0 = write next, 1 = read back pending. */
  phase: number;
  seq: number;
}

/**
 * One bdevperf-style job: keeps `queueDepth` I/Os in flight on a bdev through the layer's
 * callback API (no promise per I/O) and measures IOPS, bandwidth and latency percentiles.
 * `verify` gives each slot its own region, writes a pattern stamped with offset and sequence,
 * reads it back and checks every byte.
 */
export class PerfJob {
  readonly histogram = new LatencyHistogram();
  ios = 0;
  errors = 0;
  miscompares = 0;
  private latSumNs = 0;
  private desc!: BdevDesc;
  private ch!: IoChannel;
  private blocksPerIo = 0;
  private regionBlocks = 0;
  private deadline = 0;
  private startedAt = 0;
  private inflight = 0;
  private cursor = 0;
  private finish!: () => void;
  private readonly onDone = (status: number, arg: unknown) => this.complete(status, arg as Slot);

  constructor(private readonly layer: BdevLayer, readonly opts: PerfOptions) {}

  /** Runs the job to the end. `onProgress` is called about once a second. */
  async run(onProgress?: (p: PerfProgress) => void): Promise<PerfResult> {
    const o = this.opts;
    const write = o.workload !== 'read' && o.workload !== 'randread';
    this.desc = this.layer.open(o.bdev, write);
    try {
      const bdev = this.desc.bdev;
      if (o.ioSize <= 0 || o.ioSize % bdev.blockSize !== 0) {
        throw coreError('BDEV_IO_INVALID', `perf: io size ${o.ioSize} is not a multiple of ${bdev.name}'s block size ${bdev.blockSize}`);
      }
      this.blocksPerIo = o.ioSize / bdev.blockSize;
      this.regionBlocks = Math.floor(bdev.numBlocks / o.queueDepth / this.blocksPerIo) * this.blocksPerIo;
      if (this.regionBlocks < this.blocksPerIo) throw coreError('BDEV_IO_INVALID', `perf: ${bdev.name} is too small for ${o.queueDepth} × ${o.ioSize} bytes`);
      this.ch = this.desc.getIoChannel();
      const align = Math.max(4096, bdev.requiredAlignment);
      const slots: Slot[] = Array.from({ length: o.queueDepth }, (_, index) => {
        const buf = allocAligned(o.ioSize, align);
        return { index, buf, iovs: [buf], start: 0, offset: 0, phase: 0, seq: 0 };
      });
      const timer = onProgress ? setInterval(() => onProgress(this.progress()), 1000) : undefined;
      try {
        await new Promise<void>((resolve) => {
          this.finish = resolve;
          this.startedAt = performance.now();
          this.deadline = this.startedAt + o.timeSec * 1000;
          for (const s of slots) this.issue(s);
        });
      } finally {
        if (timer) clearInterval(timer);
      }
      return this.result((performance.now() - this.startedAt) / 1000);
    } finally {
      this.desc.close();
    }
  }

  progress(): PerfProgress {
    const elapsed = (performance.now() - this.startedAt) / 1000;
    const iops = elapsed > 0 ? this.ios / elapsed : 0;
    return { elapsed, ios: this.ios, iops, mib_per_s: (iops * this.opts.ioSize) / 1048576 };
  }

  /** `now`: performance.now() taken by the caller (the completion that frees the slot), reused as the start. */
  private issue(s: Slot, now = performance.now()): void {
    const o = this.opts;
    const nb = this.blocksPerIo;
    const numBlocks = this.desc.bdev.numBlocks;
    let read: boolean;
    switch (o.workload) {
      case 'read':
      case 'write': {
        read = o.workload === 'read';
        s.offset = (this.cursor++ % Math.floor(numBlocks / nb)) * nb;
        break;
      }
      case 'verify': {
        read = s.phase === 1;
        if (!read) {
          s.offset = s.index * this.regionBlocks + Math.floor(Math.random() * (this.regionBlocks / nb)) * nb;
          s.seq++;
          fillPattern(s.buf, s.offset, s.seq, this.desc.bdev.blockSize);
        } else {
          s.buf.fill(0);
        }
        break;
      }
      default:
        read = o.workload === 'randread' || (o.workload === 'randrw' && Math.random() * 100 < (o.rwMixRead ?? 50));
        s.offset = Math.floor(Math.random() * Math.floor(numBlocks / nb)) * nb;
    }
    this.inflight++;
    // verify filled or cleared the buffer above: start the clock after that work.
    s.start = o.workload === 'verify' ? performance.now() : now;
    if (read) this.ch.read(s.iovs, s.offset, nb, this.onDone, s);
    else this.ch.write(s.iovs, s.offset, nb, this.onDone, s);
  }

  private complete(status: number, s: Slot): void {
    this.inflight--;
    // One clock read per I/O: this completion's end is the next I/O's start and the deadline check.
    const now = performance.now();
    const ns = (now - s.start) * 1e6;
    if (status !== 0) this.errors++;
    else {
      this.ios++;
      this.latSumNs += ns;
      this.histogram.record(ns);
      if (this.opts.workload === 'verify') {
        if (s.phase === 1 && !checkPattern(s.buf, s.offset, s.seq, this.desc.bdev.blockSize)) this.miscompares++;
        s.phase ^= 1;
      }
    }
    if (now < this.deadline && this.errors < 1000) this.issue(s, now);
    else if (this.inflight === 0) this.finish();
  }

  private result(seconds: number): PerfResult {
    const o = this.opts;
    const iops = this.ios / seconds;
    const us = (ns: number) => Math.round(ns / 10) / 100;
    return {
      bdev: o.bdev, workload: o.workload, queue_depth: o.queueDepth, io_size: o.ioSize,
      seconds: Math.round(seconds * 1000) / 1000, ios: this.ios, iops: Math.round(iops),
      mib_per_s: Math.round(((iops * o.ioSize) / 1048576) * 100) / 100,
      lat_us: {
        avg: us(this.ios ? this.latSumNs / this.ios : 0), p50: us(this.histogram.quantile(0.5)),
        p99: us(this.histogram.quantile(0.99)), p999: us(this.histogram.quantile(0.999)),
      },
      errors: this.errors,
      miscompares: this.miscompares,
    };
  }
}
