import type { RpcMethod } from '@blockwork/core';
import type { MigrationSubsystem } from './migration-subsystem';

/** Params of migration_start. */
export interface MigrationStartParams {
  name: string;
  source_bdev: string;
  target_bdev: string;
  granularity_kib?: number;
  rate_limit_mib_per_s?: number;
  bitmap_path?: string;
}

const NAME = { type: 'string', minLength: 1, pattern: '^[A-Za-z0-9_.:-]+$', description: 'Name of the migration job.' } as const;

/** The migration subsystem's JSON-RPC methods (SPDK naming style; SPDK has no equivalent). */
export function migrationRpcMethods(s: MigrationSubsystem): RpcMethod[] {
  const start: RpcMethod<MigrationStartParams> = {
    name: 'migration_start',
    description: 'Start (or resume from its bitmap) a mirror of a source bdev to a target bdev; every write to the source is tracked from the moment this returns. Returns the job name.',
    params: {
      properties: {
        name: NAME,
        source_bdev: { type: 'string', minLength: 1, description: 'Bdev to copy from; opened read-only and not claimed (its current users keep writing).' },
        target_bdev: { type: 'string', minLength: 1, description: 'Bdev to copy to, at least as large as the source; opened for writing and claimed (exclusive_write) by the job.' },
        granularity_kib: { type: 'integer', minimum: 4, maximum: 65536, description: 'Bytes per bitmap bit, in KiB: a power of two and a multiple of both block sizes (default 64, or the resumed bitmap\'s).' },
        rate_limit_mib_per_s: { type: 'number', minimum: 0, description: 'Copy rate limit in MiB/s for the bulk and dirty passes (0 or absent: unlimited; the final pass is never limited).' },
        bitmap_path: { type: 'string', minLength: 1, description: 'Dirty bitmap file (shared mapping); an existing one is validated and resumed (default <run dir>/migration-<name>.bitmap).' },
      },
      required: ['name', 'source_bdev', 'target_bdev'],
    },
    handler: (p) => s.start(p),
  };
  const status: RpcMethod<{ name?: string }> = {
    name: 'migration_get_status',
    description: 'Phase and progress of one migration job, or of all: bytes copied, dirty and total granules, rate, ETA.',
    params: { properties: { name: { ...NAME, description: 'Job to report (all jobs when omitted).' } } },
    handler: (p) => s.status(p.name),
  };
  const complete: RpcMethod<{ name: string }> = {
    name: 'migration_complete',
    description: 'Final pass: hold writes to the source, copy what is dirty, flush the target, release the writes (then mirrored to both); returns true when the target equals the source.',
    params: { properties: { name: { ...NAME, description: 'Job to complete.' } }, required: ['name'] },
    handler: async (p) => {
      await s.job(p.name).complete();
      return true;
    },
  };
  const cancel: RpcMethod<{ name: string }> = {
    name: 'migration_cancel',
    description: 'Stop a migration job: remove its write tracking, release the target and delete its bitmap file; also detaches a completed or failed job.',
    params: { properties: { name: { ...NAME, description: 'Job to cancel.' } }, required: ['name'] },
    handler: async (p) => {
      await s.cancel(p.name);
      return true;
    },
  };
  return [start, status, complete, cancel];
}
