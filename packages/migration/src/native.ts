import { packageRoot } from '@blockwork/core';

/** A failed system call as the addon reports it (thrown Error members). */
export interface SyscallError extends Error {
  errno: number;
  syscall: string;
}

/**
 * One bitmap file mapped MAP_SHARED (native/bitmap-addon.cc). Bit operations are lock-free single-word
 * atomics on the mapping, so every process that maps the same file sees and makes consistent updates.
 * Bit indices are granule numbers; `configure` must run before any bit operation.
 */
export interface NativeBitmapFile {
  /** Size of the file when opened, in bytes (nothing is mapped when it is smaller than the 4096-byte header). */
  readonly fileBytes: number;
  /** Sets the granule size (bytes) and count used by every bit call; false when the file holds too few words. */
  configure(granuleBytes: number, granuleCount: number): boolean;
  /** A copy of the first `bytes` (≤ 512) header bytes; `useMutex` takes the header mutex for a consistent snapshot. */
  readHeader(bytes: number, useMutex?: boolean): Buffer;
  /** Copies `data` into the header at `offset` (must end at or before 512). Returns 1 when the mutex was recovered from a dead holder. */
  writeHeader(offset: number, data: Uint8Array, useMutex?: boolean): number;
  /** Initialises the robust, process-shared header mutex (creation, or after a reboot). */
  initMutex(): void;
  /** Locks the header mutex: 0, 1 when recovered from a dead holder (EOWNERDEAD), or -errno. */
  lock(): number;
  /** Unlocks the header mutex: 0 or -errno. */
  unlock(): number;
  /** Atomically sets a bit; returns its previous value. */
  setBit(bit: number): boolean;
  /** Atomically clears a bit; returns its previous value (test-and-clear). */
  clearBit(bit: number): boolean;
  testBit(bit: number): boolean;
  /** Sets bits [first, first+count). */
  setRange(first: number, count: number): void;
  /** Marks the granules covering bytes [offset, offset+length); returns how many (0 if closed or empty). Never throws on a number pair. */
  markBytes(offset: number, length: number): number;
  /** First set bit at or after `from`, or -1. */
  findNextSet(from: number): number;
  countSet(): number;
  /** msync(MS_SYNC) of the whole mapping: 0 or -errno. */
  msync(): number;
  /** flock(LOCK_EX|LOCK_NB) on the file: 0 or -errno (-EWOULDBLOCK when another holder has it). */
  tryLockFile(): number;
  /** Copy slot `slot` (< 64) := value (granule + 1 while it is copied, 0 when free): a crash mid-copy leaves it occupied. */
  slotSet(slot: number, value: number): void;
  /** Marks the granule of every occupied copy slot dirty and frees the slot; returns how many. */
  recoverSlots(): number;
  /**
   * The mapped bit words as an ArrayBuffer (no copy; the same object on every call): for plain reads
   * only, bit g is bit g % 32 of Uint32 word g / 32 on little-endian hosts. Detached (length 0) by close.
   */
  bitsView(): ArrayBuffer;
  /** munmap and close; later bit calls see an empty bitmap (markBytes returns 0). */
  close(): void;
}

/** The exact shape of this package's addon. Nothing else loads it. */
export interface MigrationNative {
  /**
   * Opens `path`: with `createBytes` > 0 creates it (O_EXCL, mode 0600) at that size, else opens the
   * existing file. Throws an Error with `errno` and `syscall` when a system call fails.
   */
  BitmapFile: new (path: string, createBytes: number) => NativeBitmapFile;
}

let cached: MigrationNative | null = null;

export function migrationNative(): MigrationNative {
  if (cached === null) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const load = require('node-gyp-build') as (dir: string) => unknown;
    cached = load(packageRoot(__dirname)) as MigrationNative;
  }
  return cached;
}

export function isSyscallError(e: unknown): e is SyscallError {
  return e instanceof Error && typeof (e as SyscallError).errno === 'number' && typeof (e as SyscallError).syscall === 'string';
}
