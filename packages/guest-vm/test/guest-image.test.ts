import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { buildScriptPath, guestImagePaths, guestToolsMissing, requireGuestTools } from '../src/guest-image';

function withEnv(t: Test, env: Record<string, string | undefined>): void {
  const apply = (e: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(e)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  t.teardown(() => apply(saved));
  apply(env);
}

function emptyCache(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'bw-gc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('BLOCKWORK_GUEST_DIR moves the image', async (t) => {
  withEnv(t, { BLOCKWORK_GUEST_DIR: '/x/y' });
  t.same(guestImagePaths(), { kernel: '/x/y/current/vmlinuz', initrd: '/x/y/current/initrd.img' });
});

t.test('the build script is found from the package', async (t) => {
  t.match(buildScriptPath(), /\/scripts\/guest\/build-guest\.sh$/);
});

t.test('missing QEMU, image and qemu-storage-daemon are each named with the fix', async (t) => {
  withEnv(t, { PATH: emptyCache(t), BLOCKWORK_GUEST_DIR: emptyCache(t) });
  const missing = guestToolsMissing();
  t.equal(missing.length, 3);
  t.match(missing[0], /^qemu-system-x86_64: apt-get install -y qemu-system-x86$/);
  t.match(missing[1], /^guest image .*build-guest\.sh/);
  t.match(missing[2], /^qemu-storage-daemon: apt-get install -y qemu-system-x86/);
  t.equal(guestToolsMissing({ storageDaemon: false }).length, 2, 'qemu-storage-daemon only when asked for');
});

t.test('an image in the cache is not missing', async (t) => {
  const cache = emptyCache(t);
  mkdirSync(join(cache, 'current'));
  writeFileSync(join(cache, 'current', 'vmlinuz'), '');
  writeFileSync(join(cache, 'current', 'initrd.img'), '');
  withEnv(t, { PATH: emptyCache(t), BLOCKWORK_GUEST_DIR: cache });
  t.notMatch(guestToolsMissing().join('\n'), /guest image/);
});

t.test('requireGuestTools skips with the hint, or fails under CI=true', async (t) => {
  withEnv(t, { PATH: emptyCache(t), BLOCKWORK_GUEST_DIR: emptyCache(t), CI: undefined });
  const calls: string[] = [];
  const fake = { fail: (m: string) => calls.push('fail ' + m), plan: (n: number, m?: string) => calls.push(`plan ${n} ${m}`) };
  t.equal(requireGuestTools(fake), false);
  t.match(calls[0], /^plan 0 guest test bed incomplete: qemu-system-x86_64: apt-get install/);
  process.env.CI = 'true';
  t.equal(requireGuestTools(fake), false);
  t.match(calls[1], /^fail guest test bed incomplete: qemu-system-x86_64/);
});
