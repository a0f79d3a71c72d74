/** Chunk size of the RAM store: chunks are allocated on first write, so an unwritten disk costs nothing. */
const CHUNK = 16 * 1024 * 1024;

/**
 * Byte-addressed sparse RAM store. Reads of never-written chunks return zeros. Chunking also lifts
 * the 4 GiB limit of a single Buffer.
 */
export class MallocStore {
  private readonly chunks: Array<Buffer | undefined>;

  constructor(readonly size: number) {
    this.chunks = new Array(Math.ceil(size / CHUNK));
  }

  read(offset: number, iovs: readonly Uint8Array[]): void {
    let pos = offset;
    for (const iov of iovs) {
      let done = 0;
      while (done < iov.length) {
        const idx = Math.floor(pos / CHUNK);
        const inChunk = pos - idx * CHUNK;
        const n = Math.min(iov.length - done, CHUNK - inChunk);
        const chunk = this.chunks[idx];
        if (chunk) iov.set(chunk.subarray(inChunk, inChunk + n), done);
        else iov.fill(0, done, done + n);
        done += n;
        pos += n;
      }
    }
  }

  write(offset: number, iovs: readonly Uint8Array[]): void {
    let pos = offset;
    for (const iov of iovs) {
      let done = 0;
      while (done < iov.length) {
        const idx = Math.floor(pos / CHUNK);
        const inChunk = pos - idx * CHUNK;
        const n = Math.min(iov.length - done, CHUNK - inChunk);
        let chunk = this.chunks[idx];
        if (!chunk) chunk = this.chunks[idx] = Buffer.alloc(Math.min(CHUNK, this.size - idx * CHUNK));
        chunk.set(iov.subarray(done, done + n), inChunk);
        done += n;
        pos += n;
      }
    }
  }

  /** Zeroes a byte range; whole chunks are released instead of filled. */
  zero(offset: number, length: number): void {
    let pos = offset;
    const end = offset + length;
    while (pos < end) {
      const idx = Math.floor(pos / CHUNK);
      const inChunk = pos - idx * CHUNK;
      const n = Math.min(end - pos, CHUNK - inChunk);
      const chunk = this.chunks[idx];
      if (chunk) {
        if (n === chunk.length) this.chunks[idx] = undefined;
        else chunk.fill(0, inChunk, inChunk + n);
      }
      pos += n;
    }
  }
}
