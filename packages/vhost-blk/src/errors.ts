import { BlockworkError, Errno, strerror } from '@blockwork/core';

/**
 * This package's error catalogue. Codes are stable: never renamed, never reused. docs/vhost-blk.md
 * lists them all.
 *
 * SPDK answers vhost_* RPC failures with code -32602 and strerror(errno) as the message ("No such
 * device", "Operation not permitted", "File exists"). To stay wire-compatible these errors carry
 * `rpcCode` -32602 (the JSON-RPC server honours an error's rpcCode before its errno) and SPDK's text
 * as `message` when `spdkText` is set; the sentence naming the object is in `detail` and in `data`.
 */
export const VHOST_BLK_ERRORS = {
  VHOST_CONTROLLER_EXISTS: { errno: Errno.EEXIST, text: 'a vhost controller with this name already exists', spdkText: true },
  VHOST_CONTROLLER_NOT_FOUND: { errno: Errno.ENODEV, text: 'no vhost controller with this name', spdkText: true },
  VHOST_CONTROLLER_NAME: { errno: Errno.EINVAL, text: 'the controller name is not a valid socket file name', spdkText: true },
  VHOST_BDEV_NOT_FOUND: { errno: Errno.ENODEV, text: 'the bdev to export does not exist', spdkText: true },
  VHOST_BDEV_CLAIMED: { errno: Errno.EPERM, text: 'the bdev is claimed by another module', spdkText: true },
  VHOST_TRANSPORT: { errno: Errno.EINVAL, text: 'the transport is not vhost_user_blk', spdkText: true },
  VHOST_PACKED_RING: { errno: Errno.ENOTSUP, text: 'packed ring is not supported yet', spdkText: false },
  VHOST_SOCKET: { errno: Errno.EIO, text: 'the controller socket could not be created', spdkText: false },
  VHOST_COALESCING: { errno: Errno.EINVAL, text: 'invalid coalescing parameters', spdkText: true },
} as const;

export type VhostBlkErrorCode = keyof typeof VHOST_BLK_ERRORS;

/** JSON-RPC code SPDK's vhost RPCs use for every failure. */
export const SPDK_VHOST_RPC_CODE = -32602;

/** A vhost-blk control-plane error (see the catalogue comment for its wire form). */
export class VhostBlkError extends BlockworkError {
  readonly rpcCode: number;
  readonly data: { code: string; detail: string };

  constructor(code: VhostBlkErrorCode, readonly detail: string, opts: { errno?: number; cause?: unknown; rpcCode?: number } = {}) {
    const entry = VHOST_BLK_ERRORS[code];
    const errno = opts.errno ?? entry.errno;
    super(code, errno, entry.spdkText ? strerror(errno) : detail, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.rpcCode = opts.rpcCode ?? SPDK_VHOST_RPC_CODE;
    this.data = { code, detail };
  }
}

/** Creates a catalogue error; `detail` names the object (controller, bdev, socket path). */
export function vhostBlkError(code: VhostBlkErrorCode, detail: string, opts: { errno?: number; cause?: unknown; rpcCode?: number } = {}): VhostBlkError {
  return new VhostBlkError(code, detail, opts);
}
