import { randomUUID } from 'node:crypto';
import { closeSync } from 'node:fs';
import { type BdevLayer, type BdevModule, coreError, type Logger, type RpcMethod, Tokens } from '@blockwork/core';
import { inject, injectable } from 'tsyringe';
import { uringError } from './errors';
import { type UringCreateParams, uringRpcMethods } from './rpc';
import { UringBdev } from './uring-bdev';
import { assertUringUsable, openBackingFile } from './uring-file';

/** The io_uring bdev module ("uring"): creates, deletes and rescans uring bdevs. */
@injectable()
export class UringBdevModule implements BdevModule {
  readonly name = 'uring';
  private readonly bdevs = new Map<string, UringBdev>();

  constructor(
    @inject(Tokens.BdevLayer) private readonly layer: BdevLayer,
    @inject(Tokens.Logger) private readonly log: Logger,
  ) {}

  rpcMethods(): RpcMethod[] {
    return uringRpcMethods(this);
  }

  /** Names of the bdevs this module created and that still exist. */
  bdevNames(): string[] {
    return [...this.bdevs.keys()];
  }

  /** Opens the backing file and registers the bdev. Returns its name. Synchronous. */
  create(p: UringCreateParams): string {
    if (this.layer.get(p.name)) throw coreError('BDEV_EXISTS', `bdev name or alias '${p.name}' already exists`);
    assertUringUsable();
    const file = openBackingFile(p.filename, p.block_size, this.log);
    const uuid = (p.uuid ?? randomUUID()).toLowerCase();
    const bdev = new UringBdev(p.name, uuid, this, file, p.block_size, this.log, (b) => {
      if (this.bdevs.get(b.name) === b) this.bdevs.delete(b.name);
    });
    try {
      this.layer.register(bdev);
    } catch (e) {
      closeSync(file.fd);
      throw e;
    }
    this.bdevs.set(p.name, bdev);
    this.log.info({ bdev: p.name, filename: p.filename, blockSize: file.blockSize, numBlocks: bdev.numBlocks, direct: file.direct },
      'uring bdev created');
    return p.name;
  }

  /** Unregisters through the layer (I/O in flight completes first) and closes the file. */
  async delete(name: string): Promise<void> {
    await this.layer.unregister(this.own(name).name);
  }

  /** Re-reads the backing size, updates numBlocks and notifies descriptor owners. */
  rescan(name: string): void {
    const bdev = this.own(name);
    const before = bdev.numBlocks;
    if (bdev.rescan() !== before) this.layer.notifyResize(bdev.name);
  }

  private own(name: string): UringBdev {
    const b = this.layer.require(name);
    const mine = this.bdevs.get(b.name);
    if (mine !== b) throw uringError('URING_NOT_URING_BDEV', `bdev '${name}' is not a uring bdev`);
    return mine;
  }
}
