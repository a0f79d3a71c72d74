/**
 * Token bucket on bytes: `rate` bytes per second, bursts up to `burst` bytes. `take(n)` spends n
 * bytes when available and returns 0, else returns the milliseconds to wait before trying again.
 * A request larger than the burst is allowed once the bucket is full (it then runs into debt).
 */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  take(n: number): number {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
    if (this.tokens >= Math.min(n, this.burst)) {
      this.tokens -= n;
      return 0;
    }
    return Math.max(1, Math.ceil(((Math.min(n, this.burst) - this.tokens) * 1000) / this.rate));
  }
}
