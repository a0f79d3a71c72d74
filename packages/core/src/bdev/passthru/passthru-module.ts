import { inject, injectable } from 'tsyringe';
import { coreError } from '../../errors';
import { Tokens } from '../../tokens';
import type { BdevLayer } from '../bdev-layer';
import type { Bdev, BdevModule, ConfigEntry } from '../types';
import { PassthruBdev } from './passthru-bdev';
import { passthruRpcMethods } from './rpc';

interface Pending {
  name: string;
  baseName: string;
  uuid: string;
}

/**
 * The passthru module. As in SPDK, a passthru may be created before its base exists: it waits in
 * `pending` and attaches when the base is registered (examine), so saved configs replay in any order.
 */
@injectable()
export class PassthruBdevModule implements BdevModule {
  readonly name = 'passthru';
  private readonly pending = new Map<string, Pending>();

  constructor(@inject(Tokens.BdevLayer) readonly layer: BdevLayer) {}

  rpcMethods() {
    return passthruRpcMethods(this);
  }

  create(name: string, baseName: string, uuid: string): string {
    if (this.layer.get(name) || this.pending.has(name)) throw coreError('BDEV_EXISTS', `bdev '${name}' already exists`);
    const p = { name, baseName, uuid };
    if (this.layer.get(baseName)) this.attach(p);
    else this.pending.set(name, p);
    return name;
  }

  examine(bdev: Bdev): void {
    for (const p of this.pending.values()) {
      if (p.baseName !== bdev.name && !bdev.aliases.includes(p.baseName)) continue;
      this.pending.delete(p.name);
      try {
        this.attach(p);
      } catch {
        // Base claimed by someone else: stays unattached, as SPDK logs and moves on.
      }
    }
  }

  private attach(p: Pending): void {
    const desc = this.layer.open(p.baseName, true, (event) => {
      if (event === 'remove' && this.layer.get(p.name)) void this.layer.unregister(p.name);
    });
    try {
      desc.claim(this.name);
      this.layer.register(new PassthruBdev(this, p.name, p.uuid, desc));
    } catch (e) {
      desc.close();
      throw e;
    }
  }

  async delete(name: string): Promise<void> {
    if (this.pending.delete(name)) return;
    await this.layer.unregister(this.layer.requireOf(name, this).name);
  }

  /** Passthrus still waiting for their base are part of the config too. */
  moduleConfig(): ConfigEntry[] {
    return [...this.pending.values()].map((p) => ({
      method: 'bdev_passthru_create',
      params: { base_bdev_name: p.baseName, name: p.name, uuid: p.uuid },
    }));
  }
}
