import { type BdevLayer, type BdevModule, coreError, type Logger, type RpcMethod, Tokens, inject, injectable } from '@blockwork/core';
import { virtioError } from './errors';
import { type VirtioAttachParams, virtioRpcMethods } from './rpc';
import { VirtioBlkBdev } from './virtio-blk-bdev';
import { BackEndReconnect } from './back-end-reconnect';
import { VirtioBlkDriver } from './virtio-blk-driver';

/** The virtio bdev module ("virtio"): vhost-user-blk front-end controllers, one blk bdev each. */
@injectable()
export class VirtioBdevModule implements BdevModule {
  readonly name = 'virtio';
  private readonly controllers = new Map<string, VirtioBlkBdev>();
  private readonly attaching = new Set<string>();
  private readonly reconnecting = new Map<string, BackEndReconnect>();

  constructor(
    @inject(Tokens.BdevLayer) private readonly layer: BdevLayer,
    @inject(Tokens.Logger) private readonly log: Logger,
  ) {}

  rpcMethods(): RpcMethod[] {
    return virtioRpcMethods(this);
  }

  /** Names of the attached controllers (= their bdev names). */
  controllerNames(): string[] {
    return [...this.controllers.keys()];
  }

  /** Connects, negotiates, sets up memory and queues, registers the bdev. Returns the bdev name. */
  async attach(p: VirtioAttachParams): Promise<string> {
    if (p.trtype.toLowerCase() !== 'user') throw virtioError('VIRTIO_TRTYPE_UNSUPPORTED', `controller ${p.name}: trtype '${p.trtype}' is not supported (only 'user': vhost-user)`);
    if (p.dev_type.toLowerCase() !== 'blk') throw virtioError('VIRTIO_DEV_TYPE_UNSUPPORTED', `controller ${p.name}: dev_type '${p.dev_type}' is not supported (only 'blk')`);
    if (this.controllers.has(p.name) || this.attaching.has(p.name)) throw virtioError('VIRTIO_CONTROLLER_EXISTS', `virtio controller '${p.name}' already exists`);
    if (this.layer.get(p.name)) throw coreError('BDEV_EXISTS', `bdev name or alias '${p.name}' already exists`);
    this.attaching.add(p.name);
    try {
      const reconnect = p.reconnect_ms !== undefined;
      const driver = await VirtioBlkDriver.connect(p.traddr, { vqCount: p.vq_count ?? 1, vqSize: p.vq_size ?? 256, inflight: reconnect });
      await driver.start();
      const bdev = new VirtioBlkBdev(p.name, this, driver, p, (b) => {
        if (this.controllers.get(b.name) === b) this.controllers.delete(b.name);
        this.reconnecting.get(b.name)?.stop();
        this.reconnecting.delete(b.name);
      });
      if (reconnect) this.reconnecting.set(p.name, new BackEndReconnect(p, driver, this.log));
      else {
        driver.onDisconnect = (err) => {
          this.log.error({ controller: p.name, traddr: p.traddr, err: err.message }, 'vhost-user back end went away; I/O fails with -ENODEV until detach');
          driver.close();
        };
      }
      try {
        this.layer.register(bdev);
      } catch (e) {
        this.reconnecting.get(p.name)?.stop();
        this.reconnecting.delete(p.name);
        driver.close();
        throw e;
      }
      this.controllers.set(p.name, bdev);
      this.log.info({ controller: p.name, traddr: p.traddr, numBlocks: bdev.numBlocks, blockSize: bdev.blockSize, features: `0x${driver.features.toString(16)}` },
        'virtio-blk controller attached');
      return p.name;
    } finally {
      this.attaching.delete(p.name);
    }
  }

  /** Unregisters the bdev (in-flight I/O completes first), then stops the rings and disconnects. */
  async detach(name: string): Promise<void> {
    const bdev = this.controllers.get(name);
    if (bdev === undefined) throw virtioError('VIRTIO_CONTROLLER_NOT_FOUND', `no virtio controller named '${name}'`);
    // Waiting for a back end that may never come back: fail what is pending (-ENODEV) instead.
    const r = this.reconnecting.get(name);
    if (r?.down) {
      r.stop();
      bdev.driver.close();
    }
    await this.layer.unregister(bdev.name);
  }

  async fini(): Promise<void> {
    for (const r of this.reconnecting.values()) r.stop();
    this.reconnecting.clear();
    for (const b of this.controllers.values()) b.driver.close();
    this.controllers.clear();
  }
}
