import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { statSync, existsSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { closeFd, encodeMemoryTable, encodeU64, memfdCreate, mmapFd, VhostUserConnection, VhostUserFlags, VhostUserListener, VhostUserRequest } from '../src';
import { closed, frame, messages, serve, sockDir } from './fixtures/sockets';

/** Skip reason when python3 is missing (CI installs it; there the test must run). */
function whichPython(): string | false {
  if (spawnSync('python3', ['-c', '0']).status === 0) return false;
  if (process.env.CI === 'true') throw new Error('python3 is required under CI=true (apt-get install python3)');
  return 'python3 not installed (apt-get install python3)';
}

function raw(t: Test, path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect(path, () => resolve(s));
    s.on('error', reject);
    t.teardown(() => s.destroy());
  });
}

t.test('round trip of messages without fds, in order', async (t) => {
  const path = join(sockDir(t), 's');
  const srv = await serve(t, path);
  const client = await VhostUserConnection.connect(path);
  t.teardown(() => client.close());
  const server = await srv.next();
  const got = messages(server, 3);
  client.send(VhostUserRequest.GET_FEATURES, VhostUserFlags.VERSION, new Uint8Array(0));
  client.send(VhostUserRequest.SET_FEATURES, VhostUserFlags.VERSION, encodeU64(0x1_4000_0000n));
  client.send(VhostUserRequest.SET_OWNER, VhostUserFlags.VERSION | VhostUserFlags.NEED_REPLY, new Uint8Array(0));
  const m = await got;
  t.same(m.map((x) => x.request), [1, 2, 3]);
  t.equal(m[1].payload.readBigUInt64LE(0), 0x1_4000_0000n);
  t.equal(m[2].flags, VhostUserFlags.VERSION | VhostUserFlags.NEED_REPLY);
  t.same(m[0].fds, []);
  const reply = messages(client, 1);
  server.send(1, VhostUserFlags.VERSION | VhostUserFlags.REPLY, encodeU64(42n));
  const [r] = await reply;
  t.match(r, { request: 1, flags: 5 });
  t.equal(r.payload.readBigUInt64LE(0), 42n);
});

t.test('an fd passed with a message maps the same memory on both sides', async (t) => {
  const path = join(sockDir(t), 's');
  const srv = await serve(t, path);
  const client = await VhostUserConnection.connect(path);
  t.teardown(() => client.close());
  const server = await srv.next();
  const fd = memfdCreate('bw-test', 65536);
  const mine = mmapFd(fd, 65536, 0);
  const got = messages(server, 1);
  client.send(VhostUserRequest.SET_MEM_TABLE, 1, encodeMemoryTable({ regions: [{ guestPhysAddr: 0n, memorySize: 65536n, userspaceAddr: 0n, mmapOffset: 0n }] }), [fd]);
  closeFd(fd); // the mapping and the in-flight copy keep the memfd alive
  const [m] = await got;
  t.equal(m.fds.length, 1);
  const theirs = mmapFd(m.fds[0], 65536, 0);
  closeFd(m.fds[0]);
  new Uint8Array(theirs.buffer).set([1, 2, 3], 4096);
  t.same([...new Uint8Array(mine.buffer, 4096, 3)], [1, 2, 3], 'server writes seen by the client');
  new Uint8Array(mine.buffer)[100] = 0xee;
  t.equal(new Uint8Array(theirs.buffer)[100], 0xee, 'client writes seen by the server');
  mine.unmap();
  theirs.unmap();
});

t.test('a message written one byte at a time is reassembled', async (t) => {
  const path = join(sockDir(t), 's');
  const srv = await serve(t, path);
  const sock = await raw(t, path);
  const server = await srv.next();
  const got = messages(server, 2);
  const bytes = Buffer.concat([frame(2, 1, encodeU64(7n)), frame(3, 1, new Uint8Array(0))]);
  for (const b of bytes) {
    sock.write(Buffer.from([b]));
    await new Promise((r) => setImmediate(r));
  }
  const m = await got;
  t.same(m.map((x) => x.request), [2, 3]);
  t.equal(m[0].payload.readBigUInt64LE(0), 7n);
});

t.test('several messages in one write are all delivered', async (t) => {
  const path = join(sockDir(t), 's');
  const srv = await serve(t, path);
  const sock = await raw(t, path);
  const server = await srv.next();
  const got = messages(server, 50);
  sock.write(Buffer.concat(Array.from({ length: 50 }, (_, i) => frame(i + 1, 1, encodeU64(BigInt(i))))));
  const m = await got;
  t.same(m.map((x) => x.payload.readBigUInt64LE(0)), Array.from({ length: 50 }, (_, i) => BigInt(i)));
});

t.test('an oversized size field closes only that connection', async (t) => {
  const path = join(sockDir(t), 's');
  const srv = await serve(t, path);
  const bad = await raw(t, path);
  const badServer = await srv.next();
  const good = await VhostUserConnection.connect(path);
  t.teardown(() => good.close());
  const goodServer = await srv.next();
  const err = closed(badServer);
  bad.write(frame(1, 1, new Uint8Array(0), 4097));
  t.match(await err, { code: 'VHOST_USER_FRAMING', message: /4097/ });
  t.equal(badServer.isOpen, false);
  await new Promise<void>((r) => bad.on('close', () => r()).resume());
  const got = messages(goodServer, 1);
  good.send(1, 1, new Uint8Array(0));
  t.equal((await got)[0].request, 1, 'the other connection still works');
  const again = await VhostUserConnection.connect(path);
  again.close();
  t.pass('the listener still accepts');
});

t.test('a peer closing mid-header or mid-payload is a framing error', async (t) => {
  const path = join(sockDir(t), 's');
  const srv = await serve(t, path);
  for (const bytes of [frame(1, 1, new Uint8Array(0)).subarray(0, 5), frame(2, 1, encodeU64(1n)).subarray(0, 15)]) {
    const sock = await raw(t, path);
    const server = await srv.next();
    const err = closed(server);
    sock.end(bytes);
    t.match(await err, { code: 'VHOST_USER_FRAMING', message: /middle of a message/ });
  }
});

t.test('an orderly peer close calls onClose without an error', async (t) => {
  const path = join(sockDir(t), 's');
  const srv = await serve(t, path);
  const client = await VhostUserConnection.connect(path);
  const server = await srv.next();
  const err = closed(server);
  client.close();
  t.equal(await err, undefined);
  t.throws(() => server.send(1, 1, new Uint8Array(0)), { code: 'VHOST_USER_CLOSED' });
  t.throws(() => client.send(1, 1, new Uint8Array(0)), { code: 'VHOST_USER_CLOSED' });
});

t.test('the socket is created with mode 0600 by default, or the mode asked for', async (t) => {
  const dir = sockDir(t);
  await serve(t, join(dir, 'a'));
  t.equal(statSync(join(dir, 'a')).mode & 0o777, 0o600);
  t.ok(statSync(join(dir, 'a')).isSocket());
  await serve(t, join(dir, 'b'), 0o660);
  t.equal(statSync(join(dir, 'b')).mode & 0o777, 0o660);
});

t.test('close unlinks the socket file', async (t) => {
  const path = join(sockDir(t), 's');
  const l = await VhostUserListener.listen(path, {}, () => {});
  t.ok(existsSync(path));
  await l.close();
  t.notOk(existsSync(path));
});

t.test('listen and connect errors are coded', async (t) => {
  const dir = sockDir(t);
  writeFileSync(join(dir, 'f'), '');
  await t.rejects(VhostUserListener.listen(join(dir, 'f'), {}, () => {}), { code: 'VHOST_USER_SOCKET_IN_USE' });
  await t.rejects(VhostUserListener.listen(join(dir, 'x'.repeat(120)), {}, () => {}), { code: 'VHOST_USER_SOCKET_PATH' });
  await t.rejects(VhostUserConnection.connect(join(dir, 'missing')), { code: 'VHOST_USER_CONNECT_FAILED', errno: 2 });
});

t.test('more than 8 fds cannot be sent', async (t) => {
  const path = join(sockDir(t), 's');
  await serve(t, path);
  const c = await VhostUserConnection.connect(path);
  t.teardown(() => c.close());
  t.throws(() => c.send(1, 1, new Uint8Array(0), [0, 0, 0, 0, 0, 0, 0, 0, 0]), { code: 'VHOST_USER_PAYLOAD' });
});

/** A listener (python3: Node accepts at once) whose backlog is full until it starts accepting after `holdMs`. */
function fullBacklog(t: Test, path: string, holdMs: number): Promise<void> {
  const py = `
import socket, sys, time
p, hold = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_UNIX); s.bind(p); s.listen(0)
fill = []
while True:
    c = socket.socket(socket.AF_UNIX); c.setblocking(False)
    try: c.connect(p); fill.append(c)
    except BlockingIOError: break
print('full', len(fill), flush=True)
time.sleep(hold)
s.setblocking(False)
end = time.time() + 5
while time.time() < end:
    try: s.accept()
    except BlockingIOError: time.sleep(0.005)
`;
  const child = spawn('python3', ['-c', py, path, String(holdMs / 1000)], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => child.kill());
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('error', reject);
  });
}

t.test('connect waits out a full listen backlog without blocking the event loop', { skip: whichPython() }, async (t) => {
  const dir = sockDir(t);
  await fullBacklog(t, join(dir, 'busy'), 300);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  const t0 = Date.now();
  const c = await VhostUserConnection.connect(join(dir, 'busy'));
  clearInterval(timer);
  c.close();
  t.ok(Date.now() - t0 >= 200, `connected once the listener accepted (${Date.now() - t0} ms)`);
  t.ok(ticks >= 10, `the event loop kept running meanwhile (${ticks} timer ticks)`);
  await fullBacklog(t, join(dir, 'stuck'), 5000);
  await t.rejects(VhostUserConnection.connect(join(dir, 'stuck'), 50), { code: 'VHOST_USER_CONNECT_FAILED', errno: 11, message: /backlog still full after 50 ms/ });
});
