import type { RpcMethod } from '../../rpc/types';
import {
  BLOCK_SIZE_PARAM, checkBlockSize, checkNoMetadata, MD_PARAMS, type MdParams, NAME_PARAM, NUM_BLOCKS_PARAM,
  UUID_PARAM, uuidOrRandom,
} from '../common-params';
import type { MallocBdevModule } from './malloc-module';

interface CreateParams extends MdParams {
  name?: string;
  num_blocks: number;
  block_size: number;
  uuid?: string;
  optimal_io_boundary?: number;
  numa_id?: number;
}

export function mallocRpcMethods(m: MallocBdevModule): RpcMethod[] {
  return [
    {
      name: 'bdev_malloc_create',
      description: 'Create a RAM bdev; returns its name',
      params: {
        properties: {
          name: { ...NAME_PARAM, description: 'Name of the bdev (default Malloc<N>)' },
          num_blocks: NUM_BLOCKS_PARAM,
          block_size: BLOCK_SIZE_PARAM,
          uuid: UUID_PARAM,
          optimal_io_boundary: { type: 'integer', minimum: 0, description: 'I/Os crossing a multiple of this many blocks are split (0 = never)' },
          numa_id: { type: 'integer', description: 'NUMA node for the memory (accepted, not used)' },
          ...MD_PARAMS,
        },
        required: ['num_blocks', 'block_size'],
      },
      handler: (p: CreateParams) => {
        checkBlockSize('bdev_malloc_create', p.block_size);
        checkNoMetadata('bdev_malloc_create', p);
        return m.create({
          name: p.name ?? m.defaultName(),
          uuid: uuidOrRandom(p.uuid),
          numBlocks: p.num_blocks,
          blockSize: p.block_size,
          physicalBlockSize: p.physical_block_size || p.block_size,
          optimalIoBoundary: p.optimal_io_boundary ?? 0,
        }).name;
      },
    },
    {
      name: 'bdev_malloc_delete',
      description: 'Delete a malloc bdev',
      params: { properties: { name: NAME_PARAM }, required: ['name'] },
      handler: async (p: { name: string }) => {
        await m.delete(p.name);
        return true;
      },
    },
  ];
}
