import t from 'tap';
import { NvmeQpair, type NvmeRequest, QP_DISCONNECTED, QP_TIMEOUT } from '../src/qpair';

/** A transport that records submissions; the test completes them by hand. */
class FakeQpair extends NvmeQpair {
  sent: NvmeRequest[] = [];
  protected transportSubmit(req: NvmeRequest): void {
    this.sent.push(req);
  }
}

function submit(qp: FakeQpair, log: Array<[number, number]>, timeoutMs?: number): NvmeRequest {
  const r = qp.alloc()!;
  r.cb = (status, req) => log.push([req.cid, status]);
  qp.submit(r, timeoutMs);
  return r;
}

t.test('command ids are slot indexes, written into the SQE, reused after completion', async (t) => {
  const qp = new FakeQpair(1, 4, 0);
  const log: Array<[number, number]> = [];
  const a = submit(qp, log);
  const b = submit(qp, log);
  t.same([a.cid, b.cid], [0, 1]);
  t.equal(a.sqe.readUInt16LE(2), 0);
  t.equal(b.sqe.readUInt16LE(2), 1);
  t.ok(qp.complete(0, 0, 7, 8));
  t.same(log, [[0, 0]]);
  t.equal(submit(qp, log).cid, 0, 'the freed id is reused first');
  t.equal(qp.outstanding, 2);
});

t.test('a full queue returns null; completing frees an id', async (t) => {
  const qp = new FakeQpair(1, 2, 0);
  const log: Array<[number, number]> = [];
  submit(qp, log);
  submit(qp, log);
  t.equal(qp.alloc(), null);
  qp.complete(1, 0);
  t.not(qp.alloc(), null);
});

t.test('completions for ids not outstanding are refused', async (t) => {
  const qp = new FakeQpair(1, 4, 0);
  t.notOk(qp.complete(3, 0));
  t.notOk(qp.complete(99, 0));
  const log: Array<[number, number]> = [];
  submit(qp, log);
  t.ok(qp.complete(0, 0));
  t.notOk(qp.complete(0, 0), 'a second completion of the same id');
});

t.test('callback may resubmit on the id it just freed', async (t) => {
  const qp = new FakeQpair(1, 1, 0);
  const r = qp.alloc()!;
  let n = 0;
  r.arg = 'first';
  r.cb = (st, req) => {
    t.equal(req.arg, 'first');
    const again = qp.alloc()!;
    again.arg = 'second';
    again.cb = (_s, r2) => { n++; t.equal(r2.arg, 'second'); };
    qp.submit(again);
  };
  qp.submit(r);
  qp.complete(0, 0);
  qp.complete(0, 0);
  t.equal(n, 1);
});

t.test('timeout: owner told -ETIMEDOUT, id quarantined until the late completion, onTimeout called', async (t) => {
  const qp = new FakeQpair(1, 2, 1000);
  const log: Array<[number, number]> = [];
  const timedOut: number[] = [];
  qp.onTimeout = (req) => timedOut.push(req.cid);
  const r = submit(qp, log);
  qp.expire(performance.now() + 500);
  t.same(log, [], 'not yet');
  qp.expire(performance.now() + 2000);
  t.same(log, [[0, QP_TIMEOUT]]);
  t.same(timedOut, [0]);
  t.ok(r.abandoned);
  t.equal(qp.outstanding, 1, 'id 0 still reserved');
  t.equal(qp.alloc()!.cid, 1, 'a new command does not get the quarantined id');
  t.ok(qp.complete(0, 0), 'late completion accepted');
  t.same(log, [[0, QP_TIMEOUT]], 'and not delivered twice');
});

t.test('timer fires on its own', async (t) => {
  const qp = new FakeQpair(1, 2, 40);
  const log: Array<[number, number]> = [];
  submit(qp, log);
  await new Promise((r) => setTimeout(r, 150));
  t.same(log, [[0, QP_TIMEOUT]]);
});

t.test('failAll completes everything with QP_DISCONNECTED, frees ids and refuses later submissions', async (t) => {
  const qp = new FakeQpair(1, 4, 1000);
  const log: Array<[number, number]> = [];
  submit(qp, log);
  submit(qp, log);
  qp.expire(performance.now() + 5000);
  submit(qp, log);
  qp.failAll();
  t.same(log.map((x) => x[1]), [QP_TIMEOUT, QP_TIMEOUT, QP_DISCONNECTED]);
  t.equal(qp.outstanding, 0);
  t.equal(qp.alloc(), null, 'closed');
});
