import { packageRoot } from '@blockwork/core';

/** The exact shape of this package's addon (native/*.cc). Nothing else loads it. */
export interface VhostUserNative {
  /** Wraps a connected non-blocking socket and owns it. `errno` 0 in onClose is an orderly peer close. */
  Connection: new (
    fd: number,
    onMessage: (request: number, flags: number, payload: Buffer, fds: number[]) => void,
    onClose: (errno: number, reason: string) => void,
  ) => NativeConnection;
  /** Binds, chmods and listens; throws an Error with `errno` and `syscall`. */
  Listener: new (path: string, mode: number, onConnection: (fd: number) => void) => NativeListener;
  /** fd < 0 creates a non-blocking eventfd; otherwise wraps (and owns) the given fd. */
  EventFd: new (fd: number) => NativeEventFd;
  /** Non-blocking connect: a connected non-blocking fd, or -errno (ENOENT/ECONNREFUSED/EAGAIN...). Throws only a TypeError. */
  connectNonBlocking(path: string): number;
  mmap(fd: number, size: number, offset: number, writable: boolean): ArrayBuffer;
  munmap(buffer: ArrayBuffer): void;
  /** Whether a SIGBUS replaced this mapping with anonymous zero pages (guard.cc). */
  mappingPoisoned(buffer: ArrayBuffer): boolean;
  /** Registers the callback run on the event loop after a guarded mapping was poisoned. */
  onSigbus(cb: () => void): void;
  memfdCreate(name: string, size: number): number;
  closeFd(fd: number): void;
  fdSize(fd: number): number;
  storeRelease16(view: Uint16Array, index: number, value: number): void;
  storeFence16(view: Uint16Array, index: number, value: number): void;
  loadAcquire16(view: Uint16Array, index: number): number;
  /** Atomically sets the dirty-log bits of the 4 KiB pages of [gpa, gpa+len); returns pages past the log (skipped). */
  dirtyLogMark(log: ArrayBuffer, gpa: number, len: number): number;
}

export interface NativeConnection {
  /** Sends (or queues) a whole frame; 0, or -errno when the socket failed (nothing queued). */
  send(frame: Uint8Array, fds: number[]): number;
  close(): void;
  setRef(on: boolean): void;
}

export interface NativeListener {
  close(): void;
  setRef(on: boolean): void;
}

export interface NativeEventFd {
  readonly fd: number;
  watch(cb: () => void): void;
  unwatch(): void;
  /** 0 or -errno. */
  signal(): number;
  close(): void;
  setRef(on: boolean): void;
}

/** A failed system call as the addon reports it. */
export interface SyscallError extends Error {
  errno: number;
  syscall: string;
}

export function isSyscallError(e: unknown): e is SyscallError {
  return e instanceof Error && typeof (e as SyscallError).errno === 'number' && typeof (e as SyscallError).syscall === 'string';
}

let cached: VhostUserNative | null = null;

export function vhostUserNative(): VhostUserNative {
  if (cached === null) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const load = require('node-gyp-build') as (dir: string) => unknown;
    cached = load(packageRoot(__dirname)) as VhostUserNative;
  }
  return cached;
}
