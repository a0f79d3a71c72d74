import { vringSizes } from '@blockwork/vhost-user';

/** Where one queue's parts live in the front end's memfd (byte offsets = guest addresses). */
export interface QueueLayout {
  index: number;
  /** Queue size (descriptors), a power of two. */
  size: number;
  descOff: number;
  availOff: number;
  usedOff: number;
  /** 64 bytes per descriptor index: request header, discard segment, status byte. */
  hdrOff: number;
  /** Bounce chunks for data (the caller's buffers are not in shared memory). */
  chunkOff: number;
  chunkCount: number;
  chunkSize: number;
}

export interface MemoryLayout {
  /** Total memfd size in bytes. */
  size: number;
  queues: QueueLayout[];
  /** Start and size of the area handed out by VirtioBlkBdev.allocDmaBuffer (zero-copy I/O). */
  dmaOff: number;
  dmaSize: number;
}

const PAGE = 4096;
const up = (x: number, a: number) => Math.ceil(x / a) * a;

/**
 * Lays out the memfd. The first page is left unused so no ring or buffer sits at guest address 0,
 * which some back ends treat as "not set". Every part is page-aligned (more than the 16/2/4-byte
 * alignment virtio requires for desc/avail/used).
 */
export function computeLayout(vqCount: number, vqSize: number, chunkSize: number, dmaSize: number): MemoryLayout {
  // Each request takes at least 3 descriptors, so more chunks than size/3 would never be used.
  const chunkCount = Math.max(1, Math.min(128, Math.floor(vqSize / 3)));
  const sz = vringSizes(vqSize);
  let off = PAGE;
  const queues: QueueLayout[] = [];
  for (let index = 0; index < vqCount; index++) {
    const descOff = off;
    const availOff = descOff + up(sz.desc, PAGE);
    const usedOff = availOff + up(sz.avail, PAGE);
    const hdrOff = usedOff + up(sz.used, PAGE);
    const chunkOff = hdrOff + up(64 * vqSize, PAGE);
    off = chunkOff + chunkCount * chunkSize;
    queues.push({ index, size: vqSize, descOff, availOff, usedOff, hdrOff, chunkOff, chunkCount, chunkSize });
  }
  const dmaOff = off;
  return { size: up(dmaOff + dmaSize, PAGE), queues, dmaOff, dmaSize };
}
