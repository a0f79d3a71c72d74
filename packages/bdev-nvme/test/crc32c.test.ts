import t from 'tap';
import { crc32c, crc32cv } from '../src/crc32c';

t.test('known CRC32C vectors (RFC 3720 B.4)', async (t) => {
  t.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  t.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa);
  t.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
  t.equal(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i))), 0x46dd794e);
});

t.test('incremental and scatter-list forms equal the one-shot CRC', async (t) => {
  const b = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 31) & 0xff));
  const whole = crc32c(b);
  t.equal(crc32c(b.subarray(3), crc32c(b.subarray(0, 3))), whole);
  t.equal(crc32cv([b.subarray(0, 7), b.subarray(7, 500), b.subarray(500)]), whole);
  t.equal(crc32c(b, 0, 10, 20), crc32c(b.subarray(10, 20)));
});
