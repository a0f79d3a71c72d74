import { Errno, errorFactory } from '@blockwork/core';

/**
 * This package's error catalogue, extending core's. Codes are stable: never renamed, never reused.
 * docs/nbd.md lists them all.
 */
export const NBD_ERRORS = {
  NBD_SERVER_RUNNING: { errno: Errno.EEXIST, text: 'the NBD server is already listening' },
  NBD_SERVER_NOT_RUNNING: { errno: Errno.ENOENT, text: 'the NBD server is not listening' },
  NBD_LISTEN_FAILED: { errno: Errno.EADDRINUSE, text: 'the NBD server could not listen on the address or socket' },
  NBD_EXPORT_EXISTS: { errno: Errno.EEXIST, text: 'an export with this name already exists' },
  NBD_EXPORT_NOT_FOUND: { errno: Errno.ENOENT, text: 'no export with this name' },
  NBD_EXPORT_NAME: { errno: Errno.EINVAL, text: 'the export name is not allowed by the protocol (over 4096 bytes, or contains NUL)' },
  NBD_ADDRESS: { errno: Errno.EINVAL, text: 'give either address/port (TCP) or socket (Unix), not both' },
  NBD_CONNECT_FAILED: { errno: Errno.ECONNREFUSED, text: 'the NBD server could not be reached' },
  NBD_HANDSHAKE: { errno: Errno.EPROTO, text: 'the NBD negotiation failed (not fixed newstyle, bad magic, unexpected reply)' },
  NBD_EXPORT_REFUSED: { errno: Errno.ENOENT, text: 'the NBD server refused the export (unknown name, policy)' },
  NBD_GEOMETRY: { errno: Errno.EINVAL, text: 'the export size or block size cannot make a bdev' },
  NBD_NOT_NBD_BDEV: { errno: Errno.ENODEV, text: 'the named bdev is not an NBD client bdev' },
} as const;

export type NbdErrorCode = keyof typeof NBD_ERRORS;

/** Creates a catalogue error; `errno` overrides the default (e.g. the connect error's own errno). */
export const nbdError = errorFactory(NBD_ERRORS);
