import t from 'tap';
import { BEGIN_MARKER, parseSerialFrame } from '../src/serial-frame';

const frame = (body: Buffer | string, rc?: number) =>
  Buffer.concat([Buffer.from('noise'), Buffer.from(BEGIN_MARKER), Buffer.from(body), Buffer.from(rc === undefined ? '' : `\n@@BLOCKWORK-END ${rc}@@\n`)]);

t.test('output and exit code between the markers, byte-exact', async (t) => {
  const body = Buffer.from([0, 10, 13, 0xff, 0x80, 10]);
  const f = parseSerialFrame(frame(body, 7));
  t.equal(f.exitCode, 7);
  t.ok(f.output.equals(body));
});

t.test('empty output and output without a final newline', async (t) => {
  t.same(parseSerialFrame(frame('', 0)), { exitCode: 0, output: Buffer.alloc(0) });
  t.equal(parseSerialFrame(frame('abc', 1)).output.toString(), 'abc');
});

t.test('an end-marker look-alike inside the output is part of the output', async (t) => {
  const body = 'x\n@@BLOCKWORK-END 9@@\ny';
  const f = parseSerialFrame(frame(body, 2));
  t.equal(f.exitCode, 2);
  t.equal(f.output.toString(), body);
});

t.test('no end marker: exitCode null, partial output', async (t) => {
  t.same(parseSerialFrame(frame('part')), { exitCode: null, output: Buffer.from('part') });
  t.same(parseSerialFrame(Buffer.from('booting...')), { exitCode: null, output: Buffer.alloc(0) });
});
