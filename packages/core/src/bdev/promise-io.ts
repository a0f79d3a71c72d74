import { ioStatusText, BlockworkError } from '../errors';
import type { IoChannel } from './io-channel';
import { IoType } from './types';

/** Rejection of a promise-based I/O: carries the negative errno status. */
export class IoError extends BlockworkError {
  constructor(readonly status: number, what: string) {
    super('BDEV_IO_FAILED', -status, `${what} failed: ${ioStatusText(status)}`);
  }
}


function run(ch: IoChannel, type: IoType, offsetBlocks: number, numBlocks: number, iovs: Uint8Array[]): Promise<void> {
  return new Promise((resolve, reject) => {
    ch.submit(type, offsetBlocks, numBlocks, iovs, (status) => {
      if (status === 0) resolve();
      else reject(new IoError(status, `${IoType[type].toLowerCase()} of ${numBlocks} blocks at ${offsetBlocks} on ${ch.bdev.name}`));
    });
  });
}

/**
 * Promise helpers for tests and the control plane (not the hot path). Offsets and lengths in blocks;
 * a failed I/O rejects with IoError (status = negative errno).
 */
export const io = {
  read: (ch: IoChannel, buf: Uint8Array | Uint8Array[], offsetBlocks: number, numBlocks: number) =>
    run(ch, IoType.READ, offsetBlocks, numBlocks, Array.isArray(buf) ? buf : [buf]),
  write: (ch: IoChannel, buf: Uint8Array | Uint8Array[], offsetBlocks: number, numBlocks: number) =>
    run(ch, IoType.WRITE, offsetBlocks, numBlocks, Array.isArray(buf) ? buf : [buf]),
  flush: (ch: IoChannel, offsetBlocks = 0, numBlocks = 0) => run(ch, IoType.FLUSH, offsetBlocks, numBlocks, []),
  unmap: (ch: IoChannel, offsetBlocks: number, numBlocks: number) => run(ch, IoType.UNMAP, offsetBlocks, numBlocks, []),
  writeZeroes: (ch: IoChannel, offsetBlocks: number, numBlocks: number) => run(ch, IoType.WRITE_ZEROES, offsetBlocks, numBlocks, []),
  reset: (ch: IoChannel) => run(ch, IoType.RESET, 0, 0, []),
};
