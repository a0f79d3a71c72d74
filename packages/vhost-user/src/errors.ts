import { Errno, errorFactory } from '@blockwork/core';

/**
 * This package's error catalogue. Codes are stable: never renamed, never reused. `errno` is the
 * default; an error built from a failed system call carries that call's errno. docs/vhost-user.md
 * lists them all.
 */
export const VHOST_USER_ERRORS = {
  VHOST_USER_SOCKET_PATH: { errno: Errno.ENAMETOOLONG, text: 'the socket path does not fit in sockaddr_un (107 bytes)' },
  VHOST_USER_SOCKET_IN_USE: { errno: Errno.EADDRINUSE, text: 'a file already exists at the listen path' },
  VHOST_USER_LISTEN_FAILED: { errno: Errno.EIO, text: 'the listening socket could not be created' },
  VHOST_USER_CONNECT_FAILED: { errno: Errno.ECONNREFUSED, text: 'connecting to the vhost-user socket failed' },
  VHOST_USER_CLOSED: { errno: Errno.EPIPE, text: 'the connection is closed' },
  VHOST_USER_FRAMING: { errno: Errno.EPROTO, text: 'the peer broke message framing (oversized, truncated, too many fds) or the socket failed' },
  VHOST_USER_PAYLOAD: { errno: Errno.EINVAL, text: 'a message payload has the wrong size or an invalid field' },
  VHOST_USER_MMAP_RANGE: { errno: Errno.EINVAL, text: 'a mapping would extend past the end of its fd' },
  VHOST_USER_NOT_EVENTFD: { errno: Errno.EINVAL, text: 'a kick, call or err fd from the peer is not an eventfd' },
  VHOST_USER_SYSCALL: { errno: Errno.EIO, text: 'a system call failed (errno and syscall attached)' },
} as const;

export type VhostUserErrorCode = keyof typeof VHOST_USER_ERRORS;

/** Creates a catalogue error; `errno` overrides the default (e.g. the errno of a failed connect). */
export const vhostUserError = errorFactory(VHOST_USER_ERRORS);
