import t from 'tap';
import { ByteQueue } from '../src/byte-queue';

t.test('take returns views within a chunk and copies across chunks', async (t) => {
  const q = new ByteQueue();
  q.push(Buffer.from([1, 2, 3]));
  q.push(Buffer.from([4, 5]));
  q.push(Buffer.alloc(0));
  t.equal(q.length, 5);
  t.same([...q.take(2)], [1, 2]);
  t.same([...q.take(2)], [3, 4]);
  t.same([...q.take(0)], []);
  t.equal(q.length, 1);
  const dst = new Uint8Array(3);
  q.push(Buffer.from([6, 7]));
  q.copyOut(dst, 0, 3);
  t.same([...dst], [5, 6, 7]);
  t.equal(q.length, 0);
  q.push(Buffer.from([8]));
  t.same(q.drain().map((b) => [...b]), [[8]]);
});
