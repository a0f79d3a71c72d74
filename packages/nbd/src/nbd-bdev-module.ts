import { randomUUID } from 'node:crypto';
import { type BdevLayer, type BdevModule, coreError, inject, injectable, type Logger, type RpcMethod, Tokens } from '@blockwork/core';
import type { NbdTarget } from './client-negotiation';
import { nbdError } from './errors';
import { NbdBdev } from './nbd-bdev';
import { NbdClient } from './nbd-client';
import { type NbdAttachParams, nbdBdevRpcMethods } from './rpc';

/** Connect + negotiation timeout of bdev_nbd_attach, in ms. */
export const ATTACH_TIMEOUT_MS = 10000;

/** The NBD client bdev module ("nbd"): attaches NBD exports as bdevs and detaches them. */
@injectable()
export class NbdBdevModule implements BdevModule {
  readonly name = 'nbd';
  private readonly bdevs = new Map<string, NbdBdev | null>();

  constructor(
    @inject(Tokens.BdevLayer) private readonly layer: BdevLayer,
    @inject(Tokens.Logger) private readonly log: Logger,
  ) {}

  rpcMethods(): RpcMethod[] {
    return nbdBdevRpcMethods(this);
  }

  /** Connects, negotiates and registers the bdev. Async; returns its name. */
  async attach(p: NbdAttachParams): Promise<string> {
    if (this.layer.get(p.name) || this.bdevs.has(p.name)) throw coreError('BDEV_EXISTS', `bdev name or alias '${p.name}' already exists`);
    if (p.socket !== undefined && (p.address !== undefined || p.port !== undefined)) {
      throw nbdError('NBD_ADDRESS', `bdev_nbd_attach ${p.name}: give socket, or address/port, not both`);
    }
    if (p.block_size !== undefined && p.block_size % 512 !== 0) {
      throw nbdError('NBD_GEOMETRY', `bdev_nbd_attach ${p.name}: block_size ${p.block_size} is not a multiple of 512`);
    }
    const target: NbdTarget = p.socket !== undefined
      ? { socket: p.socket, exportName: p.export_name ?? '' }
      : { address: p.address ?? '127.0.0.1', port: p.port, exportName: p.export_name ?? '' };
    // Reserve the name while connecting, so two concurrent attaches cannot both win.
    this.bdevs.set(p.name, null);
    let client: NbdClient | null = null;
    try {
      client = await NbdClient.connect(target, ATTACH_TIMEOUT_MS, () => {});
      const info = client.info;
      const bs = p.block_size ?? Math.max(512, info.minBlock);
      if (bs < info.minBlock || bs % info.minBlock !== 0) {
        throw nbdError('NBD_GEOMETRY', `bdev ${p.name}: block_size ${bs} is below the server's minimum ${info.minBlock}`);
      }
      if (info.size < bs) throw nbdError('NBD_GEOMETRY', `bdev ${p.name}: export of ${info.size} bytes is smaller than one block`);
      const bdev = new NbdBdev(p.name, (p.uuid ?? randomUUID()).toLowerCase(), this, bs, target, client, this.log, (b) => {
        if (this.bdevs.get(b.name) === b) this.bdevs.delete(b.name);
      });
      this.layer.register(bdev);
      this.bdevs.set(p.name, bdev);
      this.log.info({ bdev: p.name, target, size: info.size, blockSize: bs, flags: info.flags }, 'nbd bdev attached');
      return p.name;
    } catch (e) {
      if (this.bdevs.get(p.name) === null) this.bdevs.delete(p.name);
      client?.close();
      throw e;
    }
  }

  /** Unregisters through the layer (I/O in flight completes first), then disconnects. */
  async detach(name: string): Promise<void> {
    const b = this.layer.get(name);
    if (!b) throw coreError('BDEV_NOT_FOUND', `bdev '${name}' does not exist`);
    if (!(b instanceof NbdBdev) || this.bdevs.get(b.name) !== b) throw nbdError('NBD_NOT_NBD_BDEV', `bdev '${name}' is not an NBD bdev`);
    await this.layer.unregister(b.name);
  }
}
