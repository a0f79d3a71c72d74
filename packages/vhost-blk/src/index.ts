/**
 * @blockwork/vhost-blk — the vhost-user-blk target: serves bdevs to QEMU guests (and to
 * @blockwork/bdev-virtio) over vhost-user sockets. Split virtqueues with indirect descriptors and
 * EVENT_IDX, multiple queues, zero-copy views of guest memory as bdev buffers, one bdev I/O per
 * request and one call signal per batch of completions. RPC methods as SPDK's:
 * vhost_create_blk_controller, vhost_get_controllers, vhost_delete_controller,
 * vhost_controller_set_coalescing. See docs/vhost-blk.md.
 *
 * @example
 * // config: { "plugins": ["@blockwork/vhost-blk"], "subsystems": [
 * //   { "subsystem": "bdev", "config": [{ "method": "bdev_malloc_create", "params": { "name": "Malloc0", "num_blocks": 131072, "block_size": 512 } }] },
 * //   { "subsystem": "vhost_blk", "config": [{ "method": "vhost_create_blk_controller", "params": { "ctrlr": "vhost.0", "dev_name": "Malloc0" } }] } ] }
 * // qemu ... -chardev socket,id=c0,path=<socketDir>/vhost.0 -device vhost-user-blk-pci,chardev=c0,num-queues=2
 * // client mode (recommended for hot upgrade): params { ..., "client": true } and QEMU listens:
 * // qemu ... -chardev socket,id=c0,path=<socketDir>/vhost.0,server=on,wait=off -device vhost-user-blk-pci,chardev=c0
 * import { plugin } from '@blockwork/vhost-blk';
 * plugin.register(container); // registers VhostBlkSubsystem under Tokens.Subsystem
 */
import { type BlockworkPlugin, Lifecycle, Tokens } from '@blockwork/core';
import { VhostBlkSubsystem } from './vhost-blk-subsystem';

export const plugin: BlockworkPlugin = {
  name: '@blockwork/vhost-blk',
  core: '^0.1.0',
  register(c) {
    c.register(Tokens.Subsystem, { useClass: VhostBlkSubsystem }, { lifecycle: Lifecycle.ContainerScoped });
  },
};

export default plugin;

export { VhostBlkSubsystem, cpumaskHex } from './vhost-blk-subsystem';
export { VhostBlkController } from './vhost-blk-controller';
export { VhostBlkSession } from './vhost-blk-session';
export { VHOST_BLK_ERRORS, type VhostBlkErrorCode, VhostBlkError } from './errors';
export type { CreateBlkControllerParams, SetCoalescingParams } from './rpc';
export { GuestMemory } from './guest-memory';
export { SplitVirtqueue } from './virtqueue';
