/**
 * @blockwork/bdev-rbd — bdevs on Ceph RBD images through librbd, which is loaded with dlopen at run
 * time (the package builds and installs without Ceph; RPCs then answer "librbd not found"). Named
 * cluster connections are shared by the bdevs that name them. Submissions are batched into one
 * native call per event-loop turn; completions come back from librbd's threads through one wakeup
 * per batch. A dead cluster fails I/O with -ETIMEDOUT after rados_osd_op_timeout (default 30 s).
 * See docs/bdev-rbd.md.
 *
 * @example
 * // config: { "plugins": ["@blockwork/bdev-rbd"], "subsystems": [{ "subsystem": "bdev", "config": [
 * //   { "method": "bdev_rbd_register_cluster", "params": { "name": "c0", "config_file": "/etc/ceph/ceph.conf" } },
 * //   { "method": "bdev_rbd_create", "params": { "name": "rbd0", "cluster_name": "c0", "pool_name": "rbd",
 * //     "rbd_name": "vm1", "block_size": 512 } } ] }] }
 * import { plugin } from '@blockwork/bdev-rbd';
 * plugin.register(container); // then resolveAll(Tokens.BdevModule) includes RbdBdevModule
 */
import { type BlockworkPlugin, Lifecycle, Tokens } from '@blockwork/core';
import { RbdBdevModule } from './rbd-bdev-module';

export const plugin: BlockworkPlugin = {
  name: '@blockwork/bdev-rbd',
  core: '^0.1.0',
  register(c) {
    c.register(Tokens.BdevModule, { useClass: RbdBdevModule }, { lifecycle: Lifecycle.ContainerScoped });
  },
};

export default plugin;

export { RbdBdevModule } from './rbd-bdev-module';
export { RbdBdev } from './rbd-bdev';
export type { RbdCreateParams, RbdRegisterClusterParams } from './rpc';
export { DEFAULT_TIMEOUT_SEC, type ConnectionSpec } from './rbd-connection';
export { RBD_ERRORS, type RbdErrorCode } from './errors';
