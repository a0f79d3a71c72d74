/**
 * Copy rate over a sliding window of samples taken every 250 ms, and a periodic callback (the
 * bitmap's msync, once a second). The timer does not keep the process alive.
 */
export class ProgressMeter {
  private readonly samples: Array<[ms: number, bytes: number]> = [];
  private readonly timer: NodeJS.Timeout;
  private ticks = 0;

  constructor(
    private readonly bytes: () => number,
    private readonly everySecond: () => void,
    private readonly windowMs = 2000,
  ) {
    this.sample();
    this.timer = setInterval(() => this.tick(), 250);
    this.timer.unref();
  }

  private sample(): void {
    const now = performance.now();
    this.samples.push([now, this.bytes()]);
    while (this.samples.length > 2 && now - this.samples[0][0] > this.windowMs) this.samples.shift();
  }

  private tick(): void {
    this.sample();
    if (++this.ticks % 4 === 0) {
      try {
        this.everySecond();
      } catch {
        // a failed periodic msync is retried next second; state changes sync (and report) themselves
      }
    }
  }

  /** Bytes per second over the window (0 before two samples). */
  rate(): number {
    this.sample();
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    return t1 - t0 > 100 ? ((b1 - b0) * 1000) / (t1 - t0) : 0;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
