import t from 'tap';
import { PAGE_SIZE, type PrpListPage, prpDataPages, prpListPages, writePrps } from '../src/prp';

/** Fake device memory: page-aligned iova → page bytes. */
function memory() {
  const pages = new Map<number, Uint8Array>();
  let next = 0x10_0000;
  return {
    page(): PrpListPage {
      const iova = next;
      next += PAGE_SIZE * 2; // holes: a walk that runs off a page would hit nothing
      const bytes = new Uint8Array(PAGE_SIZE);
      pages.set(iova, bytes);
      return { iova, bytes };
    },
    get: (iova: number) => pages.get(iova),
  };
}

/** The spec's walk (independent of writePrps): the (address, length) segments a controller would transfer. */
function walk(sqe: Uint8Array, len: number, get: (iova: number) => Uint8Array | undefined): Array<[number, number]> {
  const dv = new DataView(sqe.buffer, sqe.byteOffset);
  const prp1 = Number(dv.getBigUint64(24, true));
  const prp2 = Number(dv.getBigUint64(32, true));
  const first = Math.min(len, PAGE_SIZE - (prp1 % PAGE_SIZE));
  const segs: Array<[number, number]> = [[prp1, first]];
  let left = len - first;
  if (left === 0) return segs;
  if (left <= PAGE_SIZE) return [...segs, [prp2, left]];
  let list = prp2;
  let slot = 0;
  while (left > 0) {
    const lv = new DataView(get(list - (list % PAGE_SIZE))!.buffer);
    const entry = Number(lv.getBigUint64((list % PAGE_SIZE) + slot * 8, true));
    if (slot === PAGE_SIZE / 8 - 1 && left > PAGE_SIZE) {
      list = entry; // chained to the next list page
      slot = 0;
      continue;
    }
    const n = Math.min(PAGE_SIZE, left);
    segs.push([entry, n]);
    left -= n;
    slot++;
  }
  return segs;
}

function build(offset: number, len: number) {
  const mem = memory();
  const data = Array.from({ length: prpDataPages(offset, len) }, () => mem.page());
  const lists = Array.from({ length: prpListPages(data.length) }, () => mem.page());
  const sqe = new Uint8Array(64).fill(0xee);
  writePrps(sqe, data.map((p) => p.iova), offset, len, lists);
  return { sqe, data, lists, mem };
}

t.test('page and list counts', async (t) => {
  t.equal(prpDataPages(0, 0), 0);
  t.equal(prpDataPages(0, 4096), 1);
  t.equal(prpDataPages(4092, 8), 2, 'crossing a page boundary');
  t.equal(prpDataPages(512, 8192), 3);
  t.equal(prpListPages(2), 0);
  t.equal(prpListPages(3), 1);
  t.equal(prpListPages(513), 1, '512 entries fill one list page exactly');
  t.equal(prpListPages(514), 2, 'one more entry chains a second list page');
  t.equal(prpListPages(1 + 511 + 512), 2);
  t.equal(prpListPages(1 + 511 + 512 + 1), 3);
});

t.test('every size and offset walks back to the data pages, in order', async (t) => {
  const cases: Array<[number, number]> = [
    [0, 512], [0, 4096], [0, 4100], [0, 8192], [4, 8192], [2048, 6144], [0, 12288], [512, 300 * 1024 + 512],
    [0, 1 << 20], [4092, 1 << 20], [0, 513 * 4096], [0, 514 * 4096], [100, 1030 * 4096],
  ];
  for (const [offset, len] of cases) {
    const { sqe, data, mem } = build(offset, len);
    const segs = walk(sqe, len, mem.get);
    const want = data.map((p, i) => [i === 0 ? p.iova + offset : p.iova, 0] as [number, number]);
    t.same(segs.map((s) => s[0]), want.map((w) => w[0]), `offset ${offset} len ${len}: addresses`);
    t.equal(segs.reduce((a, s) => a + s[1], 0), len, `offset ${offset} len ${len}: bytes`);
  }
});

t.test('PRP2 is zero for one page and the second page itself for two', async (t) => {
  const one = build(0, 4096);
  t.equal(new DataView(one.sqe.buffer).getBigUint64(32, true), 0n);
  const two = build(1024, 4096);
  t.equal(Number(new DataView(two.sqe.buffer).getBigUint64(24, true)), two.data[0].iova + 1024, 'PRP1 carries the offset');
  t.equal(Number(new DataView(two.sqe.buffer).getBigUint64(32, true)), two.data[1].iova);
  const three = build(0, 3 * 4096);
  t.equal(Number(new DataView(three.sqe.buffer).getBigUint64(32, true)), three.lists[0].iova, 'list beyond two pages');
});

t.test('bad input throws before writing', async (t) => {
  const sqe = new Uint8Array(64);
  t.throws(() => writePrps(sqe, [0x1000], 0, 8192, []), /2 data pages needed/);
  t.throws(() => writePrps(sqe, [0x1000, 0x2000, 0x3000], 0, 3 * 4096, []), /1 list pages needed/);
  t.throws(() => writePrps(sqe, [0x1000], 3, 16, []), /dword aligned/);
});
