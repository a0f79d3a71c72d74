import type { Bdev } from '@blockwork/core';
import { IoType } from '@blockwork/core';
import {
  encodeVirtioBlkConfig, VHOST_USER_MAX_CONFIG_SIZE, VhostUserProtocolFeature, VirtioBlkFeature, VirtioFeature,
} from '@blockwork/vhost-user';
import type { BlkDevice } from './blk-request';

/** Largest data segment we announce (SIZE_MAX), bytes: SPDK's 128 KiB. */
export const SIZE_MAX = 128 * 1024;
/** Data segments per request we announce (SEG_MAX): SPDK's SPDK_VHOST_IOVS_MAX (129) - 3. */
export const SEG_MAX = 126;
/** Discard / write-zeroes limit per request, 512-byte sectors (SPDK's value). */
export const MAX_DISCARD_SECTORS = 32768;
/** Queues a session may use (GET_QUEUE_NUM); QEMU's num-queues must not exceed it. */
export const MAX_QUEUES = 64;

const bit = (n: number): bigint => 1n << BigInt(n);

/**
 * Protocol features we offer: MQ, REPLY_ACK, CONFIG, STATUS, INFLIGHT_SHMFD (crash recovery, hot
 * upgrade) and LOG_SHMFD (the dirty log arrives as an fd with SET_LOG_BASE; QEMU blocks migration
 * without it). Not LOG_FD-style requests: SET_LOG_FD stays unsupported, QEMU never sends it.
 */
export const OFFERED_PROTOCOL_FEATURES =
  bit(VhostUserProtocolFeature.MQ) | bit(VhostUserProtocolFeature.REPLY_ACK) | bit(VhostUserProtocolFeature.LOG_SHMFD) |
  bit(VhostUserProtocolFeature.CONFIG) | bit(VhostUserProtocolFeature.STATUS) |
  bit(VhostUserProtocolFeature.INFLIGHT_SHMFD);

/** What the exported bdev can do, as the request parser needs it. */
export function blkDeviceOf(bdev: Bdev, readonly: boolean): BlkDevice {
  const serial = Buffer.from(bdev.name, 'utf8').subarray(0, 20);
  return {
    blockSize: bdev.blockSize,
    numBlocks: bdev.numBlocks,
    readonly,
    flush: bdev.ioTypeSupported(IoType.FLUSH),
    unmap: bdev.ioTypeSupported(IoType.UNMAP),
    writeZeroes: bdev.ioTypeSupported(IoType.WRITE_ZEROES),
    serial,
  };
}

/**
 * Virtio features offered for a device: VERSION_1, INDIRECT_DESC, EVENT_IDX, PROTOCOL_FEATURES,
 * LOG_ALL (live-migration dirty logging), BLK_SIZE, SEG_MAX, SIZE_MAX, TOPOLOGY, MQ; FLUSH / DISCARD / WRITE_ZEROES when the bdev supports
 * flush / unmap / write_zeroes (not on a read-only controller, except FLUSH); RO when read-only.
 */
export function offeredFeatures(dev: BlkDevice): bigint {
  let f = bit(VirtioFeature.VERSION_1) | bit(VirtioFeature.RING_INDIRECT_DESC) | bit(VirtioFeature.RING_EVENT_IDX) |
    bit(VirtioFeature.VHOST_USER_F_PROTOCOL_FEATURES) | bit(VirtioFeature.LOG_ALL) | bit(VirtioBlkFeature.BLK_SIZE) | bit(VirtioBlkFeature.SEG_MAX) |
    bit(VirtioBlkFeature.SIZE_MAX) | bit(VirtioBlkFeature.TOPOLOGY) | bit(VirtioBlkFeature.MQ);
  if (dev.flush) f |= bit(VirtioBlkFeature.FLUSH);
  if (dev.readonly) f |= bit(VirtioBlkFeature.RO);
  else {
    if (dev.unmap) f |= bit(VirtioBlkFeature.DISCARD);
    if (dev.writeZeroes) f |= bit(VirtioBlkFeature.WRITE_ZEROES);
  }
  return f;
}

/**
 * The device's virtio_blk_config as a 256-byte image (GET_CONFIG answers any slice of it). With no
 * device (bdev removed) capacity is 0, as SPDK answers, so a rebooting guest sees an empty disk
 * rather than a failed realize.
 */
export function blkConfigImage(dev: BlkDevice | null, optimalIoBoundary = 0): Buffer {
  const img = Buffer.alloc(VHOST_USER_MAX_CONFIG_SIZE);
  const bs = dev?.blockSize ?? 512;
  encodeVirtioBlkConfig({
    capacity: dev ? (BigInt(dev.numBlocks) * BigInt(bs)) / 512n : 0n,
    sizeMax: SIZE_MAX,
    segMax: SEG_MAX,
    blkSize: bs,
    physicalBlockExp: 0,
    alignmentOffset: 0,
    minIoSize: 1,
    optIoSize: optimalIoBoundary,
    numQueues: MAX_QUEUES,
    maxDiscardSectors: MAX_DISCARD_SECTORS,
    maxDiscardSeg: 1,
    discardSectorAlignment: bs / 512,
    maxWriteZeroesSectors: MAX_DISCARD_SECTORS,
    maxWriteZeroesSeg: 1,
    writeZeroesMayUnmap: dev?.unmap ? 1 : 0,
  }).copy(img);
  return img;
}
