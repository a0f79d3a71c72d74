import { loadAddon } from '@blockwork/core';

/** A failed librados/librbd call as the addon reports it (rejected Promise or thrown Error). */
export interface RbdCallError extends Error {
  /** Positive errno (librados returns -errno; the sign is dropped). */
  errno: number;
  /** The C function that failed: rados_connect, rados_conf_set, rbd_open... */
  syscall: string;
  /** The option, path, pool or image the call was about, when there is one. */
  detail?: string;
}

/** Opaque, type-tagged handles; only this package's addon can use them. */
export type ClusterHandle = { readonly __brand: 'rados_t' };
export type IoctxHandle = { readonly __brand: 'rados_ioctx_t' };
export type ImageHandle = { readonly __brand: 'rbd_image_t' };

/** Batch descriptor opcodes (native/rbd-queue.cc `Op`). */
export const RbdOp = {
  READ: 0,
  WRITE: 1,
  FLUSH: 2,
  DISCARD: 3,
  /** rbd_aio_write_zeroes; the addon uses discard when librbd lacks it. */
  WRITE_ZEROES: 4,
} as const;

/**
 * Doubles per I/O in a batch descriptor: [op, slot, offset bytes, length bytes, first buf, buf count].
 * Read/write entries take `buf count` consecutive Uint8Arrays of `bufs`, in entry order.
 */
export const DESC_STRIDE = 6;

/**
 * One channel's I/O path to an open image. Completions (from librbd's threads) reach JS as one
 * `onComplete(n)` call per batch, with slots and statuses (0 or -errno) in the first n entries of the
 * arrays given at construction. Keeps the process alive only while I/O is in flight.
 */
export interface RbdQueue {
  /** Slot ids must be below this; at most this many I/Os may be in flight. */
  readonly slots: number;
  /** I/Os started and not yet handed to onComplete. */
  readonly inflight: number;
  /**
   * Starts the first `count` descriptor entries (one native call for the batch) and returns count.
   * An entry librbd refuses at once completes through onComplete with its -errno. Throws TypeError on
   * a malformed batch; the buffers must stay referenced until their completion.
   */
  submit(count: number, desc: Float64Array, bufs: Uint8Array[]): number;
  /** Releases the wakeup handle. Throws (errno EBUSY) while I/O is in flight. */
  close(): void;
}

/** The exact shape of this package's addon. Nothing else loads it. */
export interface RbdNative {
  /** dlopen()s librados and librbd: null on success (or when already loaded), else the dlopen/dlsym message. */
  load(radosPath: string, rbdPath: string): string | null;
  /** librbd's version and whether rbd_aio_write_zeroes exists. Requires a successful load. */
  libraryInfo(): { version: string; writeZeroes: boolean };
  /**
   * rados_create2("client.<user>") + conf_read_file(confFile, or the default search path when
   * readDefault) + conf_set of each pair + rados_connect, on the thread pool. Rejects with RbdCallError.
   */
  connect(user: string, confFile: string | null, readDefault: boolean, options: Array<[string, string]>): Promise<ClusterHandle>;
  ioctxCreate(cluster: ClusterHandle, pool: string): Promise<IoctxHandle>;
  /** Synchronous; a no-op on an already destroyed ioctx. */
  ioctxDestroy(ioctx: IoctxHandle): void;
  /** rados_shutdown; every ioctx and image of the cluster must be closed first. */
  shutdown(cluster: ClusterHandle): Promise<void>;
  imageOpen(ioctx: IoctxHandle, name: string): Promise<ImageHandle>;
  /** Bytes, from librbd's cached header (synchronous). */
  imageSize(image: ImageHandle): number;
  imageResize(image: ImageHandle, bytes: number): Promise<void>;
  /** rbd_close; every queue on the image must be idle. */
  imageClose(image: ImageHandle): Promise<void>;
  RbdQueue: new (image: ImageHandle, slots: number, ids: Uint32Array, results: Int32Array, onComplete: (n: number) => void) => RbdQueue;
}

let cached: RbdNative | null = null;

/** The addon itself (always loadable: it links neither librbd nor librados). */
export function rbdAddon(): RbdNative {
  cached ??= loadAddon(__dirname) as RbdNative;
  return cached;
}

/**
 * Library names handed to dlopen. BLOCKWORK_LIBRBD / BLOCKWORK_LIBRADOS override them (a path or a
 * soname), e.g. BLOCKWORK_LIBRBD=/nonexistent to see how a machine without librbd behaves.
 */
export function libraryPaths(): { rados: string; rbd: string } {
  return { rados: process.env.BLOCKWORK_LIBRADOS || 'librados.so.2', rbd: process.env.BLOCKWORK_LIBRBD || 'librbd.so.1' };
}

export function isRbdCallError(e: unknown): e is RbdCallError {
  return e instanceof Error && typeof (e as RbdCallError).errno === 'number' && typeof (e as RbdCallError).syscall === 'string';
}
