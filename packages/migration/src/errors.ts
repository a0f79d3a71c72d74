import { Errno, errorFactory } from '@blockwork/core';

/**
 * This package's error catalogue, extending core's. Codes are stable: never renamed, never reused.
 * docs/migration.md lists them all.
 */
export const MIGRATION_ERRORS = {
  MIGRATION_EXISTS: { errno: Errno.EEXIST, text: 'a migration job with this name already exists' },
  MIGRATION_NOT_FOUND: { errno: Errno.ENOENT, text: 'no migration job with this name' },
  MIGRATION_INVALID_PARAM: { errno: Errno.EINVAL, text: 'invalid migration parameter (granularity, same source and target, name too long)' },
  MIGRATION_TARGET_TOO_SMALL: { errno: Errno.ENOSPC, text: 'the target bdev is smaller than the source bdev' },
  MIGRATION_BITMAP_CORRUPT: { errno: Errno.EINVAL, text: 'the bitmap file is not a valid dirty bitmap (magic, version, checksum or size)' },
  MIGRATION_BITMAP_MISMATCH: { errno: Errno.EINVAL, text: 'the bitmap file belongs to another migration (bdev, uuid, size or granularity differ)' },
  MIGRATION_BITMAP_BUSY: { errno: Errno.EBUSY, text: 'the bitmap file is used by another job or process' },
  MIGRATION_BITMAP_IO: { errno: Errno.EIO, text: 'the bitmap file could not be created, opened, mapped or synced' },
  MIGRATION_WRONG_PHASE: { errno: Errno.EPERM, text: 'the job is in a phase that does not allow this request' },
  MIGRATION_FAILED: { errno: Errno.EIO, text: 'the migration job failed (copy I/O error or a bdev was removed)' },
} as const;

export type MigrationErrorCode = keyof typeof MIGRATION_ERRORS;

/** Creates a catalogue error; `errno` overrides the default (e.g. a syscall's errno for MIGRATION_BITMAP_IO). */
export const migrationError = errorFactory(MIGRATION_ERRORS);
