import t from 'tap';
import { existsSync, openSync, readSync, closeSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireGuestTools, runGuest } from '@blockwork/guest-vm';
import { PATTERN_BLOCKS, PATTERN_LBA } from './fixtures/pcie-guest-check';

// One TCG guest boot (~40–90 s): vIOMMU + two emulated NVMe controllers (04.0 for vfio-pci, 05.0
// left on the kernel's nvme driver), the host's root shared read-only over 9p so the guest runs
// this very node binary and the repo's dist code, chrooted.
const PKG = join(__dirname, '..');
const FIXTURE = join(PKG, 'dist', 'test', 'fixtures', 'pcie-guest-check.js');
const SERIAL = 'BWPCIE01';
const VFIO_BDF = '0000:00:04.0';
const KERNEL_BDF = '0000:00:05.0';
// The guest's own /tmp is bound over the host's inside the chroot, except when the repo itself
// lives under /tmp (a CI clone): hiding it would hide the fixture.

function script(): string {
  return `
mkdir -p /host
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /host || { echo "9p mount failed" >&2; exit 90; }
B=${VFIO_BDF}
echo $B > /sys/bus/pci/devices/$B/driver/unbind
echo vfio-pci > /sys/bus/pci/devices/$B/driver_override
echo $B > /sys/bus/pci/drivers_probe
[ -e /dev/vfio/vfio ] || { echo "no /dev/vfio/vfio" >&2; exit 91; }
for m in proc sys dev ${PKG.startsWith('/tmp/') ? '' : 'tmp'}; do mount --bind /$m /host/$m; done
chroot /host ${process.execPath} ${FIXTURE} $B ${KERNEL_BDF} 2>&1
`;
}

/** "KEY {json}" lines → key → parsed values, in order. */
function parse(output: string): Map<string, any[]> {
  const m = new Map<string, any[]>();
  for (const line of output.split('\n')) {
    const i = line.indexOf(' ');
    if (i < 0 || !/^[A-Z-]+$/.test(line.slice(0, i))) continue;
    try {
      const v = JSON.parse(line.slice(i + 1));
      m.set(line.slice(0, i), [...(m.get(line.slice(0, i)) ?? []), v]);
    } catch {
      // not ours
    }
  }
  return m;
}

t.test('PCIe over VFIO against QEMU\'s emulated NVMe controller in a guest with a vIOMMU', { timeout: 900_000 }, async (t) => {
  if (!requireGuestTools(t, { storageDaemon: false })) return;
  if (!existsSync(FIXTURE)) return void t.fail(`${FIXTURE} is missing: build first (npx tsc -b at the repo root)`);
  const dir = t.testdir({});
  const img = join(dir, 'nv0.img');
  writeFileSync(img, '');
  truncateSync(img, 64 << 20);
  writeFileSync(join(dir, 'nv1.img'), '');
  truncateSync(join(dir, 'nv1.img'), 16 << 20);
  const r = await runGuest({
    script: script(), memMiB: 1536, kernelArgs: 'intel_iommu=on', timeoutMs: 600_000,
    extraArgs: [
      // The vIOMMU must come before the devices it translates for.
      '-machine', 'q35,kernel-irqchip=split', '-device', 'intel-iommu,intremap=on',
      '-drive', `file=${img},if=none,id=nv0,format=raw,discard=unmap`, '-device', `nvme,serial=${SERIAL},drive=nv0,addr=04.0`,
      '-drive', `file=${join(dir, 'nv1.img')},if=none,id=nv1,format=raw`, '-device', `nvme,serial=BWKERN02,drive=nv1,addr=05.0`,
      '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
    ],
  });
  t.comment(`guest ran ${Math.round(r.durationMs / 1000)} s; output:\n${r.output}`);
  t.equal(r.exitCode, 0, `guest script exit code\n${r.stderr}\n${r.console.slice(-3000)}`);
  const out = parse(r.output);
  const one = (k: string) => out.get(k)?.[0];

  t.test('a bad address and a device left on the kernel driver fail with errors that say why', async (t) => {
    t.match(one('BAD-ADDR'), { code: 'NVME_PCI_DEVICE_NOT_FOUND', errno: 19, message: /no PCI device 0000:00:1e\.7/ });
    t.match(one('NOT-VFIO'), { code: 'NVME_PCI_NOT_VFIO', errno: 16, message: /bound to nvme, not vfio-pci: bind it: .*driver_override/ });
  });

  t.test('attach by PCI address; identify shows the emulated controller', async (t) => {
    t.same(one('ATTACH'), ['Nvme0n1']);
    t.match(one('IDENTIFY'), { model: 'QEMU NVMe Ctrl', serial: SERIAL, trid: { trtype: 'PCIe', traddr: VFIO_BDF }, block_size: 512, num_blocks: 131072 });
    t.match(one('CONTROLLERS'), [{ name: 'Nvme0', ctrlrs: [{ state: 'enabled', trid: { trtype: 'PCIe', traddr: VFIO_BDF } }] }]);
    t.match(one('CONFIG')?.[0], { method: 'bdev_nvme_attach_controller', params: { name: 'Nvme0', trtype: 'PCIe', traddr: VFIO_BDF } });
  });

  t.test('verify workloads pass: 4 KiB QD16 and 128 KiB QD4 (PRP lists)', async (t) => {
    const perfs = out.get('PERF') ?? [];
    t.equal(perfs.length, 2);
    for (const p of perfs) {
      t.ok(p.ios > 0, `${p.io_size} B QD${p.queue_depth}: ${p.ios} I/Os, ${p.iops} IOPS`);
      t.equal(p.errors, 0);
      t.equal(p.miscompares, 0);
    }
  });

  t.test('detach removes the bdev', async (t) => {
    t.equal(one('DETACH'), true);
    t.same(one('AFTER-DETACH'), []);
  });

  t.test('bdev compliance checks, each on a fresh attach', async (t) => {
    const checks = out.get('CHECK') ?? [];
    t.ok(checks.length >= 6, `${checks.length} checks ran`);
    for (const c of checks) t.ok(c.ok, `${c.name}${c.ok ? '' : `: ${JSON.stringify(c.err)}`}`);
  });

  t.test('data written through vfio is in the image file', async (t) => {
    t.match(one('DATA'), { equal: true });
    t.equal(one('DONE'), true);
    const len = PATTERN_BLOCKS * 512;
    const got = Buffer.alloc(len);
    const fd = openSync(img, 'r');
    readSync(fd, got, 0, len, PATTERN_LBA * 512);
    closeSync(fd);
    const want = Buffer.alloc(len);
    for (let i = 0; i < len; i++) want[i] = (i * 7 + (i >> 9)) & 0xff;
    t.ok(got.equals(want), 'bytes at LBA 2048 of the backing file');
  });
});
