import type { RpcMethod } from '../../rpc/types';
import {
  BLOCK_SIZE_PARAM, checkBlockSize, checkNoMetadata, MD_PARAMS, type MdParams, NAME_PARAM, NUM_BLOCKS_PARAM,
  UUID_PARAM, uuidOrRandom,
} from '../common-params';
import type { NullBdevModule } from './null-module';

interface CreateParams extends MdParams {
  name: string;
  num_blocks: number;
  block_size: number;
  uuid?: string;
}

/** SPDK's hints about write and unmap granularity: accepted so SPDK configs load, reported as 0. */
const HINT_PARAMS = Object.fromEntries(
  ['preferred_write_alignment', 'preferred_write_granularity', 'optimal_write_size', 'preferred_unmap_alignment', 'preferred_unmap_granularity']
    .map((k) => [k, { type: 'integer' as const, minimum: 0, description: `${k.replace(/_/g, ' ')} hint in blocks (accepted, not used)` }]),
);

export function nullRpcMethods(m: NullBdevModule): RpcMethod[] {
  return [
    {
      name: 'bdev_null_create',
      description: 'Create a null bdev (discards writes, reads leave buffers untouched); returns its name',
      params: {
        properties: { name: NAME_PARAM, num_blocks: NUM_BLOCKS_PARAM, block_size: BLOCK_SIZE_PARAM, uuid: UUID_PARAM, ...MD_PARAMS, ...HINT_PARAMS },
        required: ['name', 'num_blocks', 'block_size'],
      },
      handler: (p: CreateParams) => {
        checkBlockSize('bdev_null_create', p.block_size);
        checkNoMetadata('bdev_null_create', p);
        return m.create({
          name: p.name, uuid: uuidOrRandom(p.uuid), numBlocks: p.num_blocks, blockSize: p.block_size,
          physicalBlockSize: p.physical_block_size || p.block_size,
        }).name;
      },
    },
    {
      name: 'bdev_null_delete',
      description: 'Delete a null bdev',
      params: { properties: { name: NAME_PARAM }, required: ['name'] },
      handler: async (p: { name: string }) => {
        await m.delete(p.name);
        return true;
      },
    },
    {
      name: 'bdev_null_resize',
      description: 'Resize a null bdev to new_size MiB',
      params: { properties: { name: NAME_PARAM, new_size: { type: 'integer', minimum: 1, description: 'New size in MiB' } }, required: ['name', 'new_size'] },
      handler: (p: { name: string; new_size: number }) => {
        m.resize(p.name, p.new_size);
        return true;
      },
    },
  ];
}
