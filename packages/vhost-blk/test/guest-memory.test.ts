import t from 'tap';
import { GuestMemory, u64ToNumber } from '../src/guest-memory';

function region(gpa: number, size: number, uva: number) {
  return { guestPhysAddr: gpa, size, userAddr: uva, bytes: new Uint8Array(size) };
}

function mem(...specs: ReturnType<typeof region>[]): GuestMemory {
  const m = GuestMemory.create(specs);
  if (typeof m === 'string') throw new Error(m);
  return m;
}

t.test('translates guest physical and front-end addresses inside one region', async (t) => {
  const m = mem(region(0, 4096, 0x10000), region(0x100000, 8192, 0x40000));
  const a = m.gpaToBytes(0x100010, 16);
  t.ok(a);
  a![0] = 7;
  t.equal(m.regions[1].bytes[16], 7, 'view of the region bytes (zero copy)');
  t.equal(m.uvaToBytes(0x40010, 1)![0], 7, 'same byte through the front-end address');
  t.equal(m.findGpa(0, 4096), 0, 'whole first region');
  t.equal(m.offset, 0);
  t.equal(m.findGpa(0x101000, 4096), 1);
  t.equal(m.offset, 4096);
});

t.test('rejects ranges that leave a region or span two', async (t) => {
  const m = mem(region(0, 4096, 0x10000), region(4096, 4096, 0x20000));
  t.equal(m.gpaToBytes(4000, 200), null, 'crosses from region 0 into the adjacent region 1');
  t.equal(m.gpaToBytes(8192, 1), null, 'just past the end');
  t.equal(m.gpaToBytes(8191, 2), null, 'last byte plus one');
  t.equal(m.gpaToBytes(-1, 1), null, 'negative');
  t.equal(m.gpaToBytes(2 ** 53, 1), null, 'huge');
  t.equal(m.findGpa(0, 2 ** 52), -1, 'huge length');
  t.equal(m.uvaToBytes(0x10000 - 1, 2), null, 'below a region in front-end space');
  t.ok(m.gpaToBytes(8191, 1), 'the last byte is inside');
});

t.test('validates the memory table', async (t) => {
  t.match(GuestMemory.create(Array.from({ length: 9 }, (_, i) => region(i * 4096, 4096, i * 4096))), /9 regions/);
  t.match(GuestMemory.create([region(0, 8192, 0), region(4096, 4096, 0x100000)]), /overlaps region 0 in guest physical/);
  t.match(GuestMemory.create([region(0, 4096, 0), region(8192, 4096, 2048)]), /overlaps region 0 in front-end/);
  t.match(GuestMemory.create([{ ...region(0, 4096, 0), size: 0 }]), /memory_size is 0/);
  t.match(GuestMemory.create([{ ...region(0, 4096, 0), bytes: new Uint8Array(100) }]), /mapping is 100 bytes/);
  t.match(GuestMemory.create([region(2 ** 53, 4096, 0)]), /not a valid address/);
  t.match(GuestMemory.create([region(2 ** 53 - 10, 4096, 0)]), /overflows/);
  t.type(GuestMemory.create([]), GuestMemory, 'an empty table is valid (and translates nothing)');
});

t.test('u64ToNumber refuses values above 2^53', async (t) => {
  const v = new DataView(new ArrayBuffer(16));
  v.setBigUint64(0, 0x1fffffffffffffn, true);
  t.equal(u64ToNumber(v, 0), 2 ** 53 - 1);
  v.setBigUint64(8, 0xffffffffffffffffn, true);
  t.equal(u64ToNumber(v, 8), -1);
});
