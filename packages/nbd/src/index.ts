/**
 * @blockwork/nbd — NBD in both directions, pure TypeScript over TCP or Unix sockets: an export
 * server inside the daemon (subsystem "nbd": nbd_server_start, nbd_server_add_export, ...) that
 * serves bdevs to qemu, nbdkit's clients, nbd-client and other Blockwork daemons, and a client bdev
 * (module "nbd": bdev_nbd_attach) that makes a remote export a local bdev — the migration job's
 * remote target. Fixed newstyle negotiation with NBD_OPT_GO, simple replies only. See docs/nbd.md.
 *
 * @example
 * // destination daemon: { "method": "nbd_server_start", "params": { "listen_address": "127.0.0.1", "port": 10809 } },
 * //                     { "method": "nbd_server_add_export", "params": { "bdev": "Malloc0", "name": "disk" } }
 * // source daemon:      { "method": "bdev_nbd_attach", "params": { "name": "remote0", "address": "127.0.0.1", "export_name": "disk" } }
 * import { plugin } from '@blockwork/nbd';
 * plugin.register(container); // NbdBdevModule under Tokens.BdevModule, NbdSubsystem under Tokens.Subsystem
 */
import { type BlockworkPlugin, Lifecycle, Tokens } from '@blockwork/core';
import { NbdBdevModule } from './nbd-bdev-module';
import { NbdSubsystem } from './nbd-subsystem';

export const plugin: BlockworkPlugin = {
  name: '@blockwork/nbd',
  core: '^0.1.0',
  register(c) {
    c.register(Tokens.BdevModule, { useClass: NbdBdevModule }, { lifecycle: Lifecycle.ContainerScoped });
    c.register(Tokens.Subsystem, { useClass: NbdSubsystem }, { lifecycle: Lifecycle.ContainerScoped });
  },
};

export default plugin;

export { NbdBdevModule } from './nbd-bdev-module';
export { NbdBdev } from './nbd-bdev';
export { NbdSubsystem } from './nbd-subsystem';
export { NbdServer, type NbdServerStartParams, type NbdAddExportParams } from './nbd-server';
export type { NbdExportInfo } from './nbd-export';
export type { NbdAttachParams } from './rpc';
export { NBD_ERRORS, type NbdErrorCode } from './errors';
