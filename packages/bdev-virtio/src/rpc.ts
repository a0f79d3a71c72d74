import type { RpcMethod } from '@blockwork/core';
import type { VirtioBdevModule } from './virtio-bdev-module';

/** Params of bdev_virtio_attach_controller, as SPDK names them. */
export interface VirtioAttachParams {
  name: string;
  trtype: string;
  traddr: string;
  dev_type: string;
  vq_count?: number;
  vq_size?: number;
  /** Blockwork extension: reconnect every this many ms after the back end went away (I/O stays pending). */
  reconnect_ms?: number;
}

/** The module's JSON-RPC methods (names, params and results as SPDK's bdev_virtio_rpc.c). */
export function virtioRpcMethods(m: VirtioBdevModule): RpcMethod[] {
  const attach: RpcMethod<VirtioAttachParams> = {
    name: 'bdev_virtio_attach_controller',
    description: 'Connect to a vhost-user-blk back end as a virtio front end and create a bdev on it; returns the bdev names.',
    params: {
      properties: {
        name: { type: 'string', minLength: 1, description: 'Controller name; the blk bdev gets this name.' },
        trtype: { type: 'string', minLength: 1, description: 'Transport: "user" (vhost-user socket). "pci" is not supported.' },
        traddr: { type: 'string', minLength: 1, description: 'Path of the vhost-user socket of the back end.' },
        dev_type: { type: 'string', minLength: 1, description: 'Device type: "blk". "scsi" is not supported.' },
        vq_count: { type: 'integer', minimum: 1, maximum: 64, description: 'Number of request queues to set up (default 1).' },
        vq_size: { type: 'integer', minimum: 2, maximum: 32768, description: 'Descriptors per queue, a power of two (default 256).' },
        reconnect_ms: {
          type: 'integer', minimum: 1, maximum: 60000,
          description: 'Blockwork extension (SPDK has none): when the back end goes away (restart, hot upgrade), keep outstanding I/O pending and reconnect every reconnect_ms ms, as QEMU with reconnect does; INFLIGHT_SHMFD is negotiated so a restarted back end resubmits what was in flight. Default: no reconnect, I/O fails with -ENODEV.',
        },
      },
      required: ['name', 'trtype', 'traddr', 'dev_type'],
    },
    handler: async (p) => [await m.attach(p)],
  };
  const detach: RpcMethod<{ name: string }> = {
    name: 'bdev_virtio_detach_controller',
    description: 'Detach a virtio controller: its bdev is unregistered (I/O in flight completes first), then the rings are stopped and the socket closed.',
    params: {
      properties: { name: { type: 'string', minLength: 1, description: 'Name of the controller to detach.' } },
      required: ['name'],
    },
    handler: async (p) => {
      await m.detach(p.name);
      return true;
    },
  };
  return [attach, detach];
}
