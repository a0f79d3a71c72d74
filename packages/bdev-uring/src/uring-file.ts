import { closeSync, constants, openSync, readFileSync } from 'node:fs';
import { type BlockworkError, type Logger, strerror } from '@blockwork/core';
import { uringError } from './errors';
import { isSyscallFailure, type NativeFileInfo, type SyscallFailure, uringNative } from './native';

/** An open backing file (regular file or block device) and the geometry derived from it. */
export interface UringFile {
  readonly filename: string;
  /** The open fd (O_RDWR, O_DIRECT unless the filesystem refused it). Owned by the bdev. */
  readonly fd: number;
  readonly kind: 'file' | 'block';
  /** Whether the fd is O_DIRECT. */
  readonly direct: boolean;
  /** Logical block size in bytes. */
  readonly blockSize: number;
  /** Buffer address and length alignment in bytes that I/O needs (1 for buffered I/O). */
  readonly requiredAlignment: number;
  /** Size in bytes when opened. */
  readonly sizeBytes: number;
}

/** Default block size for regular files when `block_size` is not given (SPDK would refuse instead). */
export const DEFAULT_FILE_BLOCK_SIZE = 512;

/**
 * Decides whether io_uring can be used from `kernel.io_uring_disabled` (null when the sysctl does
 * not exist) and the result of a trial io_uring_setup. Returns the error to report, or null.
 */
export function diagnoseUring(disabledSysctl: string | null, probe: SyscallFailure | null): BlockworkError | null {
  const disabled = disabledSysctl?.trim();
  if (disabled === '2') return uringError('URING_DISABLED', 'io_uring is disabled by kernel.io_uring_disabled=2');
  if (probe === null) return null;
  if (disabled === '1' && probe.errno === 1) {
    return uringError('URING_DISABLED', 'io_uring is disabled for unprivileged processes by kernel.io_uring_disabled=1 ' +
      '(needs CAP_SYS_ADMIN or membership of kernel.io_uring_group)');
  }
  const hint = probe.errno === 1 ? ' (seccomp?)' : probe.errno === 38 ? ' (kernel without io_uring, or seccomp)' : '';
  return uringError('URING_UNAVAILABLE', `${probe.syscall} failed: ${strerror(probe.errno)}${hint}`, { errno: probe.errno });
}

let usability: BlockworkError | null | undefined;

/** Throws URING_DISABLED or URING_UNAVAILABLE when this process cannot use io_uring. Checked once. */
export function assertUringUsable(): void {
  if (usability === undefined) {
    let sysctl: string | null = null;
    try {
      sysctl = readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8');
    } catch {
      // Kernels before 6.6 have no such sysctl: io_uring is then on unless seccomp says otherwise.
    }
    usability = diagnoseUring(sysctl, uringNative().probe());
  }
  if (usability) throw usability;
}

function openError(filename: string, e: NodeJS.ErrnoException): BlockworkError {
  const errno = -(e.errno ?? -5);
  switch (e.code) {
    case 'ENOENT': return uringError('URING_FILE_NOT_FOUND', `backing file '${filename}' does not exist`, { cause: e });
    case 'EISDIR': return uringError('URING_FILE_IS_DIRECTORY', `backing file '${filename}' is a directory`, { cause: e });
    case 'EACCES': case 'EROFS': case 'EPERM': case 'ETXTBSY':
      return uringError('URING_FILE_NOT_WRITABLE', `backing file '${filename}' cannot be opened for writing: ${strerror(errno)}`, { errno, cause: e });
    default:
      return uringError('URING_FILE_OPEN_FAILED', `cannot open backing file '${filename}': ${strerror(errno)}`, { errno, cause: e });
  }
}

/** Opens read-write with O_DIRECT, falling back to buffered I/O where the filesystem refuses O_DIRECT (EINVAL). */
function openFd(filename: string, log: Logger): { fd: number; direct: boolean } {
  try {
    return { fd: openSync(filename, constants.O_RDWR | constants.O_DIRECT), direct: true };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code !== 'EINVAL') throw openError(filename, err);
  }
  log.warn({ filename }, 'filesystem refused O_DIRECT; using buffered I/O (data goes through the page cache)');
  try {
    return { fd: openSync(filename, constants.O_RDWR), direct: false };
  } catch (e) {
    throw openError(filename, e as NodeJS.ErrnoException);
  }
}

/** fileInfo or a URING_FILE_OPEN_FAILED error naming the file and the failed call. */
export function statBacking(fd: number, filename: string): NativeFileInfo {
  const info = uringNative().fileInfo(fd);
  if (isSyscallFailure(info)) {
    throw uringError('URING_FILE_OPEN_FAILED', `${info.syscall} on '${filename}' failed: ${strerror(info.errno)}`, { errno: info.errno });
  }
  return info;
}

function pickBlockSize(info: NativeFileInfo, direct: boolean, requested: number | undefined, filename: string): number {
  const floor = info.kind === 'block' ? info.logicalBlockSize : direct ? info.dioOffsetAlign : 0;
  const bs = requested ?? Math.max(DEFAULT_FILE_BLOCK_SIZE, floor);
  if (!Number.isInteger(bs) || bs < 512 || (bs & (bs - 1)) !== 0) {
    throw uringError('URING_BLOCK_SIZE', `block_size ${bs} for '${filename}' is not a power of two of at least 512`);
  }
  if (floor > 0 && bs % floor !== 0) {
    const what = info.kind === 'block' ? 'logical block size' : 'O_DIRECT offset alignment';
    throw uringError('URING_BLOCK_SIZE', `block_size ${bs} for '${filename}' is not a multiple of its ${what} ${floor}`);
  }
  return bs;
}

/**
 * Opens and examines a backing file. Block devices: block size from BLKSSZGET (a larger
 * `blockSize` that is a multiple of it is accepted), size from BLKGETSIZE64. Regular files: size
 * from fstat, block size `blockSize` or 512 (raised to the O_DIRECT alignment if larger).
 * Throws catalogue errors naming the file; the fd is closed on failure.
 */
export function openBackingFile(filename: string, blockSize: number | undefined, log: Logger): UringFile {
  const { fd, direct } = openFd(filename, log);
  try {
    const info = statBacking(fd, filename);
    if (info.kind === 'directory') throw uringError('URING_FILE_IS_DIRECTORY', `backing file '${filename}' is a directory`);
    if (info.kind === 'other') throw uringError('URING_FILE_TYPE', `backing file '${filename}' is neither a regular file nor a block device`);
    const bs = pickBlockSize(info, direct, blockSize, filename);
    if (info.size < bs) {
      throw uringError('URING_FILE_TOO_SMALL', `backing file '${filename}' has ${info.size} bytes, less than one ${bs}-byte block`);
    }
    // O_DIRECT needs buffers aligned to the memory alignment statx reports (else the block size).
    const requiredAlignment = direct ? Math.max(info.dioMemAlign || bs, 1) : 1;
    return { filename, fd, kind: info.kind, direct, blockSize: bs, requiredAlignment, sizeBytes: info.size };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}
