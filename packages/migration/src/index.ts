/**
 * @blockwork/migration — online migration of a bdev's data to another bdev while it is in use. A
 * filter on the source marks every write, unmap and write_zeroes in a dirty bitmap held in a shared
 * file mapping (one bit per granule, atomic across processes) before the write reaches the driver;
 * a mirror job copies the dirty granules to the target (bulk pass, dirty passes, final pass with
 * writes held). The bitmap is the job's whole state, so a job resumes after a crash without
 * recopying clean data. See docs/migration.md.
 *
 * @example
 * // config: { "plugins": ["@blockwork/bdev-aio", "@blockwork/migration"], "subsystems": [ ...bdevs...,
 * //   { "subsystem": "migration", "config": [ { "method": "migration_start",
 * //     "params": { "name": "m0", "source_bdev": "aio0", "target_bdev": "aio1" } } ] } ] }
 * // then: blockwork migrate -r /var/tmp/blockwork.sock --name m0 --source aio0 --target aio1 --complete
 */
import { type BlockworkPlugin, Lifecycle, Tokens } from '@blockwork/core';
import { MigrationSubsystem } from './migration-subsystem';

export const plugin: BlockworkPlugin = {
  name: '@blockwork/migration',
  core: '^0.1.0',
  register(c) {
    c.register(Tokens.Subsystem, { useClass: MigrationSubsystem }, { lifecycle: Lifecycle.ContainerScoped });
  },
};

export default plugin;

export { MigrationSubsystem } from './migration-subsystem';
export { MirrorJob, type MigrationPhase, type MigrationStatus, type MirrorJobOptions, DEFAULT_GRANULE_BYTES } from './mirror-job';
export { DirtyBitmap, type BitmapGeometry } from './dirty-bitmap';
export { WriteTracker, type TrackerMode } from './write-tracker';
export type { BitmapHeader, BitmapIdentity, JobState } from './bitmap-header';
export type { MigrationStartParams } from './rpc';
export { MIGRATION_ERRORS, type MigrationErrorCode } from './errors';
