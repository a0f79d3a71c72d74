import { type BdevLayer, type ConfigEntry, inject, injectable, type Logger, type RpcMethod, type Subsystem, Tokens } from '@blockwork/core';
import { NbdServer } from './nbd-server';
import { nbdServerRpcMethods } from './rpc';

/**
 * The "nbd" subsystem: the NBD export server, its RPC methods and its part of save_config. Depends
 * on bdev, so the server stops (connections dropped, descriptors closed) before bdevs go away.
 */
@injectable()
export class NbdSubsystem implements Subsystem {
  readonly name = 'nbd';
  readonly dependsOn: readonly string[] = ['bdev'];
  /** The export server (not listening until nbd_server_start). */
  readonly server: NbdServer;

  constructor(
    @inject(Tokens.BdevLayer) layer: BdevLayer,
    @inject(Tokens.Logger) log: Logger,
  ) {
    this.server = new NbdServer(layer, log);
  }

  rpcMethods(): RpcMethod[] {
    return nbdServerRpcMethods(this.server);
  }

  async fini(): Promise<void> {
    await this.server.shutdown();
  }

  /** nbd_server_start (when listening) then one nbd_server_add_export per export. */
  config(): ConfigEntry[] {
    const out: ConfigEntry[] = [];
    const start = this.server.startParams();
    if (start) out.push({ method: 'nbd_server_start', params: { ...start } });
    for (const p of this.server.exportParams()) out.push({ method: 'nbd_server_add_export', params: { ...p } });
    return out;
  }
}
