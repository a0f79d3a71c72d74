import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ensureGuestImage, findExecutable, guestImagePaths, guestToolsMissing, type GuestImage } from './guest-image';
import { qemuArgs, type VhostUserBlkDisk } from './qemu-args';
import { parseSerialFrame } from './serial-frame';

/** How to boot one guest. */
export interface GuestOptions {
  /**
   * Shell script run by busybox sh in the guest, as root, cwd /, stdin /dev/null. Its stdout
   * becomes result.output; its stderr goes to the console (redirect 2>&1 to keep it).
   */
  script: string;
  /** vhost-user-blk disks, /dev/vda first. Their presence switches guest RAM to a shared memfd. */
  vhostUserBlk?: VhostUserBlkDisk[];
  /** Guest RAM in MiB. Default 1024 (the 86 MB initramfs needs ~512). */
  memMiB?: number;
  /** Guest CPUs. Default 2. */
  smp?: number;
  /** Start a QMP server on this Unix socket (server=on,wait=off). */
  qmpSocket?: string;
  /** Appended to the kernel command line. */
  kernelArgs?: string;
  /** Appended to QEMU's arguments. */
  extraArgs?: string[];
  /** Kill QEMU (SIGKILL) after this many ms; result.timedOut is then true. Default 300000. */
  timeoutMs?: number;
  /** Kernel and initrd to boot. Default: the cached image, which must exist (see ensureGuestImage). */
  image?: GuestImage;
}

/** How a guest run ended. */
export interface GuestResult {
  /** The script's exit code; null if it never finished (timeout, kill, crash, QEMU error). */
  exitCode: number | null;
  /** The script's stdout (ttyS1 between the markers), decoded as UTF-8. */
  output: string;
  /** The same bytes, exactly. */
  outputBytes: Buffer;
  /** ttyS0: kernel log, init messages and the script's stderr. */
  console: string;
  /** QEMU's own stdout and stderr (start-up errors, warnings). */
  stderr: string;
  /** From spawning QEMU to its exit, in ms. */
  durationMs: number;
  /** True when QEMU was killed by timeoutMs. */
  timedOut: boolean;
}

/** A running guest. */
export interface GuestHandle {
  /** QEMU's process id. */
  readonly pid: number;
  /** Settles once QEMU has exited and its output is collected; never rejects. */
  result: Promise<GuestResult>;
  /** SIGKILLs QEMU now (no-op once it exited); result then has exitCode null. */
  kill(): void;
  /**
   * Resolves when `text` appears on ttyS1 ('output', the default) or ttyS0 ('console').
   * Rejects when QEMU exits first or after `timeoutMs` (default: until the guest's own timeout).
   */
  waitFor(text: string, stream?: 'output' | 'console', timeoutMs?: number): Promise<void>;
}

// SIGKILLed when this process exits: a guest waiting on reconnect=1 would otherwise run on.
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => live.forEach((c) => c.kill('SIGKILL')));
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
}

const CONSOLE_FD = 3;
const OUTPUT_FD = 4;

/**
 * Boots a guest that runs `opts.script` and powers off. Returns at once; QEMU is spawned
 * asynchronously (no spawnSync: a daemon under test in this process keeps running). Throws if
 * qemu-system-x86_64 or the image is missing.
 */
export function startGuest(opts: GuestOptions): GuestHandle {
  const qemu = findExecutable('qemu-system-x86_64');
  const image = opts.image ?? guestImagePaths();
  const missing = guestToolsMissing({ storageDaemon: false });
  if (!qemu || (!opts.image && missing.length > 0)) throw new Error('cannot start guest: ' + missing.join('; '));
  for (const d of opts.vhostUserBlk ?? []) {
    // sun_path holds 107 bytes plus NUL; QEMU's own error would only reach result.stderr.
    if (Buffer.byteLength(d.socket) > 107) throw new Error(`vhost-user socket path longer than 107 bytes: ${d.socket}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'bw-guest-'));
  const scriptFile = join(dir, 'cmd.sh');
  writeFileSync(scriptFile, opts.script);
  const args = qemuArgs({ ...opts, image, scriptFile, consoleFd: CONSOLE_FD, outputFd: OUTPUT_FD });
  // setpriv's parent-death signal kills QEMU even if this process dies by SIGKILL.
  const setpriv = findExecutable('setpriv');
  const [cmd, argv] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', qemu, ...args]] : [qemu, args];
  const started = Date.now();
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'] });
  track(child);
  return new RunningGuest(child, dir, started, opts.timeoutMs ?? 300_000);
}

/** Boots a guest (building the image first if needed) and waits for it to power off. */
export async function runGuest(opts: GuestOptions): Promise<GuestResult> {
  const image = opts.image ?? (await ensureGuestImage());
  return startGuest({ ...opts, image }).result;
}

class RunningGuest implements GuestHandle {
  readonly pid: number;
  readonly result: Promise<GuestResult>;
  private readonly chunks = { console: [] as Buffer[], output: [] as Buffer[], stderr: [] as Buffer[] };
  private readonly watchers = new Set<() => void>();
  private exited = false;
  private timedOut = false;

  constructor(private readonly child: ChildProcess, dir: string, started: number, timeoutMs: number) {
    this.pid = child.pid ?? -1;
    this.collect(child.stdout, 'stderr');
    this.collect(child.stderr, 'stderr');
    this.collect(child.stdio[CONSOLE_FD] as Readable, 'console');
    this.collect(child.stdio[OUTPUT_FD] as Readable, 'output');
    const timer = setTimeout(() => {
      this.timedOut = true;
      this.kill();
    }, timeoutMs);
    this.result = new Promise((resolve) => {
      const finish = (spawnError?: Error) => {
        if (this.exited) return;
        clearTimeout(timer);
        this.exited = true;
        this.watchers.forEach((w) => w());
        rmSync(dir, { recursive: true, force: true });
        if (spawnError) this.chunks.stderr.push(Buffer.from(String(spawnError)));
        resolve(this.summarize(Date.now() - started));
      };
      child.once('close', () => finish());
      child.once('error', (err) => finish(err));
    });
  }

  kill(): void {
    if (!this.exited && this.child.exitCode === null) this.child.kill('SIGKILL');
  }

  waitFor(text: string, stream: 'output' | 'console' = 'output', timeoutMs?: number): Promise<void> {
    const needle = Buffer.from(text);
    const found = () => Buffer.concat(this.chunks[stream]).includes(needle);
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const check = () => {
        if (!found() && !this.exited) return;
        this.watchers.delete(check);
        clearTimeout(timer);
        if (found()) resolve();
        else reject(new Error(`guest exited before "${text}" appeared on ${stream}`));
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.watchers.delete(check);
          reject(new Error(`"${text}" did not appear on ${stream} within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.watchers.add(check);
      check();
    });
  }

  private collect(stream: Readable | null | undefined, into: keyof RunningGuest['chunks']): void {
    stream?.on('data', (d: Buffer) => {
      this.chunks[into].push(d);
      this.watchers.forEach((w) => w());
    });
    stream?.on('error', () => undefined);
  }

  private summarize(durationMs: number): GuestResult {
    const frame = parseSerialFrame(Buffer.concat(this.chunks.output));
    return {
      exitCode: this.timedOut ? null : frame.exitCode,
      output: frame.output.toString('utf8'),
      outputBytes: frame.output,
      console: Buffer.concat(this.chunks.console).toString('utf8'),
      stderr: Buffer.concat(this.chunks.stderr).toString('utf8'),
      durationMs,
      timedOut: this.timedOut,
    };
  }
}
