import { Errno, strerror } from './errno';

/**
 * Catalogue of control-plane errors. Codes are stable: never renamed, never reused. Each maps to an
 * errno that the JSON-RPC server returns negated, as SPDK does. docs/errors.md lists them all and a
 * test keeps the page and this table in step.
 */
export const CORE_ERRORS = {
  BDEV_EXISTS: { errno: Errno.EEXIST, text: 'a bdev with this name or alias already exists' },
  BDEV_NOT_FOUND: { errno: Errno.ENODEV, text: 'no bdev with this name' },
  BDEV_CLAIMED: { errno: Errno.EPERM, text: 'the bdev is claimed by another module' },
  BDEV_INVALID: { errno: Errno.EINVAL, text: 'invalid bdev geometry or parameter' },
  BDEV_IO_INVALID: { errno: Errno.EINVAL, text: 'invalid I/O request' },
  BDEV_IO_FAILED: { errno: Errno.EIO, text: 'an I/O failed' },
  BDEV_REMOVED: { errno: Errno.ENODEV, text: 'the bdev was removed' },
  BDEV_READONLY: { errno: Errno.EROFS, text: 'the descriptor was opened read-only' },
  BDEV_IN_USE: { errno: Errno.EBUSY, text: 'the bdev is open or claimed' },
  CONFIG_PARSE: { errno: Errno.EINVAL, text: 'the config file is not valid JSON' },
  CONFIG_INVALID: { errno: Errno.EINVAL, text: 'the config file has an invalid entry' },
  CONFIG_METHOD_UNKNOWN: { errno: Errno.EINVAL, text: 'the config names a method no loaded plugin provides' },
  CONFIG_PLUGIN_MISSING: { errno: Errno.ENOENT, text: 'the config needs a plugin that is not loaded' },
  PLUGIN_NOT_FOUND: { errno: Errno.ENOENT, text: 'a plugin package could not be resolved' },
  PLUGIN_INVALID: { errno: Errno.EINVAL, text: 'a plugin package does not export a valid plugin' },
  PLUGIN_DUPLICATE: { errno: Errno.EEXIST, text: 'a plugin with this name is already loaded' },
  PLUGIN_DEPENDENCY: { errno: Errno.ENOENT, text: 'a plugin needs another plugin that is not loaded' },
  PLUGIN_VERSION: { errno: Errno.EINVAL, text: 'a plugin does not support this core version' },
  RPC_METHOD_EXISTS: { errno: Errno.EEXIST, text: 'two providers declare the same RPC method' },
  RPC_SOCKET_IN_USE: { errno: Errno.EADDRINUSE, text: 'another daemon holds the RPC socket' },
  RPC_SOCKET_PATH: { errno: Errno.ENAMETOOLONG, text: 'the RPC socket path is too long for a Unix socket' },
  RPC_TIMEOUT: { errno: Errno.ETIMEDOUT, text: 'the request timed out' },
  RPC_WRONG_STATE: { errno: Errno.EPERM, text: 'the method is not allowed in the current state' },
  MEMORY_ALIGNMENT: { errno: Errno.EINVAL, text: 'invalid size or alignment for an I/O buffer' },
} as const;

export type CoreErrorCode = keyof typeof CORE_ERRORS;

/**
 * A control-plane error: stable upper-snake `code`, a message naming the object, and the errno it
 * maps to. Match by `code` (or `isBlockworkError`), never `instanceof`: a plugin may load its own
 * copy of core.
 */
export class BlockworkError extends Error {
  readonly code: string;
  readonly errno: number;

  constructor(code: string, errno: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BlockworkError';
    this.code = code;
    this.errno = errno;
  }
}

/** Creates a core error by code; the message should name the object (bdev, file, plugin, method). */
export function coreError(code: CoreErrorCode, message: string, cause?: unknown): BlockworkError {
  return new BlockworkError(code, CORE_ERRORS[code].errno, message, cause === undefined ? undefined : { cause });
}

/** True for any object carrying a Blockwork error code and errno, whichever copy of core made it. */
export function isBlockworkError(e: unknown): e is BlockworkError {
  return e instanceof Error && typeof (e as BlockworkError).code === 'string' && typeof (e as BlockworkError).errno === 'number';
}

/** Message for a failed I/O status (negative errno). */
export function ioStatusText(status: number): string {
  return `${strerror(-status)} (errno ${-status})`;
}

/**
 * The factory for a package's own catalogue (`AIO_ERRORS`, ...), so each package declares codes and
 * gets `xxxError(code, message, { errno?, cause? })`; `errno` overrides the default (EROFS vs EACCES).
 */
export function errorFactory<C extends Record<string, { errno: number; text: string }>>(catalogue: C) {
  return (code: keyof C & string, message: string, opts: { errno?: number; cause?: unknown } = {}): BlockworkError =>
    new BlockworkError(code, opts.errno ?? catalogue[code].errno, message, opts.cause === undefined ? undefined : { cause: opts.cause });
}
