/**
 * @blockwork/guest-vm — the guest test bed.
 *
 * Boots a small Linux guest under QEMU (Debian kernel, busybox + fio initramfs built by
 * scripts/guest/build-guest.sh into /var/cache/blockwork-guest) that runs one shell script
 * and powers off. The script's stdout comes back byte-exact with its exit code (ttyS1); the
 * kernel log and the script's stderr come back as the console (ttyS0). Guests are the real
 * vhost-user-blk / NVMe client in end-to-end tests; under TCG a boot costs 10–15 s, so put
 * many checks into one script. See docs/guest-vm.md.
 *
 * @example
 * ```ts
 * import t from 'tap';
 * import { requireGuestTools, runGuest } from '@blockwork/guest-vm';
 *
 * t.test('guest sees the disk', async (t) => {
 *   if (!requireGuestTools(t)) return; // skips with an install hint; fails under CI=true
 *   const r = await runGuest({
 *     script: 'blockdev --getsize64 /dev/vda',
 *     vhostUserBlk: [{ socket: '/tmp/bw-x/vhost.sock', numQueues: 2 }],
 *   });
 *   t.equal(r.exitCode, 0, r.console);
 *   t.equal(r.output.trim(), String(64 << 20));
 * });
 * ```
 */
export {
  buildScriptPath,
  ensureGuestImage,
  guestCacheDir,
  guestImagePaths,
  guestToolsMissing,
  requireGuestTools,
  type GuestImage,
  type GuestToolsNeeds,
  type TestLike,
} from './guest-image';
export { runGuest, startGuest, type GuestHandle, type GuestOptions, type GuestResult } from './guest-runner';
export { defaultAccel, qemuArgs, type QemuArgsOptions, type VhostUserBlkDisk } from './qemu-args';
export { parseSerialFrame, type SerialFrame } from './serial-frame';
