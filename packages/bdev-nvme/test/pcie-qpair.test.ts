import t from 'tap';
import { DmaPool } from '../src/dma-pool';
import { PcieQpair } from '../src/pcie-qpair';
import { PAGE_SIZE } from '../src/prp';
import { DataDir, type NvmeRequest, QP_DISCONNECTED, QP_TIMEOUT } from '../src/qpair';

const QUEUE_IOVA = 0x4000_0000;
const POOL_IOVA = 0x8000_0000;

/**
 * A fake controller on plain memory: reads SQ entries up to the rung tail, moves data through the
 * PRPs (its own walk of PRP1/PRP2/lists, by iova), posts CQ entries with the phase tag it owns.
 */
class FakeController {
  readonly doorbells: Array<[number, number]> = [];
  sqHead = 0;
  sqTail = 0;
  cqTail = 0;
  phase = 1;
  qp!: PcieQpair;
  /** Backing store the fake namespace reads from and writes to. */
  readonly disk = new Uint8Array(1 << 20);

  constructor(readonly queueMem: ArrayBuffer, readonly poolMem: ArrayBuffer, readonly dstrd = 0) {}

  doorbell(off: number, value: number): void {
    this.doorbells.push([off, value]);
    if (off === 0x1000 + 2 * this.qp.qid * (4 << this.dstrd)) this.sqTail = value;
  }

  /** SQEs submitted and not yet fetched (up to the last doorbell), fetched now. */
  fetch(): Uint8Array[] {
    const out: Uint8Array[] = [];
    const sq = new Uint8Array(this.queueMem, 0, this.qp.sqEntries * 64);
    while (this.sqHead !== this.sqTail) {
      out.push(sq.slice(this.sqHead * 64, this.sqHead * 64 + 64));
      this.sqHead = (this.sqHead + 1) % this.qp.sqEntries;
    }
    return out;
  }

  post(cid: number, sf = 0, dw0 = 0): void {
    const cqOff = Math.ceil((this.qp.sqEntries * 64) / PAGE_SIZE) * PAGE_SIZE;
    const cq = new DataView(this.queueMem, cqOff);
    const o = this.cqTail * 16;
    cq.setUint32(o, dw0, true);
    cq.setUint32(o + 4, 0, true);
    cq.setUint16(o + 8, this.sqHead, true);
    cq.setUint16(o + 10, this.qp.qid, true);
    cq.setUint32(o + 12, (cid & 0xffff) | (this.phase << 16) | (sf << 17), true);
    if (++this.cqTail === this.qp.sqEntries) {
      this.cqTail = 0;
      this.phase ^= 1;
    }
  }

  /** Data pages of a command per its PRPs, as byte ranges of the pool. */
  segments(sqe: Uint8Array, len: number): Uint8Array[] {
    const dv = new DataView(sqe.buffer, sqe.byteOffset);
    const at = (iova: number, n: number) => new Uint8Array(this.poolMem, iova - POOL_IOVA, n);
    const prp1 = Number(dv.getBigUint64(24, true));
    const prp2 = Number(dv.getBigUint64(32, true));
    const first = Math.min(len, PAGE_SIZE - (prp1 % PAGE_SIZE));
    const out = [at(prp1, first)];
    let left = len - first;
    if (left > 0 && left <= PAGE_SIZE) return [...out, at(prp2, left)];
    let slot = 0;
    let list = prp2;
    while (left > 0) {
      const entry = Number(new DataView(this.poolMem, list - POOL_IOVA).getBigUint64(slot * 8, true));
      if (slot === 511 && left > PAGE_SIZE) {
        list = entry;
        slot = 0;
        continue;
      }
      out.push(at(entry, Math.min(PAGE_SIZE, left)));
      left -= PAGE_SIZE;
      slot++;
    }
    return out;
  }

  /** Executes a read (opcode 2) or write (1) of `len` bytes at disk byte 0 and posts its completion. */
  execute(sqe: Uint8Array, len: number): void {
    const cid = sqe[2] | (sqe[3] << 8);
    let pos = 0;
    for (const seg of this.segments(sqe, len)) {
      if (sqe[0] === 2) seg.set(this.disk.subarray(pos, pos + seg.length));
      else this.disk.set(seg, pos);
      pos += seg.length;
    }
    this.post(cid);
  }
}

function setup(depth: number, poolPages = 64, dstrd = 0) {
  const queueMem = new ArrayBuffer(PcieQpair.queueBytes(depth));
  const poolMem = new ArrayBuffer(poolPages * PAGE_SIZE);
  const ctrl = new FakeController(queueMem, poolMem, dstrd);
  const pool = new DmaPool({ buffer: poolMem, iova: POOL_IOVA });
  const qp = new PcieQpair({ qid: 1, depth, timeoutMs: 0, regs: ctrl, dstrd, queueMem: { buffer: queueMem, iova: QUEUE_IOVA }, pool, autoPoll: false });
  ctrl.qp = qp;
  return { qp, ctrl, pool };
}

const tick = () => new Promise((r) => process.nextTick(r));

function submit(qp: PcieQpair, log: Array<[number, number]>, fill?: (r: NvmeRequest) => void): NvmeRequest {
  const r = qp.alloc()!;
  r.sqe.fill(0);
  fill?.(r);
  r.cb = (status, req) => log.push([req.cid, status]);
  qp.submit(r);
  return r;
}

t.test('doorbells: SQ tail once per turn, CQ head once per poll, at 0x1000 + (2·qid + isCQ)·(4 << DSTRD)', async (t) => {
  const { qp, ctrl } = setup(8, 64, 2);
  const log: Array<[number, number]> = [];
  for (let i = 0; i < 3; i++) submit(qp, log);
  t.same(ctrl.doorbells, [], 'not rung inside the turn');
  await tick();
  t.same(ctrl.doorbells, [[0x1000 + 2 * 16, 3]], 'one SQ doorbell for three entries');
  t.equal(ctrl.fetch().length, 3);
  ctrl.post(0);
  ctrl.post(2);
  t.equal(qp.poll(), 2);
  t.same(ctrl.doorbells[1], [0x1000 + 3 * 16, 2], 'CQ head doorbell after the batch');
  t.equal(qp.poll(), 0, 'nothing new: the stale phase of the next entry is not taken');
  t.same(log, [[0, 0], [2, 0]]);
  t.equal(qp.sqIova, QUEUE_IOVA);
  t.equal(qp.cqIova, QUEUE_IOVA + PAGE_SIZE);
});

t.test('phase tag: completions are found across many laps of the CQ, in batches that straddle the wrap', async (t) => {
  const { qp, ctrl } = setup(4); // 5 entries per ring
  const log: Array<[number, number]> = [];
  let expect = 0;
  const phases = new Set<number>();
  for (let lap = 0; lap < 12; lap++) {
    const batch = 1 + (lap % 4); // 1..4 outstanding
    const reqs = Array.from({ length: batch }, () => submit(qp, log));
    await tick();
    const sqes = ctrl.fetch();
    t.equal(sqes.length, batch);
    for (const s of sqes.reverse()) ctrl.post(s[2] | (s[3] << 8), 0, 0x1000 + expect);
    t.equal(qp.poll(), batch, `lap ${lap}: all ${batch} reaped`);
    expect += batch;
    phases.add(qp.position.phase);
    t.equal(qp.outstanding, 0);
    t.equal(reqs.length, batch);
  }
  t.equal(log.length, expect, `${expect} completions, each once`);
  t.same([...phases].sort(), [0, 1], 'the expected phase flipped');
  t.equal(qp.position.cqHead, expect % 5);
  t.equal(qp.position.sqTail, expect % 5);
  t.equal(qp.sqHead, ctrl.sqHead, 'SQ head taken from CQE DW2');
});

t.test('command ids: freed at completion and reused first; a completion for an unknown id is counted, not fatal', async (t) => {
  const { qp, ctrl } = setup(4);
  const log: Array<[number, number]> = [];
  const a = submit(qp, log);
  const b = submit(qp, log);
  await tick();
  ctrl.fetch();
  ctrl.post(a.cid, 0x2); // Invalid Field: status goes to the owner
  qp.poll();
  t.same(log, [[0, 0x2]]);
  t.equal(submit(qp, log).cid, 0, 'cid 0 reused');
  ctrl.post(3); // never submitted
  qp.poll();
  t.equal(qp.strayCompletions, 1);
  t.equal(qp.outstanding, 2);
  t.equal(b.cid, 1);
});

t.test('data is bounced through pool pages: odd scatter lists in and out, PRP list beyond two pages', async (t) => {
  const { qp, ctrl, pool } = setup(4);
  const log: Array<[number, number]> = [];
  const len = 5 * 4096 + 1536;
  const src = Buffer.alloc(len);
  for (let i = 0; i < len; i++) src[i] = (i * 13 + 5) & 0xff;
  submit(qp, log, (r) => {
    r.sqe[0] = 1;
    r.sqe[1] = 0x40; // an SGL flag from sqeInit must be cleared for PCIe
    r.dir = DataDir.H2C;
    r.iovs = [src.subarray(0, 3), src.subarray(3, 9000), src.subarray(9000)];
    r.dataLen = len;
  });
  await tick();
  const [w] = ctrl.fetch();
  t.equal(w[1] & 0xc0, 0, 'PSDT 00b: PRPs');
  t.equal(pool.available, 64 - 6 - 1, '6 data pages and 1 list page held');
  ctrl.execute(w, len);
  qp.poll();
  t.ok(Buffer.from(ctrl.disk.subarray(0, len)).equals(src), 'the controller saw the caller data');
  t.equal(pool.available, 64, 'pages back after completion');
  const out = [Buffer.alloc(100), Buffer.alloc(len - 100)];
  submit(qp, log, (r) => {
    r.sqe[0] = 2;
    r.dir = DataDir.C2H;
    r.iovs = out;
    r.dataLen = len;
  });
  await tick();
  const [rd] = ctrl.fetch();
  ctrl.execute(rd, len);
  qp.poll();
  t.ok(Buffer.concat(out).equals(src), 'read data copied into the caller buffers');
  t.same(log.map((l) => l[1]), [0, 0]);
});

t.test('a command that finds the pool short waits, then goes when pages come back', async (t) => {
  const { qp, ctrl, pool } = setup(4, 4);
  const log: Array<[number, number]> = [];
  const mk = (n: number) => submit(qp, log, (r) => {
    r.sqe[0] = 1;
    r.dir = DataDir.H2C;
    r.iovs = [Buffer.alloc(n, 1)];
    r.dataLen = n;
  });
  const a = mk(3 * 4096); // 3 data + 1 list page = the whole pool
  const b = mk(4096);
  await tick();
  t.equal(ctrl.fetch().length, 1, 'only the first reached the SQ');
  t.equal(pool.available, 0);
  ctrl.post(a.cid);
  qp.poll();
  await tick();
  const next = ctrl.fetch();
  t.equal(next.length, 1, 'the waiting one was placed after the completion');
  t.equal(next[0][2], b.cid);
  ctrl.post(b.cid);
  qp.poll();
  t.same(log, [[a.cid, 0], [b.cid, 0]]);
  t.equal(pool.available, 4);
});

t.test('a timed-out read keeps its id and pages until the controller answers; its late data is dropped', async (t) => {
  const { qp, ctrl, pool } = setup(4);
  const log: Array<[number, number]> = [];
  const buf = Buffer.alloc(4096, 0xaa);
  const r = qp.alloc()!;
  r.sqe[0] = 2;
  r.dir = DataDir.C2H;
  r.iovs = [buf];
  r.dataLen = 4096;
  r.cb = (s, q) => log.push([q.cid, s]);
  qp.submit(r, 1000);
  await tick();
  const [sqe] = ctrl.fetch();
  qp.expire(performance.now() + 2000);
  t.same(log, [[0, QP_TIMEOUT]]);
  t.equal(qp.outstanding, 1, 'cid still reserved');
  t.equal(pool.available, 63, 'bounce page still held: the device may still write it');
  ctrl.disk.fill(0x55, 0, 4096);
  ctrl.execute(sqe, 4096);
  qp.poll();
  t.equal(buf[0], 0xaa, 'late data not copied into the abandoned buffer');
  t.equal(qp.outstanding, 0);
  t.equal(pool.available, 64);
  t.equal(log.length, 1, 'owner told once');
});

t.test('close fails outstanding and waiting commands and returns every page', async (t) => {
  const { qp, pool } = setup(4, 2);
  const log: Array<[number, number]> = [];
  for (let i = 0; i < 3; i++) {
    submit(qp, log, (r) => {
      r.dir = DataDir.C2H;
      r.iovs = [Buffer.alloc(4096)];
      r.dataLen = 4096;
    });
  }
  t.equal(pool.available, 0);
  qp.close();
  t.same(log.map((l) => l[1]), [QP_DISCONNECTED, QP_DISCONNECTED, QP_DISCONNECTED]);
  t.equal(pool.available, 2);
  t.equal(qp.poll(), 0);
  qp.close();
});

t.test('a transfer larger than the whole pool fails with Invalid Field (DNR) instead of waiting forever', async (t) => {
  const { qp, pool } = setup(4, 4);
  const log: Array<[number, number]> = [];
  submit(qp, log, (r) => {
    r.dir = DataDir.H2C;
    r.iovs = [Buffer.alloc(5 * 4096)];
    r.dataLen = 5 * 4096;
  });
  t.same(log, [[0, 0x4002]]);
  t.equal(qp.outstanding, 0);
  t.equal(pool.available, 4);
});
