import t from 'tap';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nvmeNative } from '../src/native';
import { normalizeBdf, openVfioDevice, pciClass, vfioGroupOf } from '../src/vfio';

/** A fake sysfs: devices with a driver link and an iommu_group link as the kernel lays them out. */
function sysfs(t: { testdir(): string }, devs: Record<string, { driver?: string; group?: number; cls?: string }>): { sysfs: string } {
  const root = join(t.testdir(), 'sys');
  mkdirSync(join(root, 'bus/pci/devices'), { recursive: true });
  for (const [bdf, d] of Object.entries(devs)) {
    const dir = join(root, 'devices/pci0000:00', bdf);
    mkdirSync(dir, { recursive: true });
    symlinkSync(dir, join(root, 'bus/pci/devices', bdf));
    if (d.driver) {
      mkdirSync(join(root, 'bus/pci/drivers', d.driver), { recursive: true });
      symlinkSync(join(root, 'bus/pci/drivers', d.driver), join(dir, 'driver'));
    }
    if (d.group !== undefined) {
      mkdirSync(join(root, 'kernel/iommu_groups', String(d.group)), { recursive: true });
      symlinkSync(join(root, 'kernel/iommu_groups', String(d.group)), join(dir, 'iommu_group'));
    }
    writeFileSync(join(dir, 'class'), `${d.cls ?? '0x010802'}\n`);
  }
  return { sysfs: root };
}

t.test('PCI addresses are normalized to DDDD:BB:DD.F; malformed ones are null', async (t) => {
  t.equal(normalizeBdf('0000:00:04.0'), '0000:00:04.0');
  t.equal(normalizeBdf('00:04.0'), '0000:00:04.0');
  t.equal(normalizeBdf('0000:AF:1F.7'), '0000:af:1f.7');
  for (const bad of ['127.0.0.1', '0000:00:04', '00:04.8', 'x', '']) t.equal(normalizeBdf(bad), null, bad);
});

t.test('a missing device, a device on another driver or none, and one without IOMMU group each get their own error', async (t) => {
  const env = sysfs(t, {
    '0000:00:04.0': { driver: 'vfio-pci', group: 7 },
    '0000:00:05.0': { driver: 'nvme', group: 8 },
    '0000:00:06.0': { group: 9 },
    '0000:00:07.0': { driver: 'vfio-pci' },
  });
  t.equal(vfioGroupOf('0000:00:04.0', env), 7);
  t.throws(() => vfioGroupOf('0000:00:09.0', env), { code: 'NVME_PCI_DEVICE_NOT_FOUND', errno: 19, message: /no PCI device 0000:00:09\.0/ });
  t.throws(() => vfioGroupOf('0000:00:05.0', env), {
    code: 'NVME_PCI_NOT_VFIO', errno: 16,
    message: /bound to nvme, not vfio-pci: bind it: echo 0000:00:05\.0 > .*driver\/unbind; echo vfio-pci > .*driver_override; echo 0000:00:05\.0 > .*drivers_probe/,
  });
  t.throws(() => vfioGroupOf('0000:00:06.0', env), { code: 'NVME_PCI_NOT_VFIO', message: /bound to no driver.*bind it: echo vfio-pci/ });
  t.throws(() => vfioGroupOf('0000:00:07.0', env), { code: 'NVME_PCI_NO_IOMMU_GROUP', errno: 19, message: /intel_iommu=on/ });
});

t.test('opening a vfio-pci device whose group node does not exist fails with NVME_VFIO_FAILED naming the call', async (t) => {
  const env = sysfs(t, { '0000:00:04.0': { driver: 'vfio-pci', group: 4242 } });
  t.throws(() => openVfioDevice('0000:00:04.0', env), { code: 'NVME_VFIO_FAILED', message: /0000:00:04\.0.*(\/dev\/vfio)/ });
});

t.test('class code from sysfs', async (t) => {
  const env = sysfs(t, { '0000:00:04.0': { cls: '0x010802' } });
  t.equal(pciClass('0000:00:04.0', env), 0x010802);
  t.equal(pciClass('0000:00:05.0', env), -1);
});

t.test('the addon checks its arguments', async (t) => {
  const V = nvmeNative().VfioDevice as unknown as new (...a: unknown[]) => unknown;
  t.throws(() => new V(), TypeError);
  t.throws(() => new V('0000:00:04.0', 'x'), TypeError);
});
