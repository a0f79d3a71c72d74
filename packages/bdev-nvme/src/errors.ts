import { BlockworkError, Errno } from '@blockwork/core';

/**
 * This package's error catalogue, extending core's. Codes are stable: never renamed, never reused.
 * docs/bdev-nvme.md lists them all; a test keeps page and catalogue in step.
 */
export const NVME_ERRORS = {
  NVME_CTRLR_EXISTS: { errno: Errno.EEXIST, text: 'an NVMe controller with this name is already attached' },
  NVME_CTRLR_NOT_FOUND: { errno: Errno.EINVAL, text: 'no NVMe controller with this name' },
  NVME_TRTYPE_UNSUPPORTED: { errno: Errno.ENOTSUP, text: 'the transport type is not supported (TCP and PCIe are)' },
  NVME_PARAM_INVALID: { errno: Errno.EINVAL, text: 'an attach parameter is invalid or unsupported' },
  NVME_CONNECT_REFUSED: { errno: Errno.ECONNREFUSED, text: 'nothing listens at the target address (connection refused)' },
  NVME_CONNECT_TIMEOUT: { errno: Errno.ETIMEDOUT, text: 'the target did not answer in time (TCP connect, ICResp or Fabrics Connect)' },
  NVME_CONNECT_RESET: { errno: Errno.ECONNRESET, text: 'the target closed the connection during connection set-up' },
  NVME_ICRESP_INVALID: { errno: Errno.EPROTO, text: 'the target\'s ICResp is malformed or negotiates something unsupported' },
  NVME_PROTOCOL: { errno: Errno.EPROTO, text: 'the target sent a malformed or unexpected PDU; the connection was reset' },
  NVME_SUBSYSTEM_NOT_FOUND: { errno: Errno.ENODEV, text: 'the target has no subsystem with this NQN (Fabrics Connect rejected subnqn)' },
  NVME_HOST_REJECTED: { errno: Errno.EACCES, text: 'the target does not allow this host NQN (Fabrics Connect Invalid Host)' },
  NVME_CONNECT_FAILED: { errno: Errno.EIO, text: 'Fabrics Connect failed with an NVMe status' },
  NVME_ADMIN_FAILED: { errno: Errno.EIO, text: 'an admin command (Property Get/Set, Identify, Set Features, Get Log Page) failed' },
  NVME_ADMIN_TIMEOUT: { errno: Errno.ETIMEDOUT, text: 'an admin command was not completed within its timeout' },
  NVME_ENABLE_TIMEOUT: { errno: Errno.ETIMEDOUT, text: 'CSTS.RDY did not follow CC.EN within CAP.TO' },
  NVME_CTRLR_FATAL: { errno: Errno.EIO, text: 'the controller reports a fatal status (CSTS.CFS)' },
  NVME_DISCONNECTED: { errno: Errno.ECONNRESET, text: 'the connection to the controller was lost' },
  NVME_PCI_DEVICE_NOT_FOUND: { errno: Errno.ENODEV, text: 'no PCI device at this address' },
  NVME_PCI_NOT_VFIO: { errno: Errno.EBUSY, text: 'the PCI device is not bound to vfio-pci' },
  NVME_PCI_NO_IOMMU_GROUP: { errno: Errno.ENODEV, text: 'the PCI device has no IOMMU group (no IOMMU enabled)' },
  NVME_PCI_GROUP_NOT_VIABLE: { errno: Errno.EBUSY, text: 'the IOMMU group is not viable (another device of the group is bound to a host driver)' },
  NVME_VFIO_FAILED: { errno: Errno.EIO, text: 'a VFIO system call failed while opening the device or mapping DMA memory' },
} as const;

export type NvmeErrorCode = keyof typeof NVME_ERRORS;

/** Creates a catalogue error; the message names the controller and the target. */
export function nvmeError(code: NvmeErrorCode, message: string, cause?: unknown): BlockworkError {
  return new BlockworkError(code, NVME_ERRORS[code].errno, message, cause === undefined ? undefined : { cause });
}
