/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the NVMe/TCP header and data digest.
 * Slicing-by-8 tables: about eight bytes per loop turn in plain JS, enough for digests on
 * 4 KiB I/O at the rates a TCP connection reaches here (measured in docs/bdev-nvme.md).
 */
const POLY = 0x82f63b78;
const T = new Int32Array(8 * 256);

for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
  T[n] = c;
}
for (let n = 0; n < 256; n++) {
  for (let s = 1; s < 8; s++) T[s * 256 + n] = (T[(s - 1) * 256 + n] >>> 8) ^ T[T[(s - 1) * 256 + n] & 0xff];
}

/**
 * Continues a CRC32C over `buf[start, end)`. `crc` is the running value as returned by a previous
 * call (start with 0). Returns the finished CRC as an unsigned 32-bit number. Synchronous.
 */
export function crc32c(buf: Uint8Array, crc = 0, start = 0, end = buf.length): number {
  let c = ~crc;
  let i = start;
  const fast = end - ((end - i) & 7);
  while (i < fast) {
    const lo = (c ^ (buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24)));
    const hi = buf[i + 4] | (buf[i + 5] << 8) | (buf[i + 6] << 16) | (buf[i + 7] << 24);
    c = T[1792 + (lo & 0xff)] ^ T[1536 + ((lo >>> 8) & 0xff)] ^ T[1280 + ((lo >>> 16) & 0xff)] ^ T[1024 + (lo >>> 24)] ^
      T[768 + (hi & 0xff)] ^ T[512 + ((hi >>> 8) & 0xff)] ^ T[256 + ((hi >>> 16) & 0xff)] ^ T[hi >>> 24];
    i += 8;
  }
  while (i < end) c = T[(c ^ buf[i++]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** CRC32C over several buffers in order (a scatter list), as one stream. */
export function crc32cv(bufs: readonly Uint8Array[]): number {
  let c = 0;
  for (const b of bufs) c = crc32c(b, c);
  return c;
}
