import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { nvmeError } from './errors';
import { nvmeNative, type VfioDeviceNative } from './native';

/** Where sysfs is (tests point it at a fake tree). */
export interface VfioEnv {
  sysfs: string;
}

const DEFAULT_ENV: VfioEnv = { sysfs: '/sys' };

/** "0000:00:04.0" from "0000:00:04.0" or "00:04.0" (domain 0), lower case; null if malformed. */
export function normalizeBdf(traddr: string): string | null {
  const m = /^(?:([0-9a-f]{4}):)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i.exec(traddr.trim());
  if (!m) return null;
  return `${(m[1] ?? '0000').toLowerCase()}:${m[2].toLowerCase()}:${m[3].toLowerCase()}.${m[4]}`;
}

function link(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

/**
 * Checks in sysfs that `bdf` exists, is bound to vfio-pci and has an IOMMU group; returns the
 * group number. Throws NVME_PCI_DEVICE_NOT_FOUND, NVME_PCI_NOT_VFIO or NVME_PCI_NO_IOMMU_GROUP
 * with a message that says what to do.
 */
export function vfioGroupOf(bdf: string, env: VfioEnv = DEFAULT_ENV): number {
  const dev = join(env.sysfs, 'bus/pci/devices', bdf);
  if (!existsSync(dev)) throw nvmeError('NVME_PCI_DEVICE_NOT_FOUND', `no PCI device ${bdf} (${dev} does not exist)`);
  const drv = link(join(dev, 'driver'));
  const driver = drv === null ? null : basename(drv);
  if (driver !== 'vfio-pci') {
    const bind = `echo ${bdf} > ${dev}/driver/unbind; echo vfio-pci > ${dev}/driver_override; echo ${bdf} > ${env.sysfs}/bus/pci/drivers_probe`;
    throw nvmeError('NVME_PCI_NOT_VFIO', `PCI device ${bdf} is ${driver === null ? 'bound to no driver' : `bound to ${driver}`}, not vfio-pci: bind it: ${driver === null ? bind.slice(bind.indexOf(';') + 2) : bind}`);
  }
  const grp = link(join(dev, 'iommu_group'));
  if (grp === null) {
    throw nvmeError('NVME_PCI_NO_IOMMU_GROUP', `PCI device ${bdf} has no IOMMU group: enable the IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line; in a VM, a vIOMMU); VFIO no-IOMMU mode is not supported`);
  }
  return Number(basename(grp));
}

/** The PCI class code of `bdf` (e.g. 0x010802 for NVMe), or -1 when unreadable. */
export function pciClass(bdf: string, env: VfioEnv = DEFAULT_ENV): number {
  try {
    return Number(readFileSync(join(env.sysfs, 'bus/pci/devices', bdf, 'class'), 'utf8').trim());
  } catch {
    return -1;
  }
}

/** Opens `bdf` through VFIO after the sysfs checks; maps addon failures to catalogue errors. */
export function openVfioDevice(bdf: string, env: VfioEnv = DEFAULT_ENV): VfioDeviceNative {
  const group = vfioGroupOf(bdf, env);
  try {
    return new (nvmeNative().VfioDevice)(bdf, group);
  } catch (e) {
    const err = e as Error & { errno?: number; syscall?: string };
    if (err.syscall === 'VFIO_GROUP_FLAGS_VIABLE') {
      throw nvmeError('NVME_PCI_GROUP_NOT_VIABLE', `IOMMU group ${group} of PCI device ${bdf} is not viable: bind every device in ${env.sysfs}/kernel/iommu_groups/${group}/devices to vfio-pci (or unbind it)`, e);
    }
    throw nvmeError('NVME_VFIO_FAILED', `cannot open PCI device ${bdf} through VFIO (group ${group}): ${err.message}${err.errno ? ` (errno ${err.errno})` : ''}`, e);
  }
}
