/**
 * Tuning knobs shared by the kernel-I/O channels (aio, uring), read from the environment when a
 * channel is created (docs/bdev-aio.md "Completion polling" and "Submission batches").
 */
export interface IoTuning {
  /** Longest busy-wait for a completion in µs (BLOCKWORK_IO_SPIN_US, default 50; 0 = never spin). */
  spinUs: number;
  /** Spin only while 1..spinQd I/Os are in flight (BLOCKWORK_IO_SPIN_QD, default 4). */
  spinQd: number;
  /**
   * Most I/Os per submission call (BLOCKWORK_IO_SUBMIT_BATCH, default 8; 0 = no limit, given as
   * Infinity). The block layer plugs a multi-I/O call and starts the device only once the whole
   * call is prepared.
   */
  submitBatch: number;
}

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  const v = Number(raw);
  return raw !== undefined && raw !== '' && Number.isFinite(v) && v >= 0 ? v : fallback;
}

export function ioTuning(): IoTuning {
  return {
    spinUs: envNumber('BLOCKWORK_IO_SPIN_US', 50),
    spinQd: envNumber('BLOCKWORK_IO_SPIN_QD', 4),
    submitBatch: envNumber('BLOCKWORK_IO_SUBMIT_BATCH', 8) || Infinity,
  };
}
