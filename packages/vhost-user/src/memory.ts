import { vhostUserError } from './errors';
import { isSyscallError, vhostUserNative } from './native';

/** A shared mapping of a received fd (guest memory region or inflight region). */
export interface MappedRegion {
  /** External ArrayBuffer over the mapping; length = size. Detached (length 0) after unmap. */
  readonly buffer: ArrayBuffer;
  /** Bytes mapped. */
  readonly size: number;
  /**
   * True once the peer truncated the file under the mapping and a SIGBUS was caught: the mapping
   * now holds private zero pages and the peer's data is gone, so its owner must drop the peer.
   */
  readonly poisoned: boolean;
  /** munmap now; every view of `buffer` becomes empty rather than dangling. Idempotent. */
  unmap(): void;
}

function syscallError(what: string, e: unknown): Error {
  return vhostUserError('VHOST_USER_SYSCALL', `${what}: ${(e as Error).message}`, { errno: isSyscallError(e) ? e.errno : undefined, cause: e });
}

/** Mappings whose owner wants to hear about a caught SIGBUS. */
const poisonListeners = new Map<ArrayBuffer, () => void>();
let sigbusHooked = false;

function checkPoisoned(): void {
  const native = vhostUserNative();
  for (const [buffer, cb] of [...poisonListeners]) {
    if (!native.mappingPoisoned(buffer)) continue;
    poisonListeners.delete(buffer);
    cb();
  }
}

/**
 * Maps `size` bytes of `fd` at `offset` (any alignment) with MAP_SHARED, read-write unless
 * `opts.writable` is false. Throws VHOST_USER_MMAP_RANGE when offset + size passes the fd's size:
 * touching a mapping past the end of a memfd raises SIGBUS. The size can still shrink later (an
 * unsealed memfd, a file): every mapping is guarded, so such a SIGBUS turns the mapping into zero
 * pages instead of killing the process, and `opts.onPoisoned` runs on the event loop soon after.
 * The fd may be closed after mapping; the mapping stays.
 */
export function mmapFd(fd: number, size: number, offset: number, opts: { writable?: boolean; onPoisoned?: () => void } = {}): MappedRegion {
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
  if (opts.onPoisoned) {
    if (!sigbusHooked) {
      native.onSigbus(checkPoisoned);
      sigbusHooked = true;
    }
    poisonListeners.set(buffer, opts.onPoisoned);
  }
  return {
    buffer,
    size,
    get poisoned() {
      return native.mappingPoisoned(buffer);
    },
    unmap: () => {
      poisonListeners.delete(buffer);
      native.munmap(buffer);
    },
  };
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
