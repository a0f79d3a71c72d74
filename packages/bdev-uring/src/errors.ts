import { Errno, errorFactory } from '@blockwork/core';

/**
 * This package's error catalogue, extending core's. Codes are stable: never renamed, never reused.
 * `errno` is the default; an error built from a failed system call carries that call's errno.
 * docs/bdev-uring.md lists them all.
 */
export const URING_ERRORS = {
  URING_DISABLED: { errno: Errno.EPERM, text: 'io_uring is disabled by kernel.io_uring_disabled' },
  URING_UNAVAILABLE: { errno: Errno.ENOSYS, text: 'io_uring_setup failed (kernel without io_uring, seccomp, limits)' },
  URING_FILE_NOT_FOUND: { errno: Errno.ENOENT, text: 'the backing file does not exist' },
  URING_FILE_IS_DIRECTORY: { errno: Errno.EISDIR, text: 'the backing path is a directory' },
  URING_FILE_NOT_WRITABLE: { errno: Errno.EACCES, text: 'the backing file cannot be opened for writing (EACCES, EROFS, EPERM)' },
  URING_FILE_OPEN_FAILED: { errno: Errno.EIO, text: 'the backing file could not be opened or examined' },
  URING_FILE_TYPE: { errno: Errno.EINVAL, text: 'the backing file is neither a regular file nor a block device' },
  URING_FILE_TOO_SMALL: { errno: Errno.EINVAL, text: 'the backing file is smaller than one block' },
  URING_BLOCK_SIZE: { errno: Errno.EINVAL, text: 'block_size is invalid for this file or device' },
  URING_NOT_URING_BDEV: { errno: Errno.ENODEV, text: 'the named bdev is not a uring bdev' },
} as const;

export type UringErrorCode = keyof typeof URING_ERRORS;

/** Creates a catalogue error; `errno` overrides the default (e.g. EROFS vs EACCES). */
export const uringError = errorFactory(URING_ERRORS);
