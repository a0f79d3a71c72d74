import type { BdevIo, DriverDone } from './types';

/**
 * Completes I/Os of a synchronous driver (malloc, null) in one batch on the next check phase.
 * setImmediate, not a microtask: a caller that resubmits from its completion callback must still
 * let timers and sockets run between batches.
 */
export class CompletionBatch {
  private ios: BdevIo[] = [];
  private dones: DriverDone[] = [];
  private statuses: number[] = [];
  private scheduled = false;
  private readonly run = () => this.flush();

  add(io: BdevIo, done: DriverDone, status: number): void {
    this.ios.push(io);
    this.dones.push(done);
    this.statuses.push(status);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }

  get pending(): number {
    return this.ios.length;
  }

  private flush(): void {
    this.scheduled = false;
    const ios = this.ios;
    const dones = this.dones;
    const statuses = this.statuses;
    this.ios = [];
    this.dones = [];
    this.statuses = [];
    for (let i = 0; i < ios.length; i++) dones[i](ios[i], statuses[i]);
  }
}
