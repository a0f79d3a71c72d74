import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeU64, VhostUserConnection, VhostUserFlags, VhostUserListener, VhostUserRequest as R } from '@blockwork/vhost-user';
import { VhostUserClient } from '../src/vhost-user-client';

/** A scripted back end: `answer` decides the reply (or none) for each request. */
async function pair(t: { teardown(fn: () => unknown): void }, answer: (c: VhostUserConnection, request: number, flags: number) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'bw-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 's');
  const l = await VhostUserListener.listen(path, {}, (c) => {
    t.teardown(() => c.close());
    c.onMessage = (m) => answer(c, m.request, m.flags);
  });
  t.teardown(() => l.close());
  const client = new VhostUserClient(await VhostUserConnection.connect(path), 300);
  t.teardown(() => client.close());
  return client;
}

const REPLY = VhostUserFlags.VERSION | VhostUserFlags.REPLY;

t.test('replies resolve their requests in order', async (t) => {
  const c = await pair(t, (s, req) => {
    if (req === R.GET_FEATURES) s.send(req, REPLY, encodeU64(7n));
    if (req === R.GET_QUEUE_NUM) s.send(req, REPLY, encodeU64(4n));
  });
  const [a, b] = await Promise.all([c.request(R.GET_FEATURES), c.request(R.GET_QUEUE_NUM)]);
  t.equal(a!.payload.readBigUInt64LE(0), 7n);
  t.equal(b!.payload.readBigUInt64LE(0), 4n);
  t.equal(await c.request(R.SET_OWNER), null, 'no REPLY_ACK: set requests resolve at once');
});

t.test('with REPLY_ACK, set requests carry NEED_REPLY and a non-zero ack rejects', async (t) => {
  const seen: number[] = [];
  const c = await pair(t, (s, req, flags) => {
    seen.push(flags);
    s.send(req, REPLY, encodeU64(req === R.SET_VRING_NUM ? 1n : 0n));
  });
  c.protocolFeatures = 1n << 3n;
  t.ok(await c.request(R.SET_OWNER));
  await t.rejects(c.request(R.SET_VRING_NUM, Buffer.alloc(8)), { code: 'VIRTIO_NEGOTIATION_FAILED', message: /SET_VRING_NUM/ });
  t.equal(seen[0] & VhostUserFlags.NEED_REPLY, VhostUserFlags.NEED_REPLY);
});

t.test('a reply to the wrong request fails everything and closes', async (t) => {
  const c = await pair(t, (s) => s.send(R.GET_STATUS, REPLY, encodeU64(0n)));
  await t.rejects(c.request(R.GET_FEATURES), { code: 'VIRTIO_NEGOTIATION_FAILED', message: /expected a reply to GET_FEATURES, got GET_STATUS/ });
  t.notOk(c.isOpen);
  await t.rejects(c.request(R.GET_FEATURES), { code: 'VIRTIO_NEGOTIATION_FAILED' });
});

t.test('no answer times out with a coded error', async (t) => {
  const c = await pair(t, () => {});
  let disconnected: Error | null = null;
  c.onDisconnect = (e) => { disconnected = e; };
  await t.rejects(c.request(R.GET_FEATURES), { code: 'VIRTIO_TIMEOUT', message: /GET_FEATURES within 300 ms/ });
  t.match(disconnected, { code: 'VIRTIO_TIMEOUT' });
});

t.test('a back end closing rejects waiters with VIRTIO_DISCONNECTED', async (t) => {
  const c = await pair(t, (s) => s.close());
  await t.rejects(c.request(R.GET_FEATURES), { code: 'VIRTIO_DISCONNECTED' });
  t.equal(await c.closed, undefined, 'orderly close');
});
