import { loadAddon } from '@blockwork/core';

/** A failed system call as the addon reports it: positive errno and the call's name. */
export interface NativeFailure {
  errno: number;
  syscall: string;
}

/** Geometry of an open file or block device. Sizes in bytes; 0 means unknown. */
export interface NativeFileInfo {
  kind: 'file' | 'block' | 'directory' | 'other';
  size: number;
  /** BLKSSZGET for block devices, 0 for files. */
  logicalBlockSize: number;
  /** statx STATX_DIOALIGN: O_DIRECT buffer address alignment (0 = unknown). */
  dioMemAlign: number;
  /** statx STATX_DIOALIGN: O_DIRECT offset/length alignment (0 = unknown). */
  dioOffsetAlign: number;
}

/** Submission op codes understood by `AioContextNative.submit`. */
export enum AioOp {
  READ = 0,
  WRITE = 1,
  FDSYNC = 2,
}

/** Op codes of `runBlocking` (thread pool). */
export enum BlockingOp {
  PUNCH_HOLE = 0,
  /** ZERO_RANGE, falling back to PUNCH_HOLE where the filesystem lacks it. */
  ZERO_RANGE = 1,
  FDATASYNC = 2,
}

/** Arrays owned by JS that describe one submission batch; index i is one I/O. */
export interface SubmitArrays {
  ops: Uint8Array;
  fds: Int32Array;
  /** Byte offsets. */
  offsets: Float64Array;
  /** Slot (0..depth-1) of each I/O; comes back as the completion's id. */
  slots: Uint32Array;
}

/** Arrays owned by JS that the addon fills with one batch of completions before calling back. */
export interface CompletionArrays {
  slots: Uint32Array;
  /** Bytes transferred, or -errno. */
  results: Float64Array;
}

/** One kernel AIO context with its eventfd on Node's loop. */
export interface AioContextNative {
  /**
   * Issues entries [start, end) of the submit arrays in one io_submit; `iovLists[i]` is the buffer
   * list of entry i (ignored for FDSYNC). Buffers must stay alive until their completion. Returns
   * the number the kernel accepted (possibly fewer) or -errno when it accepted none.
   */
  submit(start: number, end: number, iovLists: Uint8Array[][]): number;
  /** io_destroy (waits for in-flight I/O in the kernel), close the eventfd, stop polling. Idempotent. */
  destroy(): void;
  readonly inflight: number;
  /** Whether completions are read from the user-space ring (else io_getevents). */
  readonly usesRing: boolean;
  /**
   * Busy-wait up to `us` microseconds for a completion (once per loop turn, adaptive) while
   * 1..maxInflight I/Os are in flight; 0 never spins (the default). Only with the user-space ring.
   */
  setSpin(us: number, maxInflight: number): void;
  /**
   * Waits that saw a completion arrive, waits that timed out and went back to epoll, and idle passes
   * that lost their CPU to other threads (polling then pauses for 100 ms).
   */
  readonly spinStats: { hits: number; misses: number; contended: number };
}

/** The exact shape of the addon (native/*.cc). Nothing else in the package sees the raw binding. */
export interface AioNative {
  /** Throws an Error with `errno` and `syscall` when io_setup or eventfd fails. */
  AioContext: new (
    depth: number,
    submit: SubmitArrays,
    completion: CompletionArrays,
    onComplete: (count: number) => void,
  ) => AioContextNative;
  openFile(path: string, readonly: boolean, direct: boolean): number | NativeFailure;
  fileInfo(fd: number): NativeFileInfo | NativeFailure;
  closeFile(fd: number): number | NativeFailure;
  /** fallocate(KEEP_SIZE | PUNCH_HOLE or ZERO_RANGE) synchronously: 0 or errno. Control plane only. */
  probeFallocate(fd: number, zeroRange: boolean, offset: number, length: number): number;
  /** Runs `count` blocking ops on the libuv pool; fills `results` (0 or -errno) then calls `done` once. */
  runBlocking(
    count: number, ops: Uint8Array, fds: Int32Array, offsets: Float64Array, lengths: Float64Array,
    results: Int32Array, done: () => void,
  ): void;
}

export function isFailure(v: unknown): v is NativeFailure {
  return typeof v === 'object' && v !== null && typeof (v as NativeFailure).errno === 'number';
}

let cached: AioNative | null = null;

export function aioNative(): AioNative {
  cached ??= loadAddon(__dirname) as AioNative;
  return cached;
}
