/**
 * @blockwork/bdev-aio — the Linux AIO bdev ("AIO disk"), SPDK's `aio` module for Blockwork.
 *
 * A regular file or block device opened with O_DIRECT (buffered if the filesystem refuses it) and
 * driven through raw io_submit: one kernel AIO context per channel, one io_submit per event-loop
 * turn, completions reaped in batches from the kernel's ring via an eventfd on Node's loop.
 * RPC methods: bdev_aio_create, bdev_aio_delete, bdev_aio_rescan (see docs/bdev-aio.md).
 *
 * @example
 * import 'reflect-metadata';
 * import { BdevLayer, createLogger, io } from '@blockwork/core';
 * import { AioBdevModule } from '@blockwork/bdev-aio';
 * const layer = new BdevLayer();
 * const aio = new AioBdevModule(layer, createLogger('info'));
 * aio.create({ name: 'aio0', filename: '/var/lib/disk.img', block_size: 4096, fallocate: true });
 * const ch = layer.open('aio0', true).getIoChannel();
 * await io.write(ch, buf, 0, 8); // buf: 8 × 4096 bytes, bounced if not 4096-aligned
 */
import { type BlockworkPlugin, Tokens } from '@blockwork/core';
import { Lifecycle } from 'tsyringe';
import { AioBdevModule } from './aio-bdev-module';

export { AioBdevModule } from './aio-bdev-module';
export { AioBdev, type AioCreateParams } from './aio-bdev';
export { AioChannel, AIO_DEPTH, type AioTarget } from './aio-channel';
export { AIO_ERRORS, type AioErrorCode, aioError } from './errors';

/** The plugin object the daemon's loader reads. `register` only registers. */
export const plugin: BlockworkPlugin = {
  name: '@blockwork/bdev-aio',
  core: '^0.1.0',
  register(c) {
    c.register(Tokens.BdevModule, { useClass: AioBdevModule }, { lifecycle: Lifecycle.ContainerScoped });
  },
};

export default plugin;
