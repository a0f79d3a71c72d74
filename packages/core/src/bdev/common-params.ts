import { randomUUID } from 'node:crypto';
import { coreError } from '../errors';
import type { ParamSchema } from '../rpc/types';

/** Params every SPDK bdev create method shares. */
export const NAME_PARAM: ParamSchema = { type: 'string', minLength: 1, description: 'Name of the bdev' };
export const UUID_PARAM: ParamSchema = {
  type: 'string',
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
  description: 'UUID of the bdev (random when omitted)',
};
export const NUM_BLOCKS_PARAM: ParamSchema = { type: 'integer', minimum: 1, description: 'Size of the bdev in blocks' };
export const BLOCK_SIZE_PARAM: ParamSchema = { type: 'integer', minimum: 512, description: 'Block size in bytes (a multiple of 512)' };

/**
 * SPDK's metadata/DIF params. Blockwork accepts them so SPDK configs load, but supports no
 * separate metadata or protection information: a non-zero value is refused by `checkNoMetadata`.
 */
export const MD_PARAMS: Record<string, ParamSchema> = {
  physical_block_size: { type: 'integer', minimum: 0, description: 'Physical block size in bytes (reported only)' },
  md_size: { type: 'integer', minimum: 0, description: 'Metadata size per block; only 0 is supported' },
  md_interleave: { type: 'boolean', description: 'Metadata interleaved with data; only meaningful with md_size > 0' },
  dif_type: { type: 'integer', minimum: 0, maximum: 3, description: 'Protection information type; only 0 is supported' },
  dif_is_head_of_md: { type: 'boolean', description: 'Protection information at the head of metadata (ignored without metadata)' },
  dif_pi_format: { type: 'integer', minimum: 0, description: 'Protection information format (ignored without metadata)' },
};

export interface MdParams {
  physical_block_size?: number;
  md_size?: number;
  md_interleave?: boolean;
  dif_type?: number;
  dif_is_head_of_md?: boolean;
  dif_pi_format?: number;
}

export function checkNoMetadata(method: string, p: MdParams): void {
  if ((p.md_size ?? 0) !== 0 || (p.dif_type ?? 0) !== 0) {
    throw coreError('BDEV_INVALID', `${method}: md_size and dif_type must be 0: Blockwork bdevs do not store separate metadata or protection information`);
  }
}

export function checkBlockSize(method: string, blockSize: number): void {
  if (blockSize % 512 !== 0) throw coreError('BDEV_INVALID', `${method}: block_size ${blockSize} is not a multiple of 512`);
}

export function uuidOrRandom(uuid: string | undefined): string {
  return (uuid ?? randomUUID()).toLowerCase();
}
