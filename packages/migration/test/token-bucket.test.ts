import t from 'tap';
import { TokenBucket } from '../src/token-bucket';

t.test('a full bucket gives its burst at once, then asks to wait in proportion to the rate', async (t) => {
  const b = new TokenBucket(1000, 100);
  t.equal(b.take(60), 0);
  t.equal(b.take(40), 0);
  const wait = b.take(50);
  t.ok(wait > 0 && wait <= 51, `wait ${wait} ms for 50 bytes at 1000 B/s (less what refilled meanwhile)`);
  await new Promise((r) => setTimeout(r, wait + 5));
  t.equal(b.take(50), 0);
});

t.test('a request above the burst passes once the bucket is full', async (t) => {
  const b = new TokenBucket(1000, 10);
  t.equal(b.take(100), 0);
  const w = b.take(1);
  t.ok(w > 50, `in debt afterwards: wait ${w} ms`);
});
