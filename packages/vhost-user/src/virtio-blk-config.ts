/**
 * struct virtio_blk_config (virtio 1.x §5.2.4) up to write_zeroes_may_unmap: the 60 bytes every
 * implementation has. Newer fields (secure erase, zoned) are not read: qemu-storage-daemon refuses
 * GET_CONFIG larger than its own struct, so a front end asks for exactly VIRTIO_BLK_CONFIG_SIZE.
 */
export const VIRTIO_BLK_CONFIG_SIZE = 60;

export interface VirtioBlkConfig {
  /** Device size in 512-byte sectors. */
  capacity: bigint;
  /** Largest segment in bytes (SIZE_MAX). */
  sizeMax: number;
  /** Most data segments per request (SEG_MAX). */
  segMax: number;
  cylinders: number;
  heads: number;
  sectors: number;
  /** Logical block size in bytes (BLK_SIZE). */
  blkSize: number;
  physicalBlockExp: number;
  alignmentOffset: number;
  /** In logical blocks. */
  minIoSize: number;
  /** In logical blocks. */
  optIoSize: number;
  writeback: number;
  /** Number of request queues (MQ). */
  numQueues: number;
  maxDiscardSectors: number;
  maxDiscardSeg: number;
  discardSectorAlignment: number;
  maxWriteZeroesSectors: number;
  maxWriteZeroesSeg: number;
  writeZeroesMayUnmap: number;
}

/** Reads what `b` holds; fields past its end read as 0 (a short config is the device's choice). */
export function decodeVirtioBlkConfig(b: Uint8Array): VirtioBlkConfig {
  const full = Buffer.alloc(VIRTIO_BLK_CONFIG_SIZE);
  full.set(b.subarray(0, VIRTIO_BLK_CONFIG_SIZE));
  return {
    capacity: full.readBigUInt64LE(0),
    sizeMax: full.readUInt32LE(8),
    segMax: full.readUInt32LE(12),
    cylinders: full.readUInt16LE(16),
    heads: full.readUInt8(18),
    sectors: full.readUInt8(19),
    blkSize: full.readUInt32LE(20),
    physicalBlockExp: full.readUInt8(24),
    alignmentOffset: full.readUInt8(25),
    minIoSize: full.readUInt16LE(26),
    optIoSize: full.readUInt32LE(28),
    writeback: full.readUInt8(32),
    numQueues: full.readUInt16LE(34),
    maxDiscardSectors: full.readUInt32LE(36),
    maxDiscardSeg: full.readUInt32LE(40),
    discardSectorAlignment: full.readUInt32LE(44),
    maxWriteZeroesSectors: full.readUInt32LE(48),
    maxWriteZeroesSeg: full.readUInt32LE(52),
    writeZeroesMayUnmap: full.readUInt8(56),
  };
}

/** The 60-byte image of `c` (a target answers GET_CONFIG with a slice of it, zero-padded to the size asked). */
export function encodeVirtioBlkConfig(c: Partial<VirtioBlkConfig>): Buffer {
  const b = Buffer.alloc(VIRTIO_BLK_CONFIG_SIZE);
  b.writeBigUInt64LE(c.capacity ?? 0n, 0);
  b.writeUInt32LE(c.sizeMax ?? 0, 8);
  b.writeUInt32LE(c.segMax ?? 0, 12);
  b.writeUInt16LE(c.cylinders ?? 0, 16);
  b.writeUInt8(c.heads ?? 0, 18);
  b.writeUInt8(c.sectors ?? 0, 19);
  b.writeUInt32LE(c.blkSize ?? 0, 20);
  b.writeUInt8(c.physicalBlockExp ?? 0, 24);
  b.writeUInt8(c.alignmentOffset ?? 0, 25);
  b.writeUInt16LE(c.minIoSize ?? 0, 26);
  b.writeUInt32LE(c.optIoSize ?? 0, 28);
  b.writeUInt8(c.writeback ?? 0, 32);
  b.writeUInt16LE(c.numQueues ?? 0, 34);
  b.writeUInt32LE(c.maxDiscardSectors ?? 0, 36);
  b.writeUInt32LE(c.maxDiscardSeg ?? 0, 40);
  b.writeUInt32LE(c.discardSectorAlignment ?? 0, 44);
  b.writeUInt32LE(c.maxWriteZeroesSectors ?? 0, 48);
  b.writeUInt32LE(c.maxWriteZeroesSeg ?? 0, 52);
  b.writeUInt8(c.writeZeroesMayUnmap ?? 0, 56);
  return b;
}
