import type { RpcMethod } from '@blockwork/core';
import type { UringBdevModule } from './uring-bdev-module';

/** Params of bdev_uring_create, as SPDK names them. */
export interface UringCreateParams {
  filename: string;
  name: string;
  block_size?: number;
  uuid?: string;
}

const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

/** The module's JSON-RPC methods (same names, params and results as SPDK's bdev_uring_rpc.c). */
export function uringRpcMethods(m: UringBdevModule): RpcMethod[] {
  const create: RpcMethod<UringCreateParams> = {
    name: 'bdev_uring_create',
    description: 'Create a bdev on a file or block device driven through io_uring; returns the bdev name.',
    params: {
      properties: {
        filename: { type: 'string', minLength: 1, description: 'Path of the backing regular file or block device (opened read-write, O_DIRECT when possible).' },
        name: { type: 'string', minLength: 1, description: 'Name of the new bdev.' },
        block_size: { type: 'integer', minimum: 512, description: 'Block size in bytes, a power of two; default: the device logical block size, or 512 for regular files.' },
        uuid: { type: 'string', pattern: UUID_PATTERN, description: 'UUID of the new bdev; default: a random v4 UUID.' },
      },
      required: ['filename', 'name'],
    },
    handler: (p) => m.create(p),
  };
  const del: RpcMethod<{ name: string }> = {
    name: 'bdev_uring_delete',
    description: 'Delete a uring bdev; I/O in flight completes first, new I/O fails with -ENODEV.',
    params: {
      properties: { name: { type: 'string', minLength: 1, description: 'Name of the uring bdev to delete.' } },
      required: ['name'],
    },
    handler: async (p) => {
      await m.delete(p.name);
      return true;
    },
  };
  const rescan: RpcMethod<{ name: string }> = {
    name: 'bdev_uring_rescan',
    description: 'Re-read the size of a uring bdev\'s backing file or device and resize the bdev.',
    params: {
      properties: { name: { type: 'string', minLength: 1, description: 'Name of the uring bdev to rescan.' } },
      required: ['name'],
    },
    handler: (p) => {
      m.rescan(p.name);
      return true;
    },
  };
  return [create, del, rescan];
}
