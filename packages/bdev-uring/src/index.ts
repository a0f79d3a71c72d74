/**
 * @blockwork/bdev-uring — bdevs on files and block devices through io_uring (raw system calls, no
 * liburing). One ring per channel; submissions are batched into one io_uring_enter per event-loop
 * turn and completions reach JS in one callback per batch from an eventfd on Node's loop.
 * Misaligned buffers are bounced through aligned copies. See docs/bdev-uring.md.
 *
 * @example
 * // config: { "plugins": ["@blockwork/bdev-uring"], "subsystems": [{ "subsystem": "bdev", "config": [
 * //   { "method": "bdev_uring_create", "params": { "filename": "/var/lib/disk.img", "name": "uring0" } } ] }] }
 * import { plugin } from '@blockwork/bdev-uring';
 * plugin.register(container); // then resolveAll(Tokens.BdevModule) includes UringBdevModule
 */
import { type BlockworkPlugin, Tokens } from '@blockwork/core';
import { Lifecycle } from 'tsyringe';
import { UringBdevModule } from './uring-bdev-module';

export const plugin: BlockworkPlugin = {
  name: '@blockwork/bdev-uring',
  core: '^0.1.0',
  register(c) {
    c.register(Tokens.BdevModule, { useClass: UringBdevModule }, { lifecycle: Lifecycle.ContainerScoped });
  },
};

export default plugin;

export { UringBdevModule } from './uring-bdev-module';
export { UringBdev } from './uring-bdev';
export type { UringCreateParams } from './rpc';
export type { UringFile } from './uring-file';
export { URING_ERRORS, type UringErrorCode } from './errors';
