import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { coreError } from '../src/errors';
import { createLogger } from '../src/logger';
import { RpcRegistry } from '../src/rpc/rpc-registry';
import { RpcServer, type RpcServerOptions } from '../src/rpc/rpc-server';

type Response = { jsonrpc: string; id: unknown; result?: unknown; error?: { code: number; message: string; data?: unknown } };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A raw client: writes bytes, reads the server's newline-framed answers. */
class Client {
  text = '';
  closed = false;
  private readonly decoder = new StringDecoder('utf8');
  private wake: () => void = () => undefined;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => this.poke(() => (this.text += this.decoder.write(d))));
    socket.on('close', () => this.poke(() => (this.closed = true)));
    socket.on('error', () => undefined);
  }

  static open(path: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = connect(path, () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }

  async send(data: string | Buffer, bytewise = false): Promise<void> {
    const bytes = Buffer.from(data);
    if (!bytewise) return void this.socket.write(bytes);
    // A pause after each byte makes the server see it as a separate read.
    for (let i = 0; i < bytes.length; i++) {
      this.socket.write(bytes.subarray(i, i + 1));
      await sleep(1);
    }
  }

  /** Waits for `n` complete lines; each must be exactly one compact JSON value. */
  async lines(n: number): Promise<Response[]> {
    await this.until(() => this.text.split('\n').length > n, `${n} response line(s)`);
    const parts = this.text.split('\n');
    this.text = parts.slice(n).join('\n');
    return parts.slice(0, n).map((l) => JSON.parse(l) as Response);
  }

  async call(req: object): Promise<Response> {
    await this.send(JSON.stringify(req));
    return (await this.lines(1))[0];
  }

  /** Everything received once a newline-terminated answer is in. */
  async raw(): Promise<string> {
    await this.until(() => this.text.endsWith('\n'), 'a full answer');
    return this.text;
  }

  waitClosed(): Promise<void> {
    return this.until(() => this.closed, 'connection close');
  }

  private poke(update: () => void): void {
    update();
    this.wake();
  }

  private async until(done: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 5000;
    while (!done()) {
      if (this.closed || Date.now() > deadline) throw new Error(`gave up waiting for ${what}; got ${JSON.stringify(this.text)}`);
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 50);
      });
    }
  }
}

/** Python's json.JSONDecoder().raw_decode after lstrip, as rpc.py reads: first value and the rest. */
function rawDecode(buf: string): [unknown, string] {
  const s = buf.trimStart();
  for (let end = 1; end <= s.length; end++) {
    try {
      return [JSON.parse(s.slice(0, end)), s.slice(end)];
    } catch {
      // not complete yet
    }
  }
  throw new Error(`no JSON value in ${JSON.stringify(buf)}`);
}

interface Fixture {
  dir: string;
  path: string;
  server: RpcServer;
  aborted: string[];
  open(): Promise<Client>;
}

function registry(aborted: string[]): RpcRegistry {
  const r = new RpcRegistry();
  r.state = 'runtime';
  r.add({
    name: 'echo',
    description: 'Returns its params.',
    params: { properties: { text: { type: 'string', description: 'text' }, n: { type: 'integer', description: 'n' } }, required: ['text'] },
    handler: (p: unknown) => p,
  });
  r.add({
    name: 'slow',
    description: 'Answers after ms milliseconds unless aborted.',
    params: { properties: { ms: { type: 'integer', description: 'delay in ms' }, tag: { type: 'string', description: 'tag' } }, required: ['ms'] },
    handler: (p: { ms: number; tag?: string }, ctx) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => resolve(p.ms), p.ms);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          aborted.push(p.tag ?? '');
          reject(ctx.signal.reason);
        });
      }),
  });
  r.add({ name: 'bdev_get_bdevs', description: 'x', params: { properties: { name: { type: 'string', description: 'bdev' } } }, handler: () => [{ name: 'Malloc0', num_blocks: 16384 }] });
  r.add({ name: 'fail_coded', description: 'x', handler: () => Promise.reject(coreError('BDEV_NOT_FOUND', 'bdev Nope does not exist')) });
  r.add({ name: 'fail_plain', description: 'x', handler: () => { throw new Error('boom'); } });
  r.add({ name: 'nothing', description: 'x', handler: () => undefined });
  return r;
}

async function fixture(t: Test, opts: Partial<RpcServerOptions> = {}, listen = true): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'bw-rpc-'));
  const path = join(dir, 'spdk.sock');
  const aborted: string[] = [];
  const reg = registry(aborted);
  const server = new RpcServer({ path, dispatch: (m, p, ctx) => reg.call(m, p, ctx), log: createLogger('silent'), ...opts });
  const clients: Client[] = [];
  t.teardown(async () => {
    for (const c of clients) c.socket.destroy();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  if (listen) await server.listen();
  const open = async () => {
    const c = await Client.open(path);
    clients.push(c);
    return c;
  };
  return { dir, path, server, aborted, open };
}

const RPC_PY_PLAIN = '{\n  "jsonrpc": "2.0",\n  "method": "bdev_get_bdevs",\n  "id": 1\n}';
const RPC_PY_PARAMS = '{\n  "jsonrpc": "2.0",\n  "method": "bdev_get_bdevs",\n  "id": 1,\n  "params": {\n    "name": "Malloc0"\n  }\n}';
const BDEVS = '{"jsonrpc":"2.0","id":1,"result":[{"name":"Malloc0","num_blocks":16384}]}\n';

t.test('rpc.py request bytes get a compact answer and exactly one newline', async (t) => {
  const f = await fixture(t);
  for (const req of [RPC_PY_PLAIN, RPC_PY_PARAMS]) {
    const c = await f.open();
    await c.send(req);
    const text = await c.raw();
    t.equal(text, BDEVS);
    const [value, rest] = rawDecode(text);
    t.same(Object.keys(value as object), ['jsonrpc', 'id', 'result'], 'member order as SPDK');
    t.equal(rest, '\n');
  }
});

t.test('two requests concatenated in one write', async (t) => {
  const f = await fixture(t);
  const c = await f.open();
  await c.send('{"jsonrpc":"2.0","method":"echo","id":1,"params":{"text":"a"}}{"jsonrpc":"2.0","method":"echo","id":2,"params":{"text":"b"}}');
  const rs = await c.lines(2);
  t.same(rs.map((r) => r.id).sort(), [1, 2]);
  t.same(rs.find((r) => r.id === 2)?.result, { text: 'b' });
});

t.test('a request delivered one byte per write', async (t) => {
  const f = await fixture(t);
  const c = await f.open();
  await c.send(RPC_PY_PARAMS, true);
  const [r] = await c.lines(1);
  t.same(r.result, [{ name: 'Malloc0', num_blocks: 16384 }]);
});

t.test('a UTF-8 character split across writes', async (t) => {
  const f = await fixture(t);
  const c = await f.open();
  const bytes = Buffer.from('{"jsonrpc":"2.0","method":"echo","id":7,"params":{"text":"€😀"}}');
  const cut = bytes.indexOf(0xe2) + 1;
  await c.send(bytes.subarray(0, cut));
  await sleep(20);
  await c.send(bytes.subarray(cut, cut + 4));
  await sleep(20);
  await c.send(bytes.subarray(cut + 4));
  const [r] = await c.lines(1);
  t.same(r.result, { text: '€😀' });
});

t.test('answers as requests complete, out of order', async (t) => {
  const f = await fixture(t);
  const c = await f.open();
  await c.send('{"jsonrpc":"2.0","method":"slow","id":1,"params":{"ms":200}}{"jsonrpc":"2.0","method":"echo","id":2,"params":{"text":"fast"}}');
  const [first, second] = await c.lines(2);
  t.equal(first.id, 2);
  t.same(second, { jsonrpc: '2.0', id: 1, result: 200 });
});

t.test('malformed JSON: -32700, that connection closed, others keep working', async (t) => {
  const f = await fixture(t);
  const good = await f.open();
  const bad = await f.open();
  await bad.send('{"jsonrpc":"2.0","method":"echo",,}');
  const [r] = await bad.lines(1);
  t.same(r, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
  await bad.waitClosed();
  t.same((await good.call({ jsonrpc: '2.0', method: 'echo', id: 1, params: { text: 'ok' } })).result, { text: 'ok' });
  const later = await f.open();
  t.same((await later.call({ jsonrpc: '2.0', method: 'echo', id: 2, params: { text: 'ok' } })).result, { text: 'ok' });
});

t.test('a top-level scalar or an oversized request is a parse error', async (t) => {
  const f = await fixture(t);
  const scalar = await f.open();
  await scalar.send('"bdev_get_bdevs"');
  t.equal((await scalar.lines(1))[0].error?.code, -32700);
  await scalar.waitClosed();
  const big = await f.open();
  await big.send(`{"jsonrpc":"2.0","method":"echo","id":1,"params":{"text":"${'x'.repeat(300 * 1024)}"}}`);
  t.equal((await big.lines(1))[0].error?.code, -32700);
  await big.waitClosed();
});

t.test('unknown method is -32601', async (t) => {
  const f = await fixture(t);
  const c = await f.open();
  t.same(await c.call({ jsonrpc: '2.0', method: 'nope', id: 5 }), { jsonrpc: '2.0', id: 5, error: { code: -32601, message: 'Method not found' } });
});

t.test('bad params are -32602 naming method and param', async (t) => {
  const f = await fixture(t);
  const c = await f.open();
  const missing = await c.call({ jsonrpc: '2.0', method: 'echo', id: 1, params: {} });
  t.same(missing.error, { code: -32602, message: "echo: missing required param 'text'" });
  const typed = await c.call({ jsonrpc: '2.0', method: 'echo', id: 2, params: { text: 'a', n: 'x' } });
  t.equal(typed.error?.code, -32602);
  t.match(typed.error?.message, /^echo: .*'n'/);
  const arr = await c.call({ jsonrpc: '2.0', method: 'echo', id: 3, params: ['a'] });
  t.same(arr.error, { code: -32602, message: 'echo: params must be an object' });
});

t.test('invalid envelopes are -32600 with id null', async (t) => {
  const f = await fixture(t);
  const c = await f.open();
  const cases = [
    { jsonrpc: '1.0', method: 'echo', id: 1, params: { text: 'a' } },
    { jsonrpc: '2.0', method: 'echo', id: { x: 1 }, params: { text: 'a' } },
    { jsonrpc: '2.0', method: 'echo', id: [1], params: { text: 'a' } },
    { jsonrpc: '2.0', id: 4 },
    { jsonrpc: '2.0', method: 7, id: 5 },
    { jsonrpc: '2.0', method: 'echo', id: 6, params: 'text' },
  ];
  for (const req of cases) {
    t.same(await c.call(req), { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid request' } }, JSON.stringify(req));
  }
});

t.test('notifications: success is silent, errors are sent with id null', async (t) => {
  const f = await fixture(t);
  const c = await f.open();
  await c.send('{"jsonrpc":"2.0","method":"echo","params":{"text":"a"}}{"jsonrpc":"2.0","method":"echo","id":null,"params":{"text":"b"}}');
  t.same((await c.call({ jsonrpc: '2.0', method: 'echo', id: 9, params: { text: 'c' } })).id, 9, 'first answer is the request');
  await c.send('{"jsonrpc":"2.0","method":"nope"}');
  t.same(await c.lines(1), [{ jsonrpc: '2.0', id: null, error: { code: -32601, message: 'Method not found' } }]);
  await sleep(50);
  t.equal(c.text, '', 'nothing else arrived');
});

t.test('batch: one array answer without notification results', async (t) => {
  const f = await fixture(t);
  const c = await f.open();
  await c.send(JSON.stringify([
    { jsonrpc: '2.0', method: 'echo', id: 1, params: { text: 'a' } },
    { jsonrpc: '2.0', method: 'echo', params: { text: 'silent' } },
    { jsonrpc: '2.0', method: 'nope', id: 3 },
    42,
  ]));
  const [batch] = (await c.lines(1)) as unknown as Response[][];
  t.same(batch, [
    { jsonrpc: '2.0', id: 1, result: { text: 'a' } },
    { jsonrpc: '2.0', id: 3, error: { code: -32601, message: 'Method not found' } },
    { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid request' } },
  ]);
  t.same(await c.call([]), { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid request' } }, 'empty batch');
  await c.send('[{"jsonrpc":"2.0","method":"echo","params":{"text":"a"}}]');
  t.equal((await c.call({ jsonrpc: '2.0', method: 'nothing', id: 4 })).id, 4, 'all-notification batch gets no answer');
});

t.test('error mapping and undefined results', async (t) => {
  const f = await fixture(t);
  const c = await f.open();
  t.same(await c.call({ jsonrpc: '2.0', method: 'fail_coded', id: 1 }), {
    jsonrpc: '2.0',
    id: 1,
    error: { code: -19, message: 'bdev Nope does not exist', data: { code: 'BDEV_NOT_FOUND' } },
  });
  t.same((await c.call({ jsonrpc: '2.0', method: 'fail_plain', id: 2 })).error, { code: -32603, message: 'Internal error: boom' });
  t.same(await c.call({ jsonrpc: '2.0', method: 'nothing', id: 'x' }), { jsonrpc: '2.0', id: 'x', result: null });
});

t.test('50 concurrent clients, 20 requests each', async (t) => {
  const f = await fixture(t);
  const clients = await Promise.all(Array.from({ length: 50 }, () => f.open()));
  const results = await Promise.all(
    clients.map(async (c, ci) => {
      const reqs = Array.from({ length: 20 }, (_, i) => JSON.stringify({ jsonrpc: '2.0', method: 'echo', id: i, params: { text: `${ci}-${i}`, n: i } }));
      await c.send(reqs.join(ci % 2 ? '\n' : ''));
      const rs = await c.lines(20);
      return rs.every((r) => (r.result as { text: string }).text === `${ci}-${String(r.id)}`) && new Set(rs.map((r) => r.id)).size === 20;
    }),
  );
  t.equal(results.filter(Boolean).length, 50);
});

t.test('a client leaving mid-request is aborted and harms nobody', async (t) => {
  const f = await fixture(t);
  const other = await f.open();
  const leaver = await f.open();
  await leaver.send('{"jsonrpc":"2.0","method":"slow","id":1,"params":{"ms":5000,"tag":"leaver"}}');
  await sleep(50);
  leaver.socket.destroy();
  const deadline = Date.now() + 2000;
  while (f.aborted.length === 0 && Date.now() < deadline) await sleep(10);
  t.same(f.aborted, ['leaver']);
  t.same((await other.call({ jsonrpc: '2.0', method: 'slow', id: 2, params: { ms: 10 } })).result, 10);
});

t.test('clients vanishing right after writing do not crash the server', async (t) => {
  const f = await fixture(t);
  for (let i = 0; i < 20; i++) {
    const c = await f.open();
    await c.send('{"jsonrpc":"2.0","method":"bdev_get_bdevs","id":1}{"jsonrpc":"2.0","method":"slow","id":2,"params":{"ms":1}}');
    c.socket.destroy();
  }
  await sleep(100);
  const c = await f.open();
  t.equal((await c.call({ jsonrpc: '2.0', method: 'nothing', id: 3 })).id, 3);
});

t.test('extra clients beyond maxConnections are closed at once', async (t) => {
  const f = await fixture(t, { maxConnections: 2 });
  const a = await f.open();
  const b = await f.open();
  await a.call({ jsonrpc: '2.0', method: 'nothing', id: 1 });
  await b.call({ jsonrpc: '2.0', method: 'nothing', id: 1 });
  const extra = await f.open();
  await extra.waitClosed();
  t.equal(extra.text, '');
  t.equal((await a.call({ jsonrpc: '2.0', method: 'nothing', id: 2 })).id, 2);
});

t.test('socket mode is 0600 by default, or as asked; umask restored', async (t) => {
  const umask = process.umask(0o022);
  t.teardown(() => void process.umask(umask));
  const f = await fixture(t);
  t.equal(statSync(f.path).mode & 0o777, 0o600);
  t.equal(process.umask(0o022), 0o022, 'umask restored after bind');
  const g = await fixture(t, { mode: 0o660 });
  t.equal(statSync(g.path).mode & 0o777, 0o660);
});

t.test('a second server on the same path is refused; the first keeps serving', async (t) => {
  const f = await fixture(t);
  const ino = statSync(f.path).ino;
  const second = new RpcServer({ path: f.path, dispatch: async () => null, log: createLogger('silent') });
  await t.rejects(second.listen(), { code: 'RPC_SOCKET_IN_USE', message: `RPC socket ${f.path} is in use by another process (lock ${f.path}.lock held)` });
  t.equal(statSync(f.path).ino, ino, 'socket untouched');
  const c = await f.open();
  t.equal((await c.call({ jsonrpc: '2.0', method: 'nothing', id: 1 })).id, 1);
});

t.test('a stale socket and lock file without a holder are replaced', async (t) => {
  const f = await fixture(t, {}, false);
  // A killed daemon leaves its socket behind: bind in a child and SIGKILL it.
  const script = `require('net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))`;
  await new Promise((resolve) => spawn(process.execPath, ['-e', script, f.path]).on('exit', resolve));
  t.ok(statSync(f.path).isSocket(), 'stale socket exists');
  rmSync(`${f.path}.lock`, { force: true });
  spawnSync('touch', [`${f.path}.lock`]);
  await f.server.listen();
  const c = await f.open();
  t.equal((await c.call({ jsonrpc: '2.0', method: 'nothing', id: 1 })).id, 1);
});

t.test('close() aborts in-flight requests and removes socket and lock file', async (t) => {
  const f = await fixture(t);
  const c = await f.open();
  await c.send('{"jsonrpc":"2.0","method":"slow","id":1,"params":{"ms":5000,"tag":"inflight"}}');
  await sleep(50);
  await f.server.close();
  t.same(f.aborted, ['inflight']);
  await c.waitClosed();
  t.equal(existsSync(f.path), false);
  t.equal(existsSync(`${f.path}.lock`), false);
  await f.server.listen();
  t.ok(existsSync(f.path), 'can listen again');
});

const PY_CLIENT = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
dec = json.JSONDecoder()
buf = ''
def call(req):
    global buf
    s.sendall(json.dumps(req, indent=2).encode('utf-8'))
    while True:
        buf = buf.lstrip()
        try:
            resp, idx = dec.raw_decode(buf)
            buf = buf[idx:]
            return resp
        except ValueError:
            data = s.recv(4096)
            if not data:
                raise SystemExit('connection closed with partial response: ' + buf)
            buf += data.decode('utf-8')
out = [call({'jsonrpc': '2.0', 'method': 'bdev_get_bdevs', 'id': 1}),
       call({'jsonrpc': '2.0', 'method': 'echo', 'id': 2, 'params': {'text': 'h\\u00e9llo \\u20ac'}}),
       call({'jsonrpc': '2.0', 'method': 'nope', 'id': 3})]
print(json.dumps(out))
`;

const hasPython = spawnSync('python3', ['--version']).status === 0;
const pythonSkip = hasPython || process.env.CI === 'true' ? false : 'python3 not found: install python3 to run the rpc.py-style client test';

t.test('python3 client framed like rpc.py', { skip: pythonSkip }, async (t) => {
  // Under CI=true a missing python3 is not skipped: execFile below fails the test.
  const f = await fixture(t);
  const { stdout } = await promisify(execFile)('python3', ['-c', PY_CLIENT, f.path], { timeout: 10000 });
  t.same(JSON.parse(stdout), [
    { jsonrpc: '2.0', id: 1, result: [{ name: 'Malloc0', num_blocks: 16384 }] },
    { jsonrpc: '2.0', id: 2, result: { text: 'héllo €' } },
    { jsonrpc: '2.0', id: 3, error: { code: -32601, message: 'Method not found' } },
  ]);
});
