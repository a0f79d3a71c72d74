/**
 * Verify pattern: every block starts with its own block offset and the write's sequence number
 * (so a block written to the wrong place or a stale block is caught), then bytes derived from both.
 */
export function fillPattern(buf: Buffer, offsetBlocks: number, seq: number, blockSize: number): void {
  for (let b = 0; b * blockSize < buf.length; b++) {
    const base = b * blockSize;
    const blk = offsetBlocks + b;
    buf.writeUInt32LE(blk >>> 0, base);
    buf.writeUInt32LE(Math.floor(blk / 2 ** 32), base + 4);
    buf.writeUInt32LE(seq >>> 0, base + 8);
    buf.writeUInt32LE(0x5eed5eed, base + 12);
    let x = (blk * 2654435761 + seq * 40503) >>> 0;
    for (let i = base + 16; i < base + blockSize; i += 4) {
      x = (x * 1103515245 + 12345) >>> 0;
      buf.writeUInt32LE(x, i);
    }
  }
}

export function checkPattern(buf: Buffer, offsetBlocks: number, seq: number, blockSize: number): boolean {
  const want = Buffer.allocUnsafe(buf.length);
  fillPattern(want, offsetBlocks, seq, blockSize);
  return want.equals(buf);
}
