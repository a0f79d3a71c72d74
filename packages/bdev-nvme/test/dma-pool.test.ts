import t from 'tap';
import { copyFromPages, copyToPages, DmaPool } from '../src/dma-pool';

const pool = (pages: number) => new DmaPool({ buffer: new ArrayBuffer(pages * 4096), iova: 0x2000_0000 });

t.test('pages are handed out and taken back; a short pool takes nothing', async (t) => {
  const p = pool(4);
  t.equal(p.size, 4);
  const a = p.alloc(3)!;
  t.same(a, [0, 1, 2], 'lowest first');
  t.equal(p.available, 1);
  t.equal(p.alloc(2), null);
  t.equal(p.available, 1, 'nothing taken by a failed alloc');
  p.release(a);
  t.equal(p.available, 4);
  t.equal(p.iova(3), 0x2000_0000 + 3 * 4096);
  t.equal(p.bytes(3).byteOffset, 3 * 4096);
  t.equal(p.bytes(3).length, 4096);
});

t.test('scatter lists of odd sizes copy into non-contiguous pages and back, byte exact', async (t) => {
  const p = pool(8);
  const pages = [5, 2, 7]; // out of order on purpose
  const len = 2 * 4096 + 1000;
  const src = Buffer.alloc(len);
  for (let i = 0; i < len; i++) src[i] = (i * 31 + 7) & 0xff;
  copyToPages(p, pages, [src.subarray(0, 1), src.subarray(1, 4097), src.subarray(4097, 5000), src.subarray(5000)], len);
  t.ok(Buffer.from(p.bytes(5)).equals(src.subarray(0, 4096)));
  t.ok(Buffer.from(p.bytes(2)).equals(src.subarray(4096, 8192)));
  t.ok(Buffer.from(p.bytes(7).subarray(0, 1000)).equals(src.subarray(8192)));
  const out = [Buffer.alloc(3000), Buffer.alloc(3000), Buffer.alloc(len - 6000 + 50)];
  copyFromPages(p, pages, out, len);
  t.ok(Buffer.concat(out).subarray(0, len).equals(src), 'read back');
  t.ok(out[2].subarray(len - 6000).equals(Buffer.alloc(50)), 'nothing written past len');
});
