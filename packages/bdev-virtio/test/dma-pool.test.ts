import t from 'tap';
import { DmaPool } from '../src/dma-pool';

t.test('allocates aligned views of the area and coalesces on release', async (t) => {
  const buf = new ArrayBuffer(1 << 20);
  const p = new DmaPool(buf, 65536, 3 * 4096);
  const a = p.alloc(100)!;
  const b = p.alloc(4096)!;
  const c = p.alloc(4096)!;
  t.same([a.byteOffset, b.byteOffset, c.byteOffset], [65536, 65536 + 4096, 65536 + 8192]);
  t.equal(a.length, 100);
  t.equal(a.buffer, buf);
  t.equal(p.alloc(1), null, 'full');
  t.ok(p.release(b));
  t.notOk(p.release(b), 'double release is refused');
  t.ok(p.release(a));
  t.equal(p.alloc(8192)!.byteOffset, 65536, 'freed neighbours coalesced');
  t.equal(p.alloc(0), null);
});
