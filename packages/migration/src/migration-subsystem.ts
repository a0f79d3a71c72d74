import { join } from 'node:path';
import { type BdevLayer, type ConfigEntry, type DaemonOptions, inject, injectable, type Logger, type RpcMethod, type Subsystem, Tokens } from '@blockwork/core';
import { migrationError } from './errors';
import { type MigrationStatus, MirrorJob } from './mirror-job';
import { type MigrationStartParams, migrationRpcMethods } from './rpc';

/**
 * The "migration" subsystem: owns the mirror jobs, their RPC methods, and their part of save_config
 * (a migration_start per job still tracking writes, with its bitmap_path, so a daemon restarted from
 * a saved config resumes them from their bitmaps).
 */
@injectable()
export class MigrationSubsystem implements Subsystem {
  readonly name = 'migration';
  readonly dependsOn: readonly string[] = ['bdev'];
  private readonly jobs = new Map<string, { job: MirrorJob; params: MigrationStartParams }>();

  constructor(
    @inject(Tokens.BdevLayer) private readonly layer: BdevLayer,
    @inject(Tokens.Logger) private readonly log: Logger,
    @inject(Tokens.DaemonOptions) private readonly options: DaemonOptions,
  ) {}

  rpcMethods(): RpcMethod[] {
    return migrationRpcMethods(this);
  }

  /** Starts or resumes a job; synchronous, so tracking is in place when the RPC returns. */
  start(p: MigrationStartParams): string {
    if (this.jobs.has(p.name)) throw migrationError('MIGRATION_EXISTS', `migration '${p.name}' already exists`);
    const g = p.granularity_kib;
    if (g !== undefined && (g & (g - 1)) !== 0) throw migrationError('MIGRATION_INVALID_PARAM', `granularity_kib ${g} is not a power of two`);
    const bitmapPath = p.bitmap_path ?? join(this.options.runDir ?? '/var/tmp/blockwork', `migration-${p.name}.bitmap`);
    for (const { job } of this.jobs.values()) {
      if (job.opts.bitmapPath === bitmapPath) throw migrationError('MIGRATION_BITMAP_BUSY', `bitmap file ${bitmapPath} is used by migration '${job.opts.name}'`);
    }
    const job = new MirrorJob(this.layer, {
      name: p.name, sourceBdev: p.source_bdev, targetBdev: p.target_bdev, granuleBytes: (g ?? 0) * 1024,
      rateLimit: (p.rate_limit_mib_per_s ?? 0) * 2 ** 20, bitmapPath,
    }, this.log);
    this.jobs.set(p.name, { job, params: { ...p, bitmap_path: bitmapPath } });
    this.log.info({ job: p.name, source: p.source_bdev, target: p.target_bdev, bitmap: bitmapPath, resumed: job.resumed }, 'migration started');
    return p.name;
  }

  job(name: string): MirrorJob {
    const e = this.jobs.get(name);
    if (!e) throw migrationError('MIGRATION_NOT_FOUND', `no migration named '${name}'`);
    return e.job;
  }

  status(name?: string): MigrationStatus[] {
    if (name !== undefined) return [this.job(name).status()];
    return [...this.jobs.values()].map((e) => e.job.status());
  }

  /** Cancels (or detaches a completed or failed job) and forgets it. */
  async cancel(name: string): Promise<void> {
    const job = this.job(name);
    await job.cancel();
    this.jobs.delete(name);
  }

  config(): ConfigEntry[] {
    return [...this.jobs.values()].filter((e) => e.job.active).map((e) => {
      const params: Record<string, unknown> = { ...e.params, granularity_kib: e.job.status().granularity_kib };
      return { method: 'migration_start', params };
    });
  }

  /** Stops copying and syncs the bitmaps; tracking stays until the bdevs go, so a restart resumes. */
  async fini(): Promise<void> {
    for (const { job } of this.jobs.values()) {
      try {
        await job.shutdown();
      } catch (e) {
        this.log.error({ err: e, job: job.opts.name }, 'migration shutdown failed');
      }
    }
    this.jobs.clear();
  }
}
