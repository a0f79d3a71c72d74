import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';

/** Kernel and initramfs of the test guest, as absolute paths. */
export interface GuestImage {
  /** The Debian kernel (bzImage). */
  kernel: string;
  /** Uncompressed newc initramfs: busybox, modules, fio, /init. */
  initrd: string;
}

/** Minimal view of a tap `Test` used by {@link requireGuestTools} (tap is not a dependency). */
export interface TestLike {
  fail(message: string): unknown;
  /** tap: plan(0, reason) marks the running test as skipped with that reason. */
  plan(n: number, comment?: string): unknown;
}

/** What a test needs; everything is required unless set to false. */
export interface GuestToolsNeeds {
  /** qemu-storage-daemon (the reference vhost-user-blk server). Default true. */
  storageDaemon?: boolean;
}

const BUILD_HINT = 'sudo bash scripts/guest/build-guest.sh (needs busybox-static kmod fio; see docs/guest-vm.md)';

/** The cache directory: $BLOCKWORK_GUEST_DIR or /var/cache/blockwork-guest. */
export function guestCacheDir(): string {
  return process.env.BLOCKWORK_GUEST_DIR || '/var/cache/blockwork-guest';
}

/** Paths of the current image in the cache (they may not exist yet). */
export function guestImagePaths(): GuestImage {
  const dir = join(guestCacheDir(), 'current');
  return { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') };
}

/** Absolute path of scripts/guest/build-guest.sh, found upwards from this file. */
export function buildScriptPath(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const candidate = join(dir, 'scripts', 'guest', 'build-guest.sh');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error('scripts/guest/build-guest.sh not found above ' + __dirname);
  }
}

/** Absolute path of an executable on $PATH (plus the sbin dirs), or undefined. */
export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

function imageComplete(): boolean {
  const { kernel, initrd } = guestImagePaths();
  return existsSync(kernel) && existsSync(initrd);
}

/** True when build-guest.sh can run here now: root and its tools present. */
function imageBuildable(): boolean {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  return root && ['busybox', 'depmod', 'fio', 'dpkg', 'apt-get'].every((n) => findExecutable(n) !== undefined);
}

/**
 * Which guest tools are missing, each as "what: how to get it". Synchronous, cheap (existence
 * checks only). The image counts as missing only when it is absent and cannot be built on
 * demand by {@link ensureGuestImage} (not root, or build tools missing).
 */
export function guestToolsMissing(needs: GuestToolsNeeds = {}): string[] {
  const missing: string[] = [];
  if (!findExecutable('qemu-system-x86_64')) {
    missing.push('qemu-system-x86_64: apt-get install -y qemu-system-x86');
  }
  if (!imageComplete() && !(findExecutable('qemu-system-x86_64') && imageBuildable())) {
    missing.push(`guest image (${guestImagePaths().kernel}, initrd.img): ${BUILD_HINT}`);
  }
  if (needs.storageDaemon !== false && !findExecutable('qemu-storage-daemon')) {
    missing.push('qemu-storage-daemon: apt-get install -y qemu-system-x86 (package qemu-system-common)');
  }
  return missing;
}

/**
 * For tests: true when everything is there. Otherwise, under CI=true, fails the test with the
 * install hint; elsewhere marks the test skipped (`t.plan(0, hint)`), so call it first. Either way returns false and the test
 * should return at once.
 */
export function requireGuestTools(t: TestLike, needs: GuestToolsNeeds = {}): boolean {
  const missing = guestToolsMissing(needs);
  if (missing.length === 0) return true;
  const hint = 'guest test bed incomplete: ' + missing.join('; ');
  if (process.env.CI === 'true') t.fail(hint);
  else t.plan(0, hint);
  return false;
}

function scriptHash(): string {
  return createHash('sha256').update(readFileSync(buildScriptPath())).digest('hex').slice(0, 16);
}

async function stampedHash(): Promise<string | undefined> {
  try {
    const stamp = await readFile(join(guestCacheDir(), 'current', 'stamp'), 'utf8');
    return /^script_hash=(\w+)$/m.exec(stamp)?.[1];
  } catch {
    return undefined;
  }
}

let building: Promise<GuestImage> | undefined;

/**
 * Returns the cached image, running build-guest.sh first (asynchronously, once per process)
 * when the cache is empty or was built by another version of the script. A build takes
 * ~15 s plus the kernel download and needs root; a failed build rejects with its output.
 */
export async function ensureGuestImage(): Promise<GuestImage> {
  let script: string | undefined;
  try {
    script = buildScriptPath();
  } catch {
    // Installed without the repo's scripts: use whatever image the cache has.
  }
  const stale = script !== undefined && (await stampedHash()) !== scriptHash();
  // A stale image is still better than none where the build cannot run (not root).
  if (imageComplete() && (!stale || !imageBuildable())) return guestImagePaths();
  if (script === undefined) throw new Error(`guest image missing in ${guestCacheDir()}: ${BUILD_HINT}`);
  building ??= new Promise<GuestImage>((resolve, reject) => {
    execFile('bash', [script], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      building = undefined;
      if (err) reject(new Error(`build-guest.sh failed (${err.message.split('\n')[0]}):\n${stderr}${stdout}`));
      else resolve(guestImagePaths());
    });
  });
  return building;
}
