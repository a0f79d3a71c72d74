import { loadAddon } from '@blockwork/core';

/** A failed system call as the addon reports it: positive errno and the call's name. */
export interface SyscallFailure {
  errno: number;
  syscall: string;
}

/** What `fileInfo` learns about an open fd. Sizes in bytes; zeros mean "not reported". */
export interface NativeFileInfo {
  kind: 'file' | 'block' | 'directory' | 'other';
  /** File size, or the device size (BLKGETSIZE64) for a block device. */
  size: number;
  /** BLKSSZGET for block devices, 0 for files. */
  logicalBlockSize: number;
  /** statx STATX_DIOALIGN: required buffer address alignment for O_DIRECT (0 = unknown). */
  dioMemAlign: number;
  /** statx STATX_DIOALIGN: required file offset and length alignment for O_DIRECT (0 = unknown). */
  dioOffsetAlign: number;
}

/** Batch descriptor opcodes (native/uring-addon.cc `Op`). */
export const RingOp = {
  READ: 0,
  WRITE: 1,
  /** fsync(DATASYNC) of the whole file. */
  FSYNC: 2,
  /** fallocate(PUNCH_HOLE | KEEP_SIZE). */
  PUNCH: 3,
  /** fallocate(ZERO_RANGE | KEEP_SIZE). */
  ZERO: 4,
} as const;

/**
 * Doubles per I/O in a batch descriptor: [op, slot, offset bytes, length bytes, first buf, buf count].
 * Read/write entries take `buf count` consecutive Uint8Arrays of `bufs`, in entry order.
 */
export const DESC_STRIDE = 6;

/** Optional ring settings (defaults: best setup mode, no spinning). */
export interface UringRingOptions {
  /** Skip SINGLE_ISSUER | DEFER_TASKRUN even where the kernel has them (for comparison runs). */
  plain?: boolean;
  /** Longest busy-wait for a completion, in microseconds; 0 (default) never spins. */
  spinUs?: number;
  /** Spin only while 1..spinMaxInflight I/Os are in flight. */
  spinMaxInflight?: number;
}

/**
 * One io_uring with its eventfd on Node's loop. Completions call `onComplete(n)` once per batch with
 * the slot ids and results (bytes or -errno) in the first n entries of the arrays given at construction.
 * The poll handle keeps the process alive only while I/O is in flight.
 */
export interface UringRing {
  /** SQ size; slots (user data) must be below it, and at most this many I/Os may be in flight. */
  readonly sqEntries: number;
  /** SQEs submitted and not yet reaped. */
  readonly inflight: number;
  /** 'defer': SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG; 'plain': no setup flags (older kernels). */
  readonly mode: 'defer' | 'plain';
  /**
   * Waits that saw a completion arrive, waits that timed out and went back to epoll, and idle passes
   * that lost their CPU to other threads (polling then pauses for 100 ms).
   */
  readonly spinStats: { hits: number; misses: number; contended: number };
  /**
   * Fills SQEs from the first `count` descriptor entries that fit in the SQ and enters them with one
   * io_uring_enter. Returns how many were taken (the caller keeps the rest), or -errno when
   * io_uring_enter failed and none of them was queued. Throws TypeError on a malformed batch.
   */
  submit(count: number, desc: Float64Array, bufs: Uint8Array[]): number;
  /** Stops the poll, unmaps the ring and closes the ring fd and eventfd. Call with nothing in flight. */
  close(): void;
}

/** The exact shape of this package's addon. Nothing else loads it. */
export interface UringNative {
  /** Throws an Error with `errno` and `syscall` when setup fails (io_uring_setup, mmap, eventfd, io_uring_register). */
  UringRing: new (
    fd: number, entries: number, ids: Uint32Array, results: Int32Array, onComplete: (n: number) => void,
    options?: UringRingOptions,
  ) => UringRing;
  fileInfo(fd: number): NativeFileInfo | SyscallFailure;
  /** null when io_uring_setup works in this process. */
  probe(): SyscallFailure | null;
}

let cached: UringNative | null = null;

export function uringNative(): UringNative {
  cached ??= loadAddon(__dirname) as UringNative;
  return cached;
}

export function isSyscallFailure(v: unknown): v is SyscallFailure {
  return typeof v === 'object' && v !== null && typeof (v as SyscallFailure).errno === 'number' && typeof (v as SyscallFailure).syscall === 'string';
}
