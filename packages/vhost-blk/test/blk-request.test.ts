import t from 'tap';
import {
  type BlkDevice, BlkOp, BlkRequest, BlkStatus, BlkType, blkStatusOf, PARSE_NO_STATUS, PARSE_SUBMIT, parseBlkRequest,
} from '../src/blk-request';
import { DescChain } from '../src/virtqueue';
import { type Buf, FakeGuest } from './fixtures/fake-guest';

const dev = (over: Partial<BlkDevice> = {}): BlkDevice => ({
  blockSize: 512, numBlocks: 2048, readonly: false, flush: true, unmap: true, writeZeroes: true,
  serial: new TextEncoder().encode('Malloc0'), ...over,
});

/** Posts `bufs`, walks and parses; returns the parse result, the request and the status byte's address. */
function parse(g: FakeGuest, bufs: Buf[], d = dev()) {
  const q = g.queue();
  const head = g.post(bufs);
  q.nextHead();
  const chain = new DescChain(g.size);
  t.equal(q.walk(head, chain), 0);
  const req = new BlkRequest(null);
  const res = parseBlkRequest(chain, g.mem, d, req);
  return { res, req };
}

function status(g: FakeGuest): { gpa: number; read: () => number; buf: Buf } {
  const gpa = g.alloc(1, 0xee);
  return { gpa, read: () => g.at(gpa, 1)[0], buf: { gpa, len: 1, write: true } };
}

t.test('IN maps to a zero-copy read of the right blocks', async (t) => {
  const g = new FakeGuest();
  const data = g.alloc(4096);
  const s = status(g);
  const { res, req } = parse(g, [{ gpa: g.header(BlkType.IN, 16), len: 16 }, { gpa: data, len: 4096, write: true }, s.buf]);
  t.equal(res, PARSE_SUBMIT);
  t.equal(req.op, BlkOp.READ);
  t.equal(req.offsetBlocks, 16);
  t.equal(req.numBlocks, 8);
  t.equal(req.usedLen, 4097);
  req.iovs[0][0] = 0x5a;
  t.equal(g.at(data, 1)[0], 0x5a, 'the iov is a view of guest memory');
  req.setStatus(BlkStatus.OK);
  t.equal(s.read(), 0);
});

t.test('OUT with header split over descriptors and data sharing the status descriptor', async (t) => {
  const g = new FakeGuest();
  const h = g.header(BlkType.OUT, 8);
  const d1 = g.alloc(512);
  const { res, req } = parse(g, [{ gpa: h, len: 10 }, { gpa: h + 10, len: 6 }, { gpa: d1, len: 512 }], dev());
  t.equal(res, PARSE_NO_STATUS, 'last descriptor readable: no status byte');
  const g2 = new FakeGuest();
  const h2 = g2.header(BlkType.OUT, 8);
  const tail = g2.alloc(512 + 16 + 1);
  // header bytes 0..9 in one buffer, the rest + 512 data bytes in the next (readable), status alone.
  g2.at(tail, 6).set(g2.at(h2 + 10, 6));
  const s = status(g2);
  const r2 = parse(g2, [{ gpa: h2, len: 10 }, { gpa: tail, len: 6 + 512 }, s.buf]);
  t.equal(r2.res, PARSE_SUBMIT);
  t.equal(r2.req.op, BlkOp.WRITE);
  t.equal(r2.req.offsetBlocks, 8);
  t.equal(r2.req.iovs.length, 1);
  t.equal(r2.req.iovs[0].length, 512);
  t.equal(r2.req.usedLen, 1);
  void req;
});

t.test('status byte is the last byte of a longer writable descriptor', async (t) => {
  const g = new FakeGuest();
  const buf = g.alloc(513);
  const { res, req } = parse(g, [{ gpa: g.header(BlkType.IN, 0), len: 16 }, { gpa: buf, len: 513, write: true }]);
  t.equal(res, PARSE_SUBMIT);
  t.equal(req.iovs[0].length, 512);
  req.setStatus(BlkStatus.IOERR);
  t.equal(g.at(buf + 512, 1)[0], 1);
});

t.test('header too short, wrong directions, bad lengths and ranges fail with IOERR', async (t) => {
  const cases: Array<[string, (g: FakeGuest, s: Buf) => Buf[], Partial<BlkDevice>?]> = [
    ['header 8 bytes', (g, s) => [{ gpa: g.header(BlkType.IN, 0), len: 8 }, s]],
    ['header in a writable buffer', (g, s) => [{ gpa: g.header(BlkType.IN, 0), len: 16, write: true }, s]],
    ['read into a read-only buffer', (g, s) => [{ gpa: g.header(BlkType.IN, 0), len: 16 }, { gpa: g.alloc(512), len: 512 }, s]],
    ['write from a writable buffer', (g, s) => [{ gpa: g.header(BlkType.OUT, 0), len: 16 }, { gpa: g.alloc(512), len: 512, write: true }, s]],
    ['length not a multiple of 512', (g, s) => [{ gpa: g.header(BlkType.IN, 0), len: 16 }, { gpa: g.alloc(500), len: 500, write: true }, s]],
    ['no data', (g, s) => [{ gpa: g.header(BlkType.IN, 0), len: 16 }, s]],
    ['past the end', (g, s) => [{ gpa: g.header(BlkType.IN, 2047), len: 16 }, { gpa: g.alloc(1024), len: 1024, write: true }, s]],
    ['sector 2^64-1', (g, s) => { const h = g.header(BlkType.IN, 0); g.view.setBigUint64(h - 0x100000 + 8, 0xffffffffffffffffn, true); return [{ gpa: h, len: 16 }, { gpa: g.alloc(512), len: 512, write: true }, s]; }],
    ['misaligned for a 4 KiB bdev', (g, s) => [{ gpa: g.header(BlkType.IN, 1), len: 16 }, { gpa: g.alloc(4096), len: 4096, write: true }, s], { blockSize: 4096, numBlocks: 256 }],
    ['write to a read-only device', (g, s) => [{ gpa: g.header(BlkType.OUT, 0), len: 16 }, { gpa: g.alloc(512), len: 512 }, s], { readonly: true }],
    ['discard on a read-only device', (g, s) => [{ gpa: g.header(BlkType.DISCARD, 0), len: 16 }, { gpa: g.alloc(16), len: 16 }, s], { readonly: true }],
  ];
  for (const [name, bufs, over] of cases) {
    const g = new FakeGuest();
    const s = status(g);
    const { res } = parse(g, bufs(g, s.buf), dev(over));
    t.equal(res, BlkStatus.IOERR, name);
  }
});

t.test('unknown types and unsupported operations answer UNSUPP', async (t) => {
  for (const [name, type, over] of [['type 99', 99, {}], ['flush without bdev flush', BlkType.FLUSH, { flush: false }], ['discard without unmap', BlkType.DISCARD, { unmap: false }]] as const) {
    const g = new FakeGuest();
    const s = status(g);
    const seg = g.alloc(16);
    const { res } = parse(g, [{ gpa: g.header(type, 0), len: 16 }, { gpa: seg, len: 16 }, s.buf], dev(over));
    t.equal(res, BlkStatus.UNSUPP, name);
  }
});

t.test('FLUSH maps to a flush of the whole device', async (t) => {
  const g = new FakeGuest();
  const s = status(g);
  const { res, req } = parse(g, [{ gpa: g.header(BlkType.FLUSH, 0), len: 16 }, s.buf]);
  t.equal(res, PARSE_SUBMIT);
  t.equal(req.op, BlkOp.FLUSH);
  t.equal(req.numBlocks, 2048);
});

t.test('GET_ID writes the serial NUL-padded to 20 bytes', async (t) => {
  const g = new FakeGuest();
  const id = g.alloc(20, 0xff);
  const s = status(g);
  const { res, req } = parse(g, [{ gpa: g.header(BlkType.GET_ID, 0), len: 16 }, { gpa: id, len: 20, write: true }, s.buf]);
  t.equal(res, BlkStatus.OK);
  t.equal(Buffer.from(g.at(id, 20)).toString('latin1'), 'Malloc0' + '\0'.repeat(13));
  t.equal(req.usedLen, 21);
  const g2 = new FakeGuest();
  const small = g2.alloc(4, 0xff);
  const r2 = parse(g2, [{ gpa: g2.header(BlkType.GET_ID, 0), len: 16 }, { gpa: small, len: 4, write: true }, status(g2).buf]);
  t.equal(r2.res, BlkStatus.OK);
  t.equal(Buffer.from(g2.at(small, 4)).toString(), 'Mall', 'truncated to the buffer');
  t.equal(r2.req.usedLen, 5);
});

function segment(g: FakeGuest, sector: number, num: number, flags: number): number {
  const seg = g.alloc(16);
  g.view.setBigUint64(seg - 0x100000, BigInt(sector), true);
  g.view.setUint32(seg - 0x100000 + 8, num, true);
  g.view.setUint32(seg - 0x100000 + 12, flags, true);
  return seg;
}

t.test('DISCARD and WRITE_ZEROES parse one segment', async (t) => {
  const g = new FakeGuest();
  const { res, req } = parse(g, [{ gpa: g.header(BlkType.DISCARD, 0), len: 16 }, { gpa: segment(g, 64, 128, 0), len: 16 }, status(g).buf]);
  t.equal(res, PARSE_SUBMIT);
  t.equal(req.op, BlkOp.UNMAP);
  t.same([req.offsetBlocks, req.numBlocks], [64, 128]);
  const g2 = new FakeGuest();
  const r2 = parse(g2, [{ gpa: g2.header(BlkType.WRITE_ZEROES, 0), len: 16 }, { gpa: segment(g2, 8, 8, 1), len: 16 }, status(g2).buf], dev({ blockSize: 4096, numBlocks: 256 }));
  t.equal(r2.res, PARSE_SUBMIT);
  t.equal(r2.req.op, BlkOp.WRITE_ZEROES);
  t.same([r2.req.offsetBlocks, r2.req.numBlocks], [1, 1], 'sectors converted to 4 KiB blocks');
});

t.test('segment errors: two segments UNSUPP, bad flags UNSUPP, bad range IOERR', async (t) => {
  const g = new FakeGuest();
  const two = g.alloc(32);
  t.equal(parse(g, [{ gpa: g.header(BlkType.DISCARD, 0), len: 16 }, { gpa: two, len: 32 }, status(g).buf]).res, BlkStatus.UNSUPP, 'two segments');
  const g2 = new FakeGuest();
  t.equal(parse(g2, [{ gpa: g2.header(BlkType.DISCARD, 0), len: 16 }, { gpa: segment(g2, 0, 8, 1), len: 16 }, status(g2).buf]).res, BlkStatus.UNSUPP, 'discard with unmap flag');
  const g3 = new FakeGuest();
  t.equal(parse(g3, [{ gpa: g3.header(BlkType.WRITE_ZEROES, 0), len: 16 }, { gpa: segment(g3, 2040, 16, 0), len: 16 }, status(g3).buf]).res, BlkStatus.IOERR, 'past the end');
  const g4 = new FakeGuest();
  t.equal(parse(g4, [{ gpa: g4.header(BlkType.WRITE_ZEROES, 0), len: 16 }, { gpa: g4.alloc(8), len: 8 }, status(g4).buf]).res, BlkStatus.IOERR, 'short segment');
});

t.test('bdev completion statuses map to virtio status bytes', async (t) => {
  t.equal(blkStatusOf(0), BlkStatus.OK);
  t.equal(blkStatusOf(-5), BlkStatus.IOERR);
  t.equal(blkStatusOf(-95), BlkStatus.UNSUPP);
});
