import t from 'tap';
import { createServer } from 'node:net';
import { firstReachable, parseMonHost } from '../src/mon-probe';

t.test('parses the mon_host forms librados accepts', async (t) => {
  t.same(parseMonHost('[v2:127.0.0.1:3300,v1:127.0.0.1:6789]'), [{ host: '127.0.0.1', port: 3300 }, { host: '127.0.0.1', port: 6789 }]);
  t.same(parseMonHost('10.0.0.1:6789, 10.0.0.2'), [{ host: '10.0.0.1', port: 6789 }, { host: '10.0.0.2', port: 3300 }, { host: '10.0.0.2', port: 6789 }]);
  t.same(parseMonHost('[::1]:6789'), [{ host: '::1', port: 6789 }]);
  t.same(parseMonHost(''), []);
});

t.test('firstReachable finds a listening address and ignores closed ones', async (t) => {
  const s = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  t.teardown(() => s.close());
  const port = (s.address() as { port: number }).port;
  t.equal(await firstReachable([{ host: '127.0.0.1', port: 9 }, { host: '127.0.0.1', port }]), `127.0.0.1:${port}`);
  t.equal(await firstReachable([{ host: '127.0.0.1', port: 9 }]), null);
});
