import t from 'tap';
import { constants } from 'node:os';
import { join } from 'node:path';
import { encodeU64, VhostUserConnection, VhostUserConnector, VhostUserFlags } from '../src';
import { closed, messages, serve, sockDir } from './fixtures/sockets';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('tryConnect returns the errno of a missing socket instead of throwing', async (t) => {
  const path = join(sockDir(t), 'none');
  t.equal(VhostUserConnection.tryConnect(path), constants.errno.ENOENT);
});

t.test('retries until the peer listens, reports the outage once, hands over a working connection', async (t) => {
  const path = join(sockDir(t), 's');
  const unreachable: number[] = [];
  let info: { attempts: number; outageMs: number } | null = null;
  const got = new Promise<VhostUserConnection>((resolve) => {
    const c = new VhostUserConnector(path, {
      onConnection: (conn, i) => {
        info = i;
        resolve(conn);
      },
      onUnreachable: (errno) => unreachable.push(errno),
    }, 5);
    t.teardown(() => c.stop());
    c.connect();
    t.ok(c.retrying, 'retrying while nothing listens');
  });
  await sleep(100);
  const srv = await serve(t, path);
  const conn = await got;
  t.teardown(() => conn.close());
  t.same(unreachable, [constants.errno.ENOENT], 'one report for the whole outage');
  t.ok(info!.attempts > 1, `several attempts (${info!.attempts})`);
  t.ok(info!.outageMs >= 100, `outage measured (${info!.outageMs} ms)`);
  const server = await srv.next();
  const reply = messages(conn, 1);
  server.send(1, VhostUserFlags.VERSION | VhostUserFlags.REPLY, encodeU64(7n));
  const [m] = await reply;
  t.equal(m.payload.readBigUInt64LE(0), 7n, 'messages flow on the handed-over connection');
});

t.test('connect() again after the connection dropped reconnects; stop() cancels pending attempts', async (t) => {
  const path = join(sockDir(t), 's');
  const srv = await serve(t, path);
  const conns: VhostUserConnection[] = [];
  const c = new VhostUserConnector(path, { onConnection: (conn) => conns.push(conn) }, 5);
  t.teardown(() => c.stop());
  c.connect();
  t.equal(conns.length, 1, 'the first attempt is synchronous');
  const server = await srv.next();
  const gone = closed(conns[0]);
  server.close();
  await gone;
  c.connect();
  t.equal(conns.length, 2, 'reconnected at once');
  await srv.next();
  await srv.listener.close();
  c.connect();
  t.ok(c.retrying, 'retrying after the listener went away');
  c.stop();
  t.notOk(c.retrying);
  await sleep(50);
  t.equal(conns.length, 2, 'no connection after stop()');
  for (const x of conns) x.close();
});
