import { constants } from 'node:os';

/** Positive errno values from the platform (Linux). I/O statuses and RPC errors use their negatives. */
export const Errno = constants.errno;

/** Text for an errno as strerror(3) gives it, e.g. 17 -> "File exists". */
export function strerror(errno: number): string {
  return ERRNO_TEXT[Math.abs(errno)] ?? `errno ${Math.abs(errno)}`;
}

const ERRNO_TEXT: Record<number, string> = {
  [Errno.EPERM]: 'Operation not permitted',
  [Errno.ENOENT]: 'No such file or directory',
  [Errno.EIO]: 'Input/output error',
  [Errno.EBADF]: 'Bad file descriptor',
  [Errno.EAGAIN]: 'Resource temporarily unavailable',
  [Errno.ENOMEM]: 'Cannot allocate memory',
  [Errno.EACCES]: 'Permission denied',
  [Errno.EBUSY]: 'Device or resource busy',
  [Errno.EEXIST]: 'File exists',
  [Errno.ENODEV]: 'No such device',
  [Errno.ENOTDIR]: 'Not a directory',
  [Errno.EISDIR]: 'Is a directory',
  [Errno.EINVAL]: 'Invalid argument',
  [Errno.ENOSPC]: 'No space left on device',
  [Errno.EROFS]: 'Read-only file system',
  [Errno.ERANGE]: 'Numerical result out of range',
  [Errno.ENOTSUP]: 'Operation not supported',
  [Errno.ETIMEDOUT]: 'Connection timed out',
  [Errno.ECANCELED]: 'Operation canceled',
  [Errno.ENOSYS]: 'Function not implemented',
  [Errno.ENXIO]: 'No such device or address',
};
