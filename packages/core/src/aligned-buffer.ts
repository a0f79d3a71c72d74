import { coreError } from './errors';
import { coreNative } from './native';

/**
 * Allocates a zero-filled I/O buffer whose address and length suit O_DIRECT and DMA.
 * `size` in bytes; `alignment` in bytes, a power of two (default 4096, a page). The memory is freed
 * when the Buffer is garbage-collected.
 */
export function allocAligned(size: number, alignment = 4096): Buffer {
  if (!Number.isInteger(size) || size < 0) throw coreError('MEMORY_ALIGNMENT', `buffer size ${size} is not a non-negative integer`);
  if (!Number.isInteger(alignment) || alignment < 1 || (alignment & (alignment - 1)) !== 0) {
    throw coreError('MEMORY_ALIGNMENT', `alignment ${alignment} is not a power of two`);
  }
  return coreNative().allocAligned(size, alignment);
}

/** Whether every buffer's address and length are multiples of `alignment` bytes. */
export function isAligned(iovs: readonly Uint8Array[], alignment: number): boolean {
  if (alignment <= 1) return true;
  const n = coreNative();
  for (const iov of iovs) {
    if (iov.length % alignment !== 0 || n.addressAlignment(iov) < alignment) return false;
  }
  return true;
}
