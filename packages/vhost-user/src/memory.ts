import { vhostUserError } from './errors';
import { isSyscallError, vhostUserNative } from './native';

/** A shared mapping of a received fd (guest memory region or inflight region). */
export interface MappedRegion {
  /** External ArrayBuffer over the mapping; length = size. Detached (length 0) after unmap. */
  readonly buffer: ArrayBuffer;
  /** Bytes mapped. */
  readonly size: number;
  /** munmap now; every view of `buffer` becomes empty rather than dangling. Idempotent. */
  unmap(): void;
}

function syscallError(what: string, e: unknown): Error {
  return vhostUserError('VHOST_USER_SYSCALL', `${what}: ${(e as Error).message}`, { errno: isSyscallError(e) ? e.errno : undefined, cause: e });
}

/**
 * Maps `size` bytes of `fd` at `offset` (any alignment) with MAP_SHARED, read-write unless
 * `opts.writable` is false. Throws VHOST_USER_MMAP_RANGE when offset + size passes the fd's size:
 * touching a mapping past the end of a memfd raises SIGBUS, which would kill the process. The fd
 * may be closed after mapping; the mapping stays.
 */
export function mmapFd(fd: number, size: number, offset: number, opts: { writable?: boolean } = {}): MappedRegion {
  if (!Number.isSafeInteger(size) || size <= 0 || !Number.isSafeInteger(offset) || offset < 0) {
    throw vhostUserError('VHOST_USER_MMAP_RANGE', `mmap of fd ${fd}: size ${size} and offset ${offset} must be integers, size > 0`);
  }
  const fileSize = fdSize(fd);
  if (offset + size > fileSize) {
    throw vhostUserError('VHOST_USER_MMAP_RANGE', `mmap of fd ${fd}: offset ${offset} + size ${size} passes its end (${fileSize} bytes)`);
  }
  const native = vhostUserNative();
  let buffer: ArrayBuffer;
  try {
    buffer = native.mmap(fd, size, offset, opts.writable !== false);
  } catch (e) {
    throw syscallError(`mmap of fd ${fd}`, e);
  }
  return { buffer, size, unmap: () => native.munmap(buffer) };
}

/** A new memfd (MFD_CLOEXEC) of `size` bytes, zero-filled; returns the fd (the caller closes it). */
export function memfdCreate(name: string, size: number): number {
  try {
    return vhostUserNative().memfdCreate(name, size);
  } catch (e) {
    throw syscallError(`memfd_create ${name}`, e);
  }
}

/** close(2). Throws VHOST_USER_SYSCALL (with errno, e.g. EBADF). */
export function closeFd(fd: number): void {
  try {
    vhostUserNative().closeFd(fd);
  } catch (e) {
    throw syscallError(`close fd ${fd}`, e);
  }
}

/** fstat(2) st_size in bytes. */
export function fdSize(fd: number): number {
  try {
    return vhostUserNative().fdSize(fd);
  } catch (e) {
    throw syscallError(`fstat fd ${fd}`, e);
  }
}

/**
 * Ordered 16-bit accesses for virtqueue indices in shared memory (Atomics needs a SharedArrayBuffer,
 * and a mapping is an external ArrayBuffer). Each is one native call, meant once per batch:
 * - storeRelease16: plain stores made before it (descriptors, ring slots) are visible first
 *   (publish avail.idx / used.idx).
 * - storeFence16: the same plus a full barrier, for "publish, then read the peer's suppression
 *   flag or event index".
 * - loadAcquire16: ring entries read after it are at least as new as the index (read used.idx / avail.idx).
 */
export const ringOrder: {
  storeRelease16(view: Uint16Array, index: number, value: number): void;
  storeFence16(view: Uint16Array, index: number, value: number): void;
  loadAcquire16(view: Uint16Array, index: number): number;
} = {
  storeRelease16: (v, i, x) => vhostUserNative().storeRelease16(v, i, x),
  storeFence16: (v, i, x) => vhostUserNative().storeFence16(v, i, x),
  loadAcquire16: (v, i) => vhostUserNative().loadAcquire16(v, i),
};
