import type { BdevLayer } from './bdev-layer';
import { type Bdev, IO_TYPE_NAMES, IoType } from './types';

/** SPDK's full list of supported_io_types keys; the ones Blockwork has no such I/O for are false. */
const SPDK_IO_TYPES = [
  'read', 'write', 'unmap', 'flush', 'reset', 'nvme_admin', 'nvme_io', 'nvme_io_md', 'write_zeroes', 'zcopy',
  'get_zone_info', 'zone_management', 'zone_append', 'compare', 'compare_and_write', 'abort', 'seek_hole',
  'seek_data', 'copy', 'nvme_iov_md', 'nvme_nssr', 'write_uncorrectable',
] as const;

/** One bdev as SPDK's bdev_get_bdevs reports it, members in SPDK's order. */
export function bdevToJson(layer: BdevLayer, bdev: Bdev): Record<string, unknown> {
  const supported: Record<string, boolean> = {};
  for (const k of SPDK_IO_TYPES) {
    const idx = (IO_TYPE_NAMES as readonly string[]).indexOf(k);
    supported[k] = idx >= 0 ? bdev.ioTypeSupported(idx as IoType) : false;
  }
  const claim = layer.claimOf(bdev.name);
  const out: Record<string, unknown> = {
    name: bdev.name,
    aliases: [bdev.uuid, ...bdev.aliases],
    product_name: bdev.productName,
    block_size: bdev.blockSize,
    num_blocks: bdev.numBlocks,
    preferred_write_alignment: 0,
    preferred_write_granularity: 0,
    optimal_write_size: 0,
    preferred_unmap_alignment: 0,
    preferred_unmap_granularity: 0,
    uuid: bdev.uuid,
    assigned_rate_limits: { rw_ios_per_sec: 0, rw_mbytes_per_sec: 0, r_mbytes_per_sec: 0, w_mbytes_per_sec: 0 },
    claimed: claim !== null,
  };
  if (claim) out.claim_type = claim.type;
  out.zoned = false;
  if (bdev.optimalIoBoundary > 0) out.optimal_io_boundary = bdev.optimalIoBoundary;
  // Not in SPDK's output (SPDK keeps it internal, as log2): Blockwork reports it in bytes so users
  // of O_DIRECT-backed bdevs see what buffers avoid a bounce copy.
  out.required_alignment = bdev.requiredAlignment;
  out.supported_io_types = supported;
  out.driver_specific = bdev.driverSpecific();
  return out;
}
