import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The exact shape of core's addon (native/*.cc). Nothing else in core sees the raw binding. */
export interface CoreNative {
  /** Zero-filled Buffer of `size` bytes whose address is a multiple of `alignment` (power of two). */
  allocAligned(size: number, alignment: number): Buffer;
  /** Largest power of two (≤ 1 MiB) that divides the view's address. */
  addressAlignment(view: Uint8Array): number;
  /** flock(LOCK_EX|LOCK_NB) on `path` (created 0600): the fd, or the failing errno and syscall. */
  lockFile(path: string): number | { errno: number; syscall: string };
  unlockFile(fd: number): void;
}

/** Walks up from this file to the package root (the folder with binding.gyp), from src/ or dist/src/. */
export function packageRoot(from: string): string {
  let dir = from;
  while (!existsSync(join(dir, 'binding.gyp'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`binding.gyp not found above ${from}`);
    dir = up;
  }
  return dir;
}

/**
 * Loads the addon of the package containing `fromDir` (pass `__dirname`): the folder with
 * binding.gyp is found from src/ (tests) and dist/src/ alike. Each package's src/native.ts calls
 * this once and casts the result to its addon's declared shape.
 */
export function loadAddon(fromDir: string): unknown {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const load = require('node-gyp-build') as (dir: string) => unknown;
  return load(packageRoot(fromDir));
}

let cached: CoreNative | null = null;

export function coreNative(): CoreNative {
  cached ??= loadAddon(__dirname) as CoreNative;
  return cached;
}
