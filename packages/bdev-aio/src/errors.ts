import { Errno, errorFactory } from '@blockwork/core';

/**
 * Errors of the aio bdev module, extending core's catalogue. Codes are stable: never renamed or
 * reused. `errno` is the default; open failures carry the errno the kernel gave.
 */
export const AIO_ERRORS = {
  AIO_FILE_NOT_FOUND: { errno: Errno.ENOENT, text: 'the backing file does not exist' },
  AIO_IS_DIRECTORY: { errno: Errno.EISDIR, text: 'the backing path is a directory' },
  AIO_NOT_WRITABLE: { errno: Errno.EACCES, text: 'the backing file cannot be opened for writing' },
  AIO_OPEN_FAILED: { errno: Errno.EIO, text: 'the backing file could not be opened or inspected' },
  AIO_UNSUPPORTED_FILE: { errno: Errno.EINVAL, text: 'the backing path is neither a regular file nor a block device' },
  AIO_BLOCK_SIZE: { errno: Errno.EINVAL, text: 'invalid block size for this file or device' },
  AIO_SIZE: { errno: Errno.EINVAL, text: 'the file size is zero or not a multiple of the block size' },
  AIO_NOWAIT_UNSUPPORTED: { errno: Errno.EINVAL, text: 'nowait (RWF_NOWAIT) is not supported' },
  AIO_NOT_AIO_BDEV: { errno: Errno.ENODEV, text: 'the bdev exists but is not an aio bdev' },
  AIO_SETUP_FAILED: { errno: Errno.EAGAIN, text: 'io_setup or eventfd failed for a new channel' },
} as const;

export type AioErrorCode = keyof typeof AIO_ERRORS;

/** Creates a catalogue error; `errno` overrides the default (e.g. EROFS vs EACCES). */
export const aioError = errorFactory(AIO_ERRORS);
