import type { ParamSchema, RpcMethod } from '@blockwork/core';
import type { NvmeBdevModule } from './nvme-bdev-module';

/** Params of bdev_nvme_attach_controller, as SPDK names them. */
export interface NvmeAttachParams {
  name: string;
  trtype: string;
  traddr: string;
  adrfam?: string;
  trsvcid?: string;
  subnqn?: string;
  hostnqn?: string;
  hostaddr?: string;
  hostsvcid?: string;
  priority?: string;
  prchk_reftag?: boolean;
  prchk_guard?: boolean;
  hdgst?: boolean;
  ddgst?: boolean;
  fabrics_connect_timeout_us?: number;
  multipath?: string;
  num_io_queues?: number;
  ctrlr_loss_timeout_sec?: number;
  reconnect_delay_sec?: number;
  fast_io_fail_timeout_sec?: number;
  psk?: string;
  max_bdevs?: number;
  dhchap_key?: string;
  dhchap_ctrlr_key?: string;
  allow_unrecognized_csi?: boolean;
  multipath_opts?: Record<string, unknown>;
}

/** Params of bdev_nvme_detach_controller: the name, optionally narrowed to one path. */
export interface NvmeDetachParams {
  name: string;
  trtype?: string;
  traddr?: string;
  adrfam?: string;
  trsvcid?: string;
  subnqn?: string;
  hostaddr?: string;
  hostsvcid?: string;
}

const s = (description: string): ParamSchema => ({ type: 'string', description });
const b = (description: string): ParamSchema => ({ type: 'boolean', description });
const i = (description: string, minimum?: number): ParamSchema => ({ type: 'integer', description, ...(minimum === undefined ? {} : { minimum }) });

const ATTACH_PARAMS: Record<string, ParamSchema> = {
  name: { type: 'string', minLength: 1, description: 'Controller name; namespaces become bdevs named <name>n<nsid>.' },
  trtype: { type: 'string', minLength: 1, description: 'Transport type: TCP, or PCIe (a local controller bound to vfio-pci, driven through VFIO); RDMA and FC are not supported (-ENOTSUP).' },
  traddr: { type: 'string', minLength: 1, description: 'Transport address: the target IP address (IPv4 or IPv6) for TCP; the PCI address DDDD:BB:DD.F (or BB:DD.F) for PCIe.' },
  adrfam: s('Address family: IPv4 (default) or IPv6.'),
  trsvcid: s('Transport service id: the TCP port (default 4420).'),
  subnqn: s('NQN of the subsystem to connect to (default: the discovery NQN, which exposes no namespaces).'),
  hostnqn: s('Host NQN sent in Fabrics Connect (default: nqn.2014-08.org.nvmexpress:uuid:<uuid of this daemon>).'),
  hostaddr: s('Local address to connect from (accepted for SPDK compatibility; not used).'),
  hostsvcid: s('Local port to connect from (accepted for SPDK compatibility; not used).'),
  priority: s('Socket priority (accepted for SPDK compatibility; not used).'),
  prchk_reftag: b('Check protection information reference tags; only false is supported.'),
  prchk_guard: b('Check protection information guards; only false is supported.'),
  hdgst: b('Enable the NVMe/TCP header digest (CRC32C) when the target agrees; default false.'),
  ddgst: b('Enable the NVMe/TCP data digest (CRC32C) when the target agrees; default false.'),
  fabrics_connect_timeout_us: i('Budget for TCP connect, ICReq/ICResp and each Fabrics Connect, microseconds (0 = default 10 s).', 0),
  multipath: { type: 'string', enum: ['disable', 'failover', 'multipath'], description: 'Multipath mode; only one path per controller is supported, so a second attach under the same name fails.' },
  num_io_queues: i('I/O queue pairs to open, one TCP connection each for TCP (default 1; capped by what the controller grants).', 1),
  ctrlr_loss_timeout_sec: i('After a connection loss: seconds to keep reconnecting (-1 = forever, 0 = give up at once and delete the controller). Default 0.', -1),
  reconnect_delay_sec: i('Seconds between reconnect attempts (must be > 0 when ctrlr_loss_timeout_sec is not 0). Default 0.', 0),
  fast_io_fail_timeout_sec: i('While reconnecting, queued I/O fails with -EIO after this many seconds (0 = only when the controller is lost). Default 0.', 0),
  psk: s('TLS pre-shared key; TLS is not supported (rejected).'),
  max_bdevs: i('Most namespaces to expose as bdevs (default 128).', 0),
  dhchap_key: s('DH-HMAC-CHAP key; in-band authentication is not supported (rejected).'),
  dhchap_ctrlr_key: s('DH-HMAC-CHAP controller key; not supported (rejected).'),
  allow_unrecognized_csi: b('Expose namespaces of unknown command sets (accepted; only NVM namespaces are exposed).'),
  multipath_opts: { type: 'object', description: 'Multipath policy options (accepted for SPDK compatibility; not used).' },
};

const DETACH_PARAMS: Record<string, ParamSchema> = {
  name: { type: 'string', minLength: 1, description: 'Name of the controller to detach.' },
  trtype: s('Detach only if the path has this transport type.'),
  traddr: s('Detach only if the path has this transport address.'),
  adrfam: s('Detach only if the path has this address family.'),
  trsvcid: s('Detach only if the path has this transport service id.'),
  subnqn: s('Detach only if the path has this subsystem NQN.'),
  hostaddr: s('Accepted for SPDK compatibility; not used.'),
  hostsvcid: s('Accepted for SPDK compatibility; not used.'),
};

/** The module's JSON-RPC methods (names, params and results of SPDK's bdev_nvme_rpc.c). */
export function nvmeRpcMethods(m: NvmeBdevModule): RpcMethod[] {
  const attach: RpcMethod<NvmeAttachParams> = {
    name: 'bdev_nvme_attach_controller',
    description: 'Attach an NVMe controller (NVMe/TCP, or PCIe through VFIO) and create one bdev per active namespace; returns the array of bdev names.',
    params: { properties: ATTACH_PARAMS, required: ['name', 'trtype', 'traddr'] },
    handler: (p) => m.attach(p),
  };
  const detach: RpcMethod<NvmeDetachParams> = {
    name: 'bdev_nvme_detach_controller',
    description: 'Detach an NVMe controller: its bdevs are hot-removed, then a normal shutdown (CC.SHN) is sent and the connections closed.',
    params: { properties: DETACH_PARAMS, required: ['name'] },
    handler: async (p) => {
      await m.detach(p);
      return true;
    },
  };
  const get: RpcMethod<{ name?: string }> = {
    name: 'bdev_nvme_get_controllers',
    description: 'List NVMe controllers with their state, transport id, controller id and host.',
    params: { properties: { name: { type: 'string', minLength: 1, description: 'Only this controller (-22 if it does not exist).' } } },
    handler: (p) => m.getControllers(p.name),
  };
  return [attach, detach, get];
}
