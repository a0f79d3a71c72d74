import { Errno, errorFactory } from '@blockwork/core';

/**
 * This package's error catalogue, extending core's. Codes are stable: never renamed, never reused.
 * `errno` is the default; an error built from a failed librados/librbd call may carry that call's
 * errno instead. docs/bdev-rbd.md lists them all.
 */
export const RBD_ERRORS = {
  RBD_LIBRARY_MISSING: { errno: Errno.ENOENT, text: 'librbd/librados could not be loaded (install librbd1)' },
  RBD_CLUSTER_EXISTS: { errno: Errno.EEXIST, text: 'a cluster with this name is already registered' },
  RBD_CLUSTER_NOT_FOUND: { errno: Errno.ENOENT, text: 'no registered cluster with this name' },
  RBD_CLUSTER_IN_USE: { errno: Errno.EBUSY, text: 'rbd bdevs still use the cluster' },
  RBD_CLUSTER_UNREACHABLE: { errno: Errno.ETIMEDOUT, text: 'no monitor answered within the timeout' },
  RBD_AUTH_FAILED: { errno: Errno.EACCES, text: 'the cluster refused the user or key (cephx)' },
  RBD_CONFIG_INVALID: { errno: Errno.EINVAL, text: 'a config file or config option was refused by librados' },
  RBD_CONNECT_FAILED: { errno: Errno.EIO, text: 'connecting to the cluster failed' },
  RBD_POOL_NOT_FOUND: { errno: Errno.ENOENT, text: 'the pool does not exist' },
  RBD_IMAGE_NOT_FOUND: { errno: Errno.ENOENT, text: 'the image does not exist in the pool' },
  RBD_OPEN_FAILED: { errno: Errno.EIO, text: 'opening the pool or image failed' },
  RBD_BLOCK_SIZE: { errno: Errno.EINVAL, text: 'block_size is invalid, or the image is smaller than one block' },
  RBD_RESIZE_INVALID: { errno: Errno.EINVAL, text: 'new_size is smaller than the current size' },
  RBD_RESIZE_FAILED: { errno: Errno.EIO, text: 'rbd_resize failed' },
  RBD_NOT_RBD_BDEV: { errno: Errno.ENODEV, text: 'the named bdev is not an rbd bdev' },
} as const;

export type RbdErrorCode = keyof typeof RBD_ERRORS;

/** Creates a catalogue error; `errno` overrides the default (e.g. the failed call's). */
export const rbdError = errorFactory(RBD_ERRORS);
