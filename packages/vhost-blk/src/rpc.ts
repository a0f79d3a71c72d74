import type { RpcMethod } from '@blockwork/core';
import type { VhostBlkSubsystem } from './vhost-blk-subsystem';

/** Params of vhost_create_blk_controller, as SPDK names them (unknown keys are ignored, as SPDK). */
export interface CreateBlkControllerParams {
  ctrlr: string;
  dev_name: string;
  cpumask?: string;
  transport?: string;
  readonly?: boolean;
  packed_ring?: boolean;
  /** Blockwork extension (SPDK has none and ignores it): connect to the front end's socket instead of listening. */
  client?: boolean;
}

export interface SetCoalescingParams {
  ctrlr: string;
  delay_base_us: number;
  iops_threshold: number;
}

/** The vhost_blk subsystem's JSON-RPC methods (names, params and results as SPDK's vhost_rpc.c). */
export function vhostBlkRpcMethods(s: VhostBlkSubsystem): RpcMethod[] {
  const create: RpcMethod<CreateBlkControllerParams> = {
    name: 'vhost_create_blk_controller',
    description: 'Create a vhost-user-blk controller: a socket <socketDir>/<ctrlr> (mode 0600; in client mode the front end\'s socket, connected to) exporting a bdev to QEMU; returns true.',
    params: {
      properties: {
        ctrlr: { type: 'string', minLength: 1, description: 'Controller name; also the socket file name under the daemon\'s socket directory.' },
        dev_name: { type: 'string', minLength: 1, description: 'Name (or alias) of the bdev to export; it is opened for writing without a claim (as SPDK), so it fails only if another module claimed it.' },
        cpumask: { type: 'string', description: 'SPDK cpumask (hex or list); stored and reported as "0x…", informational (one event loop serves every controller).' },
        transport: { type: 'string', description: 'Only "vhost_user_blk" (the default).' },
        readonly: { type: 'boolean', description: 'Export read-only: RO feature offered, writes fail with IOERR, the bdev is opened read-only. Default false.' },
        packed_ring: { type: 'boolean', description: 'Packed virtqueues; true is refused ("packed ring is not supported yet"). Default false.' },
        client: {
          type: 'boolean',
          description: 'Blockwork extension (DPDK\'s RTE_VHOST_USER_CLIENT): the front end owns the socket at <socketDir>/<ctrlr> (QEMU -chardev socket,server=on,wait=off) and the controller connects to it, retrying every 10 ms while it is missing or refused, until deleted. Makes hot upgrade independent of QEMU\'s reconnect timer; see docs/hot-upgrade.md. Default false.',
        },
      },
      required: ['ctrlr', 'dev_name'],
      allowUnknown: true,
    },
    handler: async (p) => {
      await s.createController(p);
      return true;
    },
  };
  const get: RpcMethod<{ name?: string }> = {
    name: 'vhost_get_controllers',
    description: 'List vhost controllers (or one by name) with their sessions and backend details.',
    params: {
      properties: { name: { type: 'string', description: 'Controller name (all controllers when omitted).' } },
      allowUnknown: true,
    },
    handler: (p) => s.getControllers(p.name),
  };
  const del: RpcMethod<{ ctrlr: string }> = {
    name: 'vhost_delete_controller',
    description: 'Delete a vhost controller: close its sessions (draining their I/O), remove the socket and release the bdev; returns true.',
    params: {
      properties: { ctrlr: { type: 'string', minLength: 1, description: 'Name of the controller to delete.' } },
      required: ['ctrlr'],
      allowUnknown: true,
    },
    handler: async (p) => {
      await s.deleteController(p.ctrlr);
      return true;
    },
  };
  const coalescing: RpcMethod<SetCoalescingParams> = {
    name: 'vhost_controller_set_coalescing',
    description: 'Set a controller\'s interrupt coalescing (SPDK\'s rule, applied to every queue; see docs/vhost-blk.md); returns true.',
    params: {
      properties: {
        ctrlr: { type: 'string', minLength: 1, description: 'Controller name.' },
        delay_base_us: { type: 'integer', minimum: 0, description: 'Base delay of a coalesced call signal, microseconds.' },
        iops_threshold: { type: 'integer', description: 'IOPS above which coalescing applies; must be > 0.' },
      },
      required: ['ctrlr', 'delay_base_us', 'iops_threshold'],
      allowUnknown: true,
    },
    handler: (p) => {
      s.setCoalescing(p);
      return true;
    },
  };
  return [create, get, del, coalescing];
}
