import { IoType } from './types';

/** Sub-buckets per power of two in the latency histogram (2^7 = 128, SPDK's default granularity). */
const GRANULARITY = 7;
const SUB = 1 << GRANULARITY;
const RANGES = 32 - GRANULARITY + 1;

/**
 * Log-linear latency histogram over nanoseconds (values above 2^32 ns land in the last bucket).
 * Recording is one clz and one increment, cheap enough to stay on for every I/O.
 */
export class LatencyHistogram {
  readonly counts = new Float64Array(RANGES * SUB);
  total = 0;

  record(ns: number): void {
    const v = ns >= 4294967295 ? 4294967295 : ns >>> 0;
    this.counts[bucketOf(v)]++;
    this.total++;
  }

  /** Upper bound in ns of the bucket holding the given quantile (0..1), or 0 when empty. */
  quantile(q: number): number {
    if (this.total === 0) return 0;
    const target = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= target) return bucketEnd(i);
    }
    return bucketEnd(this.counts.length - 1);
  }

  /** Non-empty buckets as [start_ns, end_ns, count]. */
  buckets(): Array<[number, number, number]> {
    const out: Array<[number, number, number]> = [];
    for (let i = 0; i < this.counts.length; i++) {
      if (this.counts[i] > 0) out.push([bucketStart(i), bucketEnd(i), this.counts[i]]);
    }
    return out;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
  }
}

function bucketOf(v: number): number {
  if (v < SUB) return v;
  const exp = 31 - Math.clz32(v);
  const shift = exp - GRANULARITY;
  return ((shift + 1) << GRANULARITY) | ((v >>> shift) & (SUB - 1));
}

function bucketStart(i: number): number {
  const range = i >>> GRANULARITY;
  const sub = i & (SUB - 1);
  if (range === 0) return sub;
  return (SUB + sub) * 2 ** (range - 1);
}

function bucketEnd(i: number): number {
  const range = i >>> GRANULARITY;
  return bucketStart(i) + (range === 0 ? 1 : 2 ** (range - 1));
}

/** Per-type counters of one bdev, in SPDK's units (bytes, and ticks where one tick is 1 ns). */
export class IoStat {
  readonly ops = new Float64Array(6);
  readonly bytes = new Float64Array(6);
  readonly latSum = new Float64Array(6);
  readonly latMin = new Float64Array(6).fill(Infinity);
  readonly latMax = new Float64Array(6);
  /** Failed I/Os by errno (positive). */
  readonly errors = new Map<number, number>();
  readonly histogram = new LatencyHistogram();

  record(type: IoType, bytes: number, ns: number, status: number): void {
    if (status !== 0) {
      this.errors.set(-status, (this.errors.get(-status) ?? 0) + 1);
      return;
    }
    this.ops[type]++;
    this.bytes[type] += bytes;
    this.latSum[type] += ns;
    if (ns < this.latMin[type]) this.latMin[type] = ns;
    if (ns > this.latMax[type]) this.latMax[type] = ns;
    if (type === IoType.READ || type === IoType.WRITE) this.histogram.record(ns);
  }

  /** SPDK's bdev_get_iostat member for this bdev. */
  toJson(name: string): Record<string, unknown> {
    const min = (t: IoType) => (this.latMin[t] === Infinity ? 0 : Math.round(this.latMin[t]));
    const ioError: Record<string, number> = {};
    for (const [errno, n] of this.errors) ioError[`errno_${errno}`] = n;
    return {
      name,
      bytes_read: this.bytes[IoType.READ],
      num_read_ops: this.ops[IoType.READ],
      bytes_written: this.bytes[IoType.WRITE],
      num_write_ops: this.ops[IoType.WRITE],
      bytes_unmapped: this.bytes[IoType.UNMAP],
      num_unmap_ops: this.ops[IoType.UNMAP],
      bytes_copied: 0,
      num_copy_ops: 0,
      read_latency_ticks: Math.round(this.latSum[IoType.READ]),
      max_read_latency_ticks: Math.round(this.latMax[IoType.READ]),
      min_read_latency_ticks: min(IoType.READ),
      write_latency_ticks: Math.round(this.latSum[IoType.WRITE]),
      max_write_latency_ticks: Math.round(this.latMax[IoType.WRITE]),
      min_write_latency_ticks: min(IoType.WRITE),
      unmap_latency_ticks: Math.round(this.latSum[IoType.UNMAP]),
      max_unmap_latency_ticks: Math.round(this.latMax[IoType.UNMAP]),
      min_unmap_latency_ticks: min(IoType.UNMAP),
      copy_latency_ticks: 0,
      max_copy_latency_ticks: 0,
      min_copy_latency_ticks: 0,
      io_error: ioError,
    };
  }

  reset(): void {
    for (const a of [this.ops, this.bytes, this.latSum, this.latMax]) a.fill(0);
    this.latMin.fill(Infinity);
    this.errors.clear();
    this.histogram.reset();
  }
}
