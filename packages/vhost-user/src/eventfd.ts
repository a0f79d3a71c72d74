import { closeSync, readlinkSync } from 'node:fs';
import { vhostUserError } from './errors';
import { isSyscallError, type NativeEventFd, vhostUserNative } from './native';

/**
 * An eventfd for kick/call/err notifications. `watch` runs the callback once per wakeup of Node's
 * loop however many signals arrived (the counter is read and cleared in native first), so a burst
 * of completions costs one callback. A watched eventfd does not keep the process alive unless
 * `setRef(true)` (set it while work is outstanding).
 */
export class EventFd {
  private readonly n: NativeEventFd;
  private closed = false;

  /** Wraps a received fd (and owns it from now on), or creates a new non-blocking eventfd. */
  constructor(fd?: number) {
    if (fd !== undefined) requireEventFd(fd);
    try {
      this.n = new (vhostUserNative().EventFd)(fd ?? -1);
    } catch (e) {
      throw vhostUserError('VHOST_USER_SYSCALL', `eventfd: ${(e as Error).message}`, { errno: isSyscallError(e) ? e.errno : undefined, cause: e });
    }
  }

  /** The fd number (-1 after close); pass it to a peer with a vhost-user message. */
  get fd(): number {
    return this.n.fd;
  }

  /** Starts (or re-targets) the uv_poll on readability. `cb` runs on Node's loop, after the counter was cleared. */
  watch(cb: () => void): void {
    this.n.watch(cb);
  }

  /** Stops watching; the fd stays open. */
  unwatch(): void {
    this.n.unwatch();
  }

  /** Adds 1 to the counter with one write(2). Throws VHOST_USER_CLOSED after close. */
  signal(): void {
    const rc = this.n.signal();
    // EAGAIN means the counter is at its maximum: the reader is woken anyway, nothing is lost.
    if (rc < 0 && rc !== -11) {
      throw vhostUserError(this.closed ? 'VHOST_USER_CLOSED' : 'VHOST_USER_SYSCALL', `eventfd write failed (errno ${-rc})`, { errno: -rc });
    }
  }

  /** Whether a watched eventfd keeps the process alive (default false). */
  setRef(on: boolean): void {
    this.n.setRef(on);
  }

  /** Stops watching and closes the fd. Idempotent. */
  close(): void {
    this.closed = true;
    this.n.close();
  }
}

/**
 * A peer may send any fd as a kick or call fd. A pipe or socket whose other end is closed stays
 * readable forever and would spin the event loop, so anything but an eventfd is refused (and closed:
 * the caller handed it over).
 */
function requireEventFd(fd: number): void {
  let kind: string;
  try {
    kind = readlinkSync(`/proc/self/fd/${fd}`);
  } catch (e) {
    throw vhostUserError('VHOST_USER_NOT_EVENTFD', `fd ${fd} cannot be inspected: ${(e as Error).message}`, { cause: e });
  }
  if (kind !== 'anon_inode:[eventfd]') {
    closeSync(fd);
    throw vhostUserError('VHOST_USER_NOT_EVENTFD', `fd ${fd} is ${kind}, not an eventfd`);
  }
}
