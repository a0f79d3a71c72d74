import type { RpcMethod } from '@blockwork/core';
import type { AioCreateParams } from './aio-bdev';
import type { AioBdevModule } from './aio-bdev-module';

const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

/** The aio module's JSON-RPC methods, named and shaped as SPDK's bdev_aio_rpc.c. */
export function aioRpcMethods(module: AioBdevModule): RpcMethod[] {
  const create: RpcMethod<AioCreateParams> = {
    name: 'bdev_aio_create',
    description: 'Create a bdev on a regular file or block device driven through Linux AIO; returns the bdev name.',
    states: ['startup', 'runtime'],
    params: {
      properties: {
        name: { type: 'string', minLength: 1, description: 'Name of the new bdev.' },
        filename: { type: 'string', minLength: 1, description: 'Path of the backing regular file or block device.' },
        block_size: {
          type: 'integer', minimum: 0,
          description: 'Block size in bytes (power of two, at least 512); 0 or absent detects it (device logical block size, else 512 or the filesystem O_DIRECT alignment).',
        },
        readonly: { type: 'boolean', default: false, description: 'Open the file read-only; write, unmap and write_zeroes are refused.' },
        fallocate: {
          type: 'boolean', default: false,
          description: 'Support unmap (punch hole) and write_zeroes (zero range) through fallocate, if the filesystem can.',
        },
        uuid: { type: 'string', pattern: UUID_PATTERN, description: 'UUID of the bdev; a random v4 UUID when absent.' },
        nowait: { type: 'boolean', default: false, description: 'SPDK RWF_NOWAIT option; accepted for compatibility, only false is supported.' },
      },
      required: ['name', 'filename'],
    },
    handler: (p) => module.create(p),
  };
  const del: RpcMethod<{ name: string }> = {
    name: 'bdev_aio_delete',
    description: 'Delete an aio bdev; I/O in flight completes first, new I/O fails with -ENODEV. Returns true.',
    params: { properties: { name: { type: 'string', minLength: 1, description: 'Name of the aio bdev to delete.' } }, required: ['name'] },
    handler: async (p) => {
      await module.delete(p.name);
      return true;
    },
  };
  const rescan: RpcMethod<{ name: string }> = {
    name: 'bdev_aio_rescan',
    description: 'Re-read the size of an aio bdev\'s file or device and resize the bdev; returns true.',
    params: { properties: { name: { type: 'string', minLength: 1, description: 'Name of the aio bdev to rescan.' } }, required: ['name'] },
    handler: (p) => {
      module.rescan(p.name);
      return true;
    },
  };
  return [create, del, rescan];
}
