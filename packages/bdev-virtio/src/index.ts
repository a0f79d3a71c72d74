/**
 * @blockwork/bdev-virtio — a vhost-user-blk front end as a bdev (SPDK's bdev_virtio with
 * trtype "user"): drives qemu-storage-daemon, SPDK or Blockwork's own target from the host, for
 * measuring targets and as a building block. Guest memory is one memfd of its own (rings, request
 * headers, bounce chunks, a zero-copy area). `VirtioBlkDriver` and `RawQueue` are the low-level
 * layer, also used by target tests to send hostile input. See docs/bdev-virtio.md.
 *
 * @example
 * // config: { "plugins": ["@blockwork/bdev-virtio"], "subsystems": [{ "subsystem": "bdev", "config": [
 * //   { "method": "bdev_virtio_attach_controller",
 * //     "params": { "name": "VirtioBlk0", "trtype": "user", "traddr": "/run/vhost.0", "dev_type": "blk" } } ] }] }
 */
import { type BlockworkPlugin, Lifecycle, Tokens } from '@blockwork/core';
import { VirtioBdevModule } from './virtio-bdev-module';

export const plugin: BlockworkPlugin = {
  name: '@blockwork/bdev-virtio',
  core: '^0.1.0',
  register(c) {
    c.register(Tokens.BdevModule, { useClass: VirtioBdevModule }, { lifecycle: Lifecycle.ContainerScoped });
  },
};

export default plugin;

export { VirtioBdevModule } from './virtio-bdev-module';
export { VirtioBlkBdev } from './virtio-blk-bdev';
export { VirtioBlkDriver, type VirtioBlkDriverOptions } from './virtio-blk-driver';
export { RawQueue, type RawDesc } from './raw-queue';
export { VhostUserClient } from './vhost-user-client';
export type { VirtQueue, BlkLimits } from './virtqueue';
export type { MemoryLayout, QueueLayout } from './memory-layout';
export type { VirtioAttachParams } from './rpc';
export { VIRTIO_ERRORS, virtioError, type VirtioErrorCode } from './errors';
