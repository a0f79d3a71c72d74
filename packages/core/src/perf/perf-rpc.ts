import { inject, injectable } from 'tsyringe';
import type { BdevLayer } from '../bdev/bdev-layer';
import { coreError } from '../errors';
import type { RpcMethod, RpcMethodProvider } from '../rpc/types';
import { Tokens } from '../tokens';
import { PERF_WORKLOADS, PerfJob, type PerfResult, type PerfWorkload } from './perf-job';

interface JobState {
  job: PerfJob;
  result?: PerfResult;
  error?: string;
}

/**
 * bdevperf inside a running daemon: `blockwork perf --rpc-socket` starts a job here, so it measures
 * that daemon's bdevs and stacks as they are, then polls for progress and the summary.
 */
@injectable()
export class PerfRpc implements RpcMethodProvider {
  private readonly jobs = new Map<number, JobState>();
  private nextId = 1;

  constructor(@inject(Tokens.BdevLayer) private readonly layer: BdevLayer) {}

  rpcMethods(): RpcMethod[] {
    return [
      {
        name: 'bdev_perf_start',
        description: 'Start a bdevperf-style workload on a bdev of this daemon; returns a job id for bdev_perf_get_status',
        params: {
          properties: {
            bdev: { type: 'string', description: 'Bdev name' },
            queue_depth: { type: 'integer', minimum: 1, maximum: 4096, description: 'I/Os kept in flight (default 32)' },
            io_size: { type: 'integer', minimum: 512, description: 'I/O size in bytes (default 4096)' },
            rw: { type: 'string', enum: PERF_WORKLOADS, description: 'Workload (default randread)' },
            rwmixread: { type: 'integer', minimum: 0, maximum: 100, description: 'Read percentage for randrw (default 50)' },
            time_in_sec: { type: 'number', minimum: 0.1, maximum: 86400, description: 'Run time in seconds (default 10)' },
          },
          required: ['bdev'],
        },
        handler: (p: { bdev: string; queue_depth?: number; io_size?: number; rw?: PerfWorkload; rwmixread?: number; time_in_sec?: number }) => {
          this.layer.require(p.bdev);
          const id = this.nextId++;
          const job = new PerfJob(this.layer, {
            bdev: p.bdev, queueDepth: p.queue_depth ?? 32, ioSize: p.io_size ?? 4096, workload: p.rw ?? 'randread',
            rwMixRead: p.rwmixread, timeSec: p.time_in_sec ?? 10,
          });
          const state: JobState = { job };
          this.jobs.set(id, state);
          job.run().then((r) => { state.result = r; }, (e: Error) => { state.error = e.message; });
          return id;
        },
      },
      {
        name: 'bdev_perf_get_status',
        description: 'Progress of a bdev_perf_start job, and its summary once done (the job is forgotten after its summary is read)',
        params: { properties: { id: { type: 'integer', minimum: 1, description: 'Job id from bdev_perf_start' } }, required: ['id'] },
        handler: (p: { id: number }) => {
          const s = this.jobs.get(p.id);
          if (!s) throw coreError('BDEV_NOT_FOUND', `no perf job ${p.id}`);
          if (s.error !== undefined) {
            this.jobs.delete(p.id);
            throw coreError('BDEV_IO_FAILED', `perf job ${p.id} failed: ${s.error}`);
          }
          if (s.result) {
            this.jobs.delete(p.id);
            return { done: true, result: s.result };
          }
          return { done: false, progress: s.job.progress() };
        },
      },
    ];
  }
}
