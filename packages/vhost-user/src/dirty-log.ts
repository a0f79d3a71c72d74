import { vhostUserNative } from './native';

/** Guest physical bytes per dirty-log bit (VHOST_LOG_PAGE). */
export const LOG_PAGE_SIZE = 4096;

/**
 * Sets, with an atomic OR per byte, the dirty-log bit of every 4 KiB guest physical page in
 * [gpa, gpa + len) (page p: bit p % 8 of byte p / 8). `log` is the mapping of the front end's log
 * (SET_LOG_BASE). Pages past the end of the log are skipped, never written; returns how many there
 * were (0 normally). One native call per range. `gpa` and `len` must be non-negative safe integers
 * (TypeError otherwise).
 *
 * Why native: QEMU clears the log with an atomic exchange while we set bits; JS `Atomics` are only
 * promised on a SharedArrayBuffer, and a mapping is an external ArrayBuffer.
 */
export function markDirtyPages(log: ArrayBuffer, gpa: number, len: number): number {
  return vhostUserNative().dirtyLogMark(log, gpa, len);
}
