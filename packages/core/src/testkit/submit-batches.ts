import { type BdevChannel, type BdevIo, IoType } from '../bdev/types';

/** A kernel-I/O channel (aio, uring) that counts its submission calls and completion batches. */
export interface CountingChannel extends BdevChannel {
  readonly submitCalls: number;
  readonly completionBatches: number;
}

export interface ConvoyResult {
  /** Blocks that came back with an error or other bytes than `data` holds. */
  bad: number;
  /** Submission calls for the first 32 reads, queued together. */
  round1: number;
  /** Submission calls for the 32 reads resubmitted from the first reads' completions. */
  round2: number;
  /** Completion batches the first 32 reads came back in. */
  batchesRound1: number;
}

/**
 * The QD32 convoy of docs/bdev-uring.md "Submission batches": 32 one-block (4 KiB) reads submitted
 * together, each completion resubmitting a read of the block 32 further on. `open` makes the channel
 * over a file holding `data` (64 blocks), with BLOCKWORK_IO_SUBMIT_BATCH set to `batch` while it runs.
 */
export async function runConvoy(open: () => CountingChannel, data: Buffer, batch: string): Promise<ConvoyResult> {
  const saved = process.env.BLOCKWORK_IO_SUBMIT_BATCH;
  process.env.BLOCKWORK_IO_SUBMIT_BATCH = batch;
  let ch: CountingChannel;
  try {
    ch = open();
  } finally {
    if (saved === undefined) delete process.env.BLOCKWORK_IO_SUBMIT_BATCH;
    else process.env.BLOCKWORK_IO_SUBMIT_BATCH = saved;
  }
  const read = (block: number): BdevIo => ({ type: IoType.READ, offsetBlocks: block, numBlocks: 1, iovs: [Buffer.alloc(4096)], driverCtx: undefined });
  const r: ConvoyResult = { bad: 0, round1: 0, round2: 0, batchesRound1: 0 };
  await new Promise<void>((resolve) => {
    let left = 64;
    const done = (io: BdevIo, status: number): void => {
      const want = data.subarray(io.offsetBlocks * 4096, (io.offsetBlocks + 1) * 4096);
      if (status !== 0 || !Buffer.from(io.iovs[0]).equals(want)) r.bad++;
      if (io.offsetBlocks < 32) {
        if (r.batchesRound1 === 0) r.round1 = ch.submitCalls;
        r.batchesRound1 = ch.completionBatches;
        ch.submit(read(io.offsetBlocks + 32), done);
      }
      if (--left === 0) resolve();
    };
    for (let i = 0; i < 32; i++) ch.submit(read(i), done);
  });
  await ch.close();
  r.round2 = ch.submitCalls - r.round1;
  return r;
}

/** The assertions checkSubmitBatches needs (a tap Test has them). */
export interface Asserts {
  equal(found: unknown, wanted: unknown, message: string): unknown;
  ok(value: unknown, message: string): unknown;
}

/**
 * Runs the convoy with no limit, 8 and 3 I/Os per call and checks the calls each round took
 * (1, 4 and 11 for 32 I/Os) and every block's bytes.
 */
export async function checkSubmitBatches(t: Asserts, open: () => CountingChannel, data: Buffer): Promise<void> {
  for (const [batch, calls] of [['0', 1], ['8', 4], ['3', 11]] as const) {
    const r = await runConvoy(open, data, batch);
    t.equal(r.bad, 0, `batch ${batch}: every read returned its block`);
    t.equal(r.round1, calls, `batch ${batch}: 32 I/Os queued together took ${calls} submission call(s)`);
    // Resubmissions of one completion batch are queued together; a batch split by timing adds calls.
    if (r.batchesRound1 === 1) t.equal(r.round2, calls, `batch ${batch}: 32 resubmissions from one completion batch took ${calls}`);
    else t.ok(r.round2 >= calls, `batch ${batch}: resubmissions from ${r.batchesRound1} completion batches took ${r.round2} calls`);
  }
}
