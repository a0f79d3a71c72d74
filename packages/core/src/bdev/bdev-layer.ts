import { coreError } from '../errors';
import { IoStat } from './iostat';
import { IoChannel, SharedChannel } from './io-channel';
import type { Bdev, BdevFilter, BdevModule } from './types';

/** Events delivered to descriptor owners. */
export type BdevEvent = 'remove' | 'resize';
export type BdevEventCallback = (event: BdevEvent, bdev: Bdev) => void;

/** SPDK's claim types; Blockwork implements exclusive_write (one writer: the claiming module). */
export type ClaimType = 'exclusive_write';

interface BdevEntry {
  bdev: Bdev;
  stat: IoStat;
  descs: Set<BdevDesc>;
  claim: { module: string; type: ClaimType; desc: BdevDesc } | null;
  shared: SharedChannel | null;
  filters: BdevFilter[];
  removing: Promise<void> | null;
}

/**
 * An open handle on a bdev. Write access, claims and I/O channels hang off it; `close` when done.
 * The owner's event callback hears of hot-remove (then closes) and resize.
 */
export class BdevDesc {
  private channel: IoChannel | null = null;
  closed = false;

  constructor(
    private readonly layer: BdevLayer,
    readonly bdev: Bdev,
    readonly writable: boolean,
    readonly onEvent: BdevEventCallback,
  ) {}

  /** Takes an exclusive_write claim for `module`: no other descriptor may write while it holds. */
  claim(module: string, type: ClaimType = 'exclusive_write'): void {
    this.layer.claim(this, module, type);
  }

  /** Releases this descriptor's claim, if it holds one. */
  releaseClaim(): void {
    this.layer.releaseClaim(this);
  }

  /** The channel for I/O on this bdev from the current thread (created on first use). */
  getIoChannel(): IoChannel {
    if (this.closed) throw coreError('BDEV_REMOVED', `descriptor of bdev ${this.bdev.name} is closed`);
    if (this.channel === null) this.channel = new IoChannel(this.layer.sharedChannel(this.bdev), this.writable);
    return this.channel;
  }

  /** Closes the descriptor (and its claim). I/O already submitted still completes. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.layer.closeDesc(this);
  }
}

/**
 * The registry of bdevs by name, alias and uuid, with open descriptors, claims, per-bdev iostat
 * and hot-remove. One per daemon (Tokens.BdevLayer).
 */
export class BdevLayer {
  private readonly byName = new Map<string, BdevEntry>();
  private readonly ordered: BdevEntry[] = [];
  private examiners: BdevModule[] = [];

  /** Modules whose `examine` hears of every newly registered bdev (set by the daemon after composition). */
  setExaminers(modules: BdevModule[]): void {
    this.examiners = modules;
  }

  /** Registers a bdev; its name, aliases and uuid must all be unused. Then every module examines it. */
  register(bdev: Bdev): void {
    for (const n of [bdev.name, ...bdev.aliases, bdev.uuid]) {
      if (this.byName.has(n)) throw coreError('BDEV_EXISTS', `bdev name or alias '${n}' already exists`);
    }
    if (!Number.isInteger(bdev.blockSize) || bdev.blockSize < 512 || bdev.blockSize % 512 !== 0) {
      throw coreError('BDEV_INVALID', `bdev ${bdev.name}: block_size ${bdev.blockSize} is not a multiple of 512`);
    }
    const entry: BdevEntry = { bdev, stat: new IoStat(), descs: new Set(), claim: null, shared: null, filters: [], removing: null };
    for (const n of new Set([bdev.name, ...bdev.aliases, bdev.uuid])) this.byName.set(n, entry);
    this.ordered.push(entry);
    for (const m of this.examiners) m.examine?.(bdev);
  }

  /** Looks a bdev up by name, alias or uuid. */
  get(name: string): Bdev | undefined {
    return this.byName.get(name)?.bdev;
  }

  /** Like `get` but throws BDEV_NOT_FOUND. */
  require(name: string): Bdev {
    const b = this.get(name);
    if (!b) throw coreError('BDEV_NOT_FOUND', `bdev '${name}' does not exist`);
    return b;
  }

  /** The bdev `name` if `module` created it (delete RPCs), else BDEV_NOT_FOUND naming the module. */
  requireOf(name: string, module: BdevModule): Bdev {
    const b = this.get(name);
    if (!b || b.module !== module) throw coreError('BDEV_NOT_FOUND', `no ${module.name} bdev named '${name}'`);
    return b;
  }

  /** All bdevs in registration order. */
  list(): Bdev[] {
    return this.ordered.map((e) => e.bdev);
  }

  stat(name: string): IoStat {
    return this.entry(name).stat;
  }

  /** Current claim of a bdev, for bdev_get_bdevs. */
  claimOf(name: string): { module: string; type: ClaimType } | null {
    const c = this.entry(name).claim;
    return c ? { module: c.module, type: c.type } : null;
  }

  /** Opens a descriptor. A write open of a claimed bdev fails with BDEV_CLAIMED. */
  open(name: string, write: boolean, onEvent: BdevEventCallback = () => {}): BdevDesc {
    const entry = this.entry(name);
    if (entry.removing) throw coreError('BDEV_REMOVED', `bdev '${name}' is being removed`);
    if (write && entry.claim) {
      throw coreError('BDEV_CLAIMED', `bdev '${entry.bdev.name}' is claimed (${entry.claim.type}) by module ${entry.claim.module}`);
    }
    const desc = new BdevDesc(this, entry.bdev, write, onEvent);
    entry.descs.add(desc);
    return desc;
  }

  claim(desc: BdevDesc, module: string, type: ClaimType): void {
    const entry = this.entry(desc.bdev.name);
    if (entry.claim && entry.claim.desc !== desc) {
      throw coreError('BDEV_CLAIMED', `bdev '${desc.bdev.name}' is already claimed by module ${entry.claim.module}`);
    }
    for (const d of entry.descs) {
      if (d !== desc && d.writable) {
        throw coreError('BDEV_CLAIMED', `bdev '${desc.bdev.name}' has another writer; module ${module} cannot claim it`);
      }
    }
    entry.claim = { module, type, desc };
  }

  releaseClaim(desc: BdevDesc): void {
    const entry = this.byName.get(desc.bdev.name);
    if (entry?.claim?.desc === desc) entry.claim = null;
  }

  closeDesc(desc: BdevDesc): void {
    const entry = this.byName.get(desc.bdev.name);
    if (!entry || entry.bdev !== desc.bdev) return;
    entry.descs.delete(desc);
    if (entry.claim?.desc === desc) entry.claim = null;
  }

  sharedChannel(bdev: Bdev): SharedChannel {
    const entry = this.entry(bdev.name);
    if (entry.shared === null) entry.shared = new SharedChannel(bdev, bdev.createChannel(), entry.stat, entry.filters);
    return entry.shared;
  }

  /**
   * Puts a filter in front of the bdev's driver, under every descriptor already open and every one
   * opened later, effective for the next I/O submitted. Returns the function that removes it.
   */
  insertFilter(name: string, filter: BdevFilter): () => void {
    const entry = this.entry(name);
    entry.filters.push(filter);
    entry.shared?.setFilters(entry.filters);
    return () => {
      const i = entry.filters.indexOf(filter);
      if (i < 0) return;
      entry.filters.splice(i, 1);
      entry.shared?.setFilters(entry.filters);
    };
  }

  /** Tells descriptor owners the bdev's size changed (after the module updated numBlocks). */
  notifyResize(name: string): void {
    const entry = this.entry(name);
    for (const d of [...entry.descs]) d.onEvent('resize', entry.bdev);
  }

  /**
   * Hot-remove: new I/O fails with -ENODEV at once, descriptor owners hear 'remove', I/O in flight
   * completes, then the driver channel is closed and the bdev destructed. Resolves when all is done.
   */
  unregister(name: string): Promise<void> {
    const entry = this.entry(name);
    if (entry.removing) return entry.removing;
    entry.removing = this.remove(entry);
    return entry.removing;
  }

  private async remove(entry: BdevEntry): Promise<void> {
    if (entry.shared) entry.shared.removed = true;
    for (const d of [...entry.descs]) {
      try {
        d.onEvent('remove', entry.bdev);
      } catch {
        // An owner's failing callback must not stop the removal of the bdev.
      }
    }
    if (entry.shared) {
      await entry.shared.drained();
      await entry.shared.base.close();
    }
    for (const [n, e] of this.byName) if (e === entry) this.byName.delete(n);
    this.ordered.splice(this.ordered.indexOf(entry), 1);
    await entry.bdev.destruct();
  }

  /** Whether any descriptor or claim keeps the bdev in use. */
  inUse(name: string): boolean {
    const e = this.entry(name);
    return e.descs.size > 0 || e.claim !== null;
  }

  private entry(name: string): BdevEntry {
    const e = this.byName.get(name);
    if (!e) throw coreError('BDEV_NOT_FOUND', `bdev '${name}' does not exist`);
    return e;
  }
}
