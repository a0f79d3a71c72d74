import t from 'tap';
import { closeFd, decodeInflight, encodeInflight, fdSize, memfdCreate, VhostUserRequest as R } from '@blockwork/vhost-user';
import { inflightRegionBytes } from '../src/inflight-region';
import { SessionInflight } from '../src/session-inflight';

const req = (numQueues: number, queueSize: number, mmapSize = 0n, mmapOffset = 0n) => encodeInflight({ mmapSize, mmapOffset, numQueues, queueSize });

t.test('GET_INFLIGHT_FD: a memfd of the DPDK size, offset 0', async (t) => {
  const r = SessionInflight.allocate(R.GET_INFLIGHT_FD, req(2, 128), 's0');
  t.same(decodeInflight(0, r.payload), { mmapSize: 4224n, mmapOffset: 0n, numQueues: 2, queueSize: 128 });
  t.equal(fdSize(r.fds[0]), 4224);
  closeFd(r.fds[0]);
  t.throws(() => SessionInflight.allocate(R.GET_INFLIGHT_FD, req(0, 128), 's0'), /num_queues 0/);
  t.throws(() => SessionInflight.allocate(R.GET_INFLIGHT_FD, req(65, 128), 's0'), /num_queues 65/);
  t.throws(() => SessionInflight.allocate(R.GET_INFLIGHT_FD, req(1, 100), 's0'), /queue_size 100/);
});

t.test('SET_INFLIGHT_FD: sizes checked against the geometry and the fd; slices per queue', async (t) => {
  const size = inflightRegionBytes(2, 16);
  const fd = memfdCreate('inflight', size);
  t.teardown(() => closeFd(fd));
  const s = new SessionInflight();
  t.equal(s.queueFor(0, 16), 'no SET_INFLIGHT_FD was sent');
  t.throws(() => s.set(R.SET_INFLIGHT_FD, req(2, 16, BigInt(size - 1)), [fd]), /mmap_size/, 'mmap_size below num_queues × queue size');
  t.throws(() => s.set(R.SET_INFLIGHT_FD, req(2, 16, BigInt(size)), []), /one fd/);
  t.throws(() => s.set(R.SET_INFLIGHT_FD, req(2, 16, BigInt(size), 4096n), [fd]), /passes its end/, 'range past the fd is never mapped');
  t.throws(() => s.set(R.SET_INFLIGHT_FD, req(4, 16, BigInt(size * 2)), [fd]), /passes its end/, 'a geometry larger than the fd');
  t.equal(s.mapped, false);
  s.set(R.SET_INFLIGHT_FD, req(2, 16, BigInt(size)), [fd]);
  t.equal(s.mapped, true);
  const q1 = s.queueFor(1, 16);
  t.ok(typeof q1 !== 'string' && q1.descNum === 16, 'queue 1 slice with desc_num written');
  t.match(s.queueFor(2, 16), /not covered/, 'queue beyond num_queues');
  t.match(s.queueFor(0, 32), /not covered/, 'queue size differs');
  s.release();
  s.release();
  t.equal(s.mapped, false, 'release is idempotent');
});
