import { closeSync, existsSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import type { Logger } from './logger';
import { type BlockworkConfig, readConfigFile } from './config/config-file';
import type { Subsystem } from './subsystem';

/** Methods that only read: answering them never changes what a restart must rebuild. */
const READ_ONLY = /^(spdk_get_version|rpc_get_methods|framework_get_\w+|\w+_get_\w+|bdev_wait_for_examine|bdev_perf_\w+|bdev_reset_iostat)$/;

/**
 * The daemon's state on disk, in save_config format plus `plugins`: rewritten atomically (temp file,
 * fsync, rename) after every RPC that may change it, and loaded instead of the config at the next
 * start, so a restarted or crashed daemon comes back with the same bdevs and controllers on the
 * same socket paths.
 */
export class StateFile {
  private last = '';

  constructor(
    readonly path: string,
    private readonly plugins: readonly string[],
    private readonly subsystems: () => readonly Subsystem[],
    private readonly log: Logger,
  ) {}

  /** The saved state, if the file exists (an unreadable or invalid file is an error, never ignored). */
  static load(path: string): BlockworkConfig | null {
    return existsSync(path) ? readConfigFile(path) : null;
  }

  static changes(method: string): boolean {
    return !READ_ONLY.test(method);
  }

  /** Writes the current state if it differs from what was last written. */
  save(): void {
    const state = {
      plugins: [...this.plugins],
      subsystems: this.subsystems().map((s) => ({ subsystem: s.name, config: s.config() })),
    };
    const text = `${JSON.stringify(state, null, 2)}\n`;
    if (text === this.last) return;
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    this.last = text;
    this.log.debug({ path: this.path }, 'state saved');
  }
}
