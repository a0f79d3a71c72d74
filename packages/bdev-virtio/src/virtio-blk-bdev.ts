import { createHash } from 'node:crypto';
import type { Bdev, BdevChannel, BdevIo, BdevModule, ConfigEntry, DriverDone } from '@blockwork/core';
import { IoType } from '@blockwork/core';
import { VirtioBlkFeature as BF } from '@blockwork/vhost-user';
import { DmaPool } from './dma-pool';
import type { VirtioAttachParams } from './rpc';
import type { VirtioBlkDriver } from './virtio-blk-driver';
import type { VirtQueue } from './virtqueue';

/** A channel uses one queue (round-robin over the controller's queues); channels may share a queue. */
class VirtioChannel implements BdevChannel {
  constructor(private readonly vq: VirtQueue) {}

  submit(io: BdevIo, done: DriverDone): void {
    this.vq.submit(io, done);
  }

  /** Waits for everything on the queue (the queue is shared, so this may wait for other channels' I/O too). */
  close(): Promise<void> {
    return this.vq.drain();
  }
}

/**
 * A virtio-blk device reached over vhost-user, as a bdev. Data of plain buffers is bounced through
 * the shared memfd; buffers from `allocDmaBuffer` are used in place (zero copy).
 */
export class VirtioBlkBdev implements Bdev {
  readonly aliases: string[] = [];
  readonly productName = 'VirtioBlk Disk';
  /** Derived from name and socket path (the RPC has no uuid param), so a replayed config gives the same uuid. */
  readonly uuid: string;
  readonly requiredAlignment = 1;
  readonly splitOnOptimalIoBoundary = true;
  // Plain fields, not getters: the layer reads them on every I/O.
  readonly blockSize: number;
  /** The bounce chunk size in blocks: the layer splits larger I/Os on this boundary. */
  readonly optimalIoBoundary: number;
  readonly writeCache: boolean;
  numBlocks: number;
  private nextQueue = 0;
  private readonly dma: DmaPool;
  private destructed = false;

  constructor(
    readonly name: string,
    readonly module: BdevModule,
    readonly driver: VirtioBlkDriver,
    private readonly params: VirtioAttachParams,
    private readonly onDestruct: (b: VirtioBlkBdev) => void,
  ) {
    this.uuid = nameUuid(`${name}\0${params.traddr}`);
    this.blockSize = driver.limits.blockSize;
    this.optimalIoBoundary = Math.floor(driver.layout!.queues[0].chunkSize / this.blockSize);
    this.writeCache = driver.has(BF.FLUSH);
    this.numBlocks = Math.floor(driver.capacityBytes / this.blockSize);
    const L = driver.layout!;
    this.dma = new DmaPool(driver.mem!.buffer, L.dmaOff, L.dmaSize);
  }


  ioTypeSupported(type: IoType): boolean {
    const d = this.driver;
    switch (type) {
      case IoType.READ: return true;
      case IoType.WRITE: return !d.has(BF.RO);
      case IoType.FLUSH: return d.has(BF.FLUSH);
      case IoType.UNMAP: return d.has(BF.DISCARD) && !d.has(BF.RO);
      case IoType.WRITE_ZEROES: return d.has(BF.WRITE_ZEROES) && !d.has(BF.RO);
      default: return false;
    }
  }

  createChannel(): BdevChannel {
    const q = this.driver.queues[this.nextQueue++ % this.driver.queues.length];
    return new VirtioChannel(q);
  }

  /**
   * Zero-copy buffers: a view of `bytes` of the shared memory (rounded to 4 KiB inside), or null
   * when the area (VirtioBlkDriverOptions.dmaSize, 4 MiB by default) is full. Read/write I/Os whose
   * every buffer comes from here skip the bounce copy. Release with `freeDmaBuffer`.
   */
  allocDmaBuffer(bytes: number): Uint8Array | null {
    return this.dma.alloc(bytes);
  }

  freeDmaBuffer(buf: Uint8Array): boolean {
    return this.dma.release(buf);
  }

  /** After unregister: GET_VRING_BASE per queue and close (the layer already drained the channels). */
  async destruct(): Promise<void> {
    if (this.destructed) return;
    this.destructed = true;
    try {
      await this.driver.stop();
    } catch {
      this.driver.close();
    }
    this.onDestruct(this);
  }

  driverSpecific(): Record<string, unknown> {
    const d = this.driver;
    return {
      virtio: {
        trtype: 'user', traddr: this.params.traddr, vq_count: this.params.vq_count ?? 1, vq_size: this.params.vq_size ?? 256,
        features: `0x${d.features.toString(16)}`, device_features: `0x${d.deviceFeatures.toString(16)}`,
        protocol_features: `0x${d.client.protocolFeatures.toString(16)}`, max_queues: d.maxQueues,
      },
    };
  }

  configEntry(): ConfigEntry {
    return { method: 'bdev_virtio_attach_controller', params: { ...this.params } };
  }
}

/** An RFC 4122 version-5-style uuid (SHA-1 of the text). */
function nameUuid(text: string): string {
  const h = createHash('sha1').update(text).digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
