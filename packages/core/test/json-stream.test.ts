import t from 'tap';
import { DEFAULT_MAX_VALUE_BYTES, JsonStream } from '../src/rpc/json-stream';

/** Feeds every chunk and returns all values parsed, plus the first error message. */
function run(chunks: Array<string | Buffer>, stream = new JsonStream()): { values: unknown[]; error?: string } {
  const values: unknown[] = [];
  for (const c of chunks) {
    const r = stream.feed(typeof c === 'string' ? Buffer.from(c) : c);
    values.push(...r.values.map((v) => JSON.parse(v) as unknown));
    if (r.error) return { values, error: r.error.message };
  }
  return { values };
}

/** Every byte of `s` as its own chunk. */
function bytewise(s: string): Buffer[] {
  return [...Buffer.from(s)].map((b) => Buffer.from([b]));
}

t.test('splits concatenated values with no delimiter', async (t) => {
  t.same(run(['{"a":1}{"b":2}[3]']), { values: [{ a: 1 }, { b: 2 }, [3]] });
});

t.test('skips whitespace between values', async (t) => {
  t.same(run([' \n\t{"a":1}\r\n  {"b":2}\n']), { values: [{ a: 1 }, { b: 2 }] });
});

t.test('rpc.py request bytes (indent 2, no trailing newline)', async (t) => {
  const req = '{\n  "jsonrpc": "2.0",\n  "method": "bdev_get_bdevs",\n  "id": 1\n}';
  t.same(run([req]), { values: [{ jsonrpc: '2.0', method: 'bdev_get_bdevs', id: 1 }] });
});

t.test('one byte per chunk', async (t) => {
  const text = '{"s":"x}y{\\"z","n":[1,{"m":[]}]} [ ]';
  t.same(run(bytewise(text)), { values: [{ s: 'x}y{"z', n: [1, { m: [] }] }, []] });
});

t.test('brackets and quotes inside strings are ignored', async (t) => {
  t.same(run(['{"a":"]]}}[[{{","b":"\\\\"}{"c":"\\"}"}']), { values: [{ a: ']]}}[[{{', b: '\\' }, { c: '"}' }] });
});

t.test('escaped backslash before a closing quote, split across chunks', async (t) => {
  // "a\\" ends the string at the second quote; the escape state must survive the chunk boundary.
  t.same(run(['{"k":"a\\', '\\', '"}']), { values: [{ k: 'a\\' }] });
});

t.test('multi-byte UTF-8 character split across chunks', async (t) => {
  const bytes = Buffer.from('{"name":"ü€😀"}');
  const chunks = [bytes.subarray(0, 10), bytes.subarray(10, 13), bytes.subarray(13, 17), bytes.subarray(17)];
  t.same(run(chunks), { values: [{ name: 'ü€😀' }] });
});

t.test('invalid UTF-8 is an error', async (t) => {
  const r = run([Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])]);
  t.equal(r.error, 'value is not valid UTF-8');
});

t.test('a top-level scalar is an error', async (t) => {
  for (const text of ['"str"', '42', 'true', 'null', '}']) {
    const r = run([text]);
    t.match(r.error, /outside a JSON object or array/, text);
  }
});

t.test('values before a fault in the same chunk are still returned', async (t) => {
  const stream = new JsonStream();
  const r = stream.feed(Buffer.from('{"a":1} x{"b":2}'));
  t.same(r.values, ['{"a":1}']);
  t.equal(r.error?.offset, 8);
  const again = stream.feed(Buffer.from('{"c":3}'));
  t.same(again.values, [], 'a broken stream yields nothing more');
  t.equal(again.error, r.error);
});

t.test('a value over the limit is an error, in one chunk or many', async (t) => {
  const big = `{"x":"${'a'.repeat(100)}"}`;
  t.match(run([big], new JsonStream({ maxValueBytes: 64 })).error, /exceeds 64 bytes/);
  t.match(run(bytewise(big), new JsonStream({ maxValueBytes: 64 })).error, /exceeds 64 bytes/);
  t.match(run([big.slice(0, 50), big.slice(50)], new JsonStream({ maxValueBytes: 64 })).error, /exceeds 64 bytes/);
});

t.test('the limit applies per value, not per stream', async (t) => {
  const v = `{"x":"${'a'.repeat(50)}"}`;
  const r = run([v + v + v, v], new JsonStream({ maxValueBytes: 64 }));
  t.equal(r.error, undefined);
  t.equal(r.values.length, 4);
});

t.test('default limit is 256 KiB', async (t) => {
  t.equal(DEFAULT_MAX_VALUE_BYTES, 256 * 1024);
  const fits = `{"x":"${'a'.repeat(DEFAULT_MAX_VALUE_BYTES - 10)}"}`;
  t.equal(run([fits]).values.length, 1);
  t.match(run([`{"x":"${'a'.repeat(DEFAULT_MAX_VALUE_BYTES)}"}`]).error, /exceeds 262144 bytes/);
});

t.test('partial reports an unfinished value', async (t) => {
  const stream = new JsonStream();
  stream.feed(Buffer.from('{"a":'));
  t.equal(stream.partial, true);
  stream.feed(Buffer.from('1}  '));
  t.equal(stream.partial, false);
});

t.test('linear in input size: a 200 KiB value fed one byte at a time', async (t) => {
  // A splitter that rescanned its buffer on every chunk would do ~2e10 steps here.
  const text = `{"x":"${'a'.repeat(200 * 1024)}"}`;
  const stream = new JsonStream();
  const bytes = Buffer.from(text);
  const values: string[] = [];
  const started = process.hrtime.bigint();
  for (let i = 0; i < bytes.length; i++) values.push(...stream.feed(bytes.subarray(i, i + 1)).values);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  t.same(values, [text]);
  t.ok(ms < 5000, `took ${ms.toFixed(0)} ms`);
});
