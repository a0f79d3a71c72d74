import t from 'tap';
import { execFileSync } from 'node:child_process';
import { constants, fstatSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventFd, VhostUserConnection } from '../src';
import { messages, serve, sockDir } from './fixtures/sockets';

// A timer alone is not a loop turn (it may fire before the poll phase); wait for a check phase too.
const turn = async () => {
  await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setImmediate(r));
};

t.test('signals before a wakeup are batched into one callback', async (t) => {
  const e = new EventFd();
  t.teardown(() => e.close());
  t.ok(e.fd >= 0);
  let calls = 0;
  e.signal();
  e.signal();
  e.signal();
  e.watch(() => calls++);
  await turn();
  t.equal(calls, 1, 'three signals, one callback');
  await turn();
  t.equal(calls, 1, 'the counter was cleared');
  e.signal();
  await turn();
  t.equal(calls, 2);
});

t.test('unwatch stops callbacks; watch again resumes', async (t) => {
  const e = new EventFd();
  t.teardown(() => e.close());
  let calls = 0;
  e.watch(() => calls++);
  e.unwatch();
  e.signal();
  await turn();
  t.equal(calls, 0);
  e.watch(() => calls++);
  await turn();
  t.equal(calls, 1, 'the pending signal is delivered after re-watching');
});

t.test('an eventfd passed over a socket signals the other side', async (t) => {
  const path = join(sockDir(t), 's');
  const srv = await serve(t, path);
  const client = await VhostUserConnection.connect(path);
  t.teardown(() => client.close());
  const server = await srv.next();
  const kick = new EventFd();
  t.teardown(() => kick.close());
  const got = messages(server, 1);
  client.send(12, 1, Buffer.alloc(8), [kick.fd]);
  const [m] = await got;
  const theirs = new EventFd(m.fds[0]);
  t.teardown(() => theirs.close());
  let woke = 0;
  theirs.watch(() => woke++);
  kick.signal();
  await turn();
  t.equal(woke, 1);
});

t.test('signal after close throws a coded error', async (t) => {
  const e = new EventFd();
  e.close();
  t.equal(e.fd, -1);
  t.throws(() => e.signal(), { code: 'VHOST_USER_CLOSED' });
  e.close();
  t.pass('close is idempotent');
});

t.test('an fd that is not an eventfd (a pipe whose writer is gone) is refused and closed, so it cannot spin the loop', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bw-fifo-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fifo = join(dir, 'f');
  execFileSync('mkfifo', [fifo]);
  const fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  t.throws(() => new EventFd(fd), { code: 'VHOST_USER_NOT_EVENTFD', message: /fd \d+ is \/.*\/f, not an eventfd/ });
  t.throws(() => fstatSync(fd), { code: 'EBADF' }, 'the refused fd was closed, not leaked');
});
