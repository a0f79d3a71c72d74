import { Errno, errorFactory } from '@blockwork/core';

/**
 * This package's error catalogue. Codes are stable: never renamed, never reused. docs/bdev-virtio.md
 * lists them all.
 */
export const VIRTIO_ERRORS = {
  VIRTIO_TRTYPE_UNSUPPORTED: { errno: Errno.ENOTSUP, text: 'only trtype "user" (vhost-user) is supported; "pci" is not' },
  VIRTIO_DEV_TYPE_UNSUPPORTED: { errno: Errno.ENOTSUP, text: 'only dev_type "blk" is supported; "scsi" is not' },
  VIRTIO_CONTROLLER_EXISTS: { errno: Errno.EEXIST, text: 'a virtio controller with this name already exists' },
  VIRTIO_CONTROLLER_NOT_FOUND: { errno: Errno.ENODEV, text: 'no virtio controller with this name' },
  VIRTIO_CONNECT_FAILED: { errno: Errno.ECONNREFUSED, text: 'the vhost-user socket could not be reached' },
  VIRTIO_NEGOTIATION_FAILED: { errno: Errno.EPROTO, text: 'the vhost-user back end refused or broke the set-up sequence' },
  VIRTIO_FEATURE_MISSING: { errno: Errno.ENOTSUP, text: 'the back end lacks a feature the front end needs (VERSION_1, CONFIG)' },
  VIRTIO_QUEUE_COUNT: { errno: Errno.EINVAL, text: 'vq_count is larger than the back end supports, or vq_size is not a power of two in 2..32768' },
  VIRTIO_DISCONNECTED: { errno: Errno.ENOTCONN, text: 'the vhost-user connection closed' },
  VIRTIO_TIMEOUT: { errno: Errno.ETIMEDOUT, text: 'the back end did not answer a vhost-user request in time' },
} as const;

export type VirtioErrorCode = keyof typeof VIRTIO_ERRORS;

export const virtioError = errorFactory(VIRTIO_ERRORS);
