/**
 * @blockwork/bdev-nvme — Blockwork's user-space NVMe driver, as SPDK's bdev_nvme: the daemon
 * speaks NVMe itself, with no kernel block layer in the path. A transport-independent core
 * (queue pairs with command ids and timeouts, controller initialisation, Identify, namespaces as
 * bdevs `<ctrlr>n<nsid>`) and the NVMe/TCP transport (TP 8000: ICReq/ICResp, capsules,
 * R2T/H2CData, C2HData, CRC32C digests, Fabrics Connect and Property Get/Set, discovery) in
 * plain TypeScript over Node's net module, and the PCIe transport over VFIO (a small native
 * addon opens the device, maps BAR0 and DMA memory; queues, PRPs and polling are TypeScript) for
 * a device bound to vfio-pci behind an IOMMU. See docs/bdev-nvme.md.
 *
 * @example
 * // config: { "plugins": ["@blockwork/bdev-nvme"], "subsystems": [{ "subsystem": "bdev", "config": [
 * //   { "method": "bdev_nvme_attach_controller", "params": { "name": "Nvme0", "trtype": "TCP",
 * //     "traddr": "127.0.0.1", "trsvcid": "4420", "subnqn": "nqn.2016-06.io.example:disk1" } } ] }] }
 * // → bdev "Nvme0n1"; PCIe: { "name": "Nvme1", "trtype": "PCIe", "traddr": "0000:00:04.0" } → "Nvme1n1"
 * import { plugin } from '@blockwork/bdev-nvme';
 * plugin.register(container); // then resolveAll(Tokens.BdevModule) includes NvmeBdevModule
 */
import { type BlockworkPlugin, Lifecycle, Tokens } from '@blockwork/core';
import { NvmeBdevModule } from './nvme-bdev-module';

export const plugin: BlockworkPlugin = {
  name: '@blockwork/bdev-nvme',
  core: '^0.1.0',
  register(c) {
    c.register(Tokens.BdevModule, { useClass: NvmeBdevModule }, { lifecycle: Lifecycle.ContainerScoped });
  },
};

export default plugin;

export { NvmeBdevModule } from './nvme-bdev-module';
export { NvmeBdev } from './nvme-bdev';
export { NvmeController, type ControllerOptions, type ControllerState, type PcieTransportId, type TcpTransportId, type TransportId } from './controller';
export type { NvmeTransport } from './transport';
export { discover } from './discovery';
export type { DiscoveryEntry, IdentifyController, IdentifyNamespace } from './identify';
export type { NvmeAttachParams, NvmeDetachParams } from './rpc';
export { NVME_ERRORS, type NvmeErrorCode } from './errors';
