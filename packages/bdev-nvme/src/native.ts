import { loadAddon } from '@blockwork/core';

/**
 * One PCI function opened through VFIO (container type1, group, device fd), BAR0 mapped.
 * Register offsets are bytes into BAR0; accesses are volatile MMIO done in native code.
 */
export interface VfioDeviceNative {
  /** Size of BAR0 in bytes. */
  readonly bar0Size: number;
  /** 32-bit register read. */
  read32(off: number): number;
  /** 32-bit register write. */
  write32(off: number, value: number): void;
  /** 64-bit register read as two dwords, low first (CAP). */
  read64(off: number): bigint;
  /** 64-bit register write as two dwords, low first (ASQ, ACQ; controller disabled). */
  write64(off: number, value: bigint): void;
  /** Doorbell write: a full memory fence, then the 32-bit store. */
  doorbell(off: number, value: number): void;
  /**
   * Zeroed memory of `bytes` (rounded up to 4 KiB) mapped into the IOMMU for device reads and
   * writes. `iova` is the device-side address of byte 0. The memory lives as long as `buffer`;
   * the IOMMU mapping until close(). Throws Error with errno/syscall (mmap, VFIO_IOMMU_MAP_DMA).
   */
  allocDma(bytes: number): { buffer: ArrayBuffer; iova: number };
  /** Unmaps BAR0, closes the device, group and container (dropping all DMA mappings). Idempotent. */
  close(): void;
}

/** The exact shape of this package's addon. Nothing else loads it. */
export interface NvmeNative {
  /**
   * Opens PCI function `bdf` (e.g. "0000:00:04.0") of IOMMU group `group`. Throws an Error with
   * `errno` and `syscall` (syscall "VFIO_GROUP_FLAGS_VIABLE" with EBUSY: group not viable).
   */
  VfioDevice: new (bdf: string, group: number) => VfioDeviceNative;
}

let cached: NvmeNative | null = null;

/** Loads the addon on first use (TCP users never need it). */
export function nvmeNative(): NvmeNative {
  cached ??= loadAddon(__dirname) as NvmeNative;
  return cached;
}
