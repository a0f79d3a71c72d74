import t from 'tap';
import { createServer, type Server, type Socket } from 'node:net';
import { DataDir, type NvmeRequest, QP_DISCONNECTED } from '../src/qpair';
import { PduType } from '../src/pdu';
import { PduReader } from '../src/pdu-reader';
import { encodeC2HData, encodeCapsuleResp, encodeIcResp, encodeR2T } from '../src/pdu-writer';
import { TcpQpair } from '../src/tcp-qpair';

type Behaviour = (sock: Socket, pdu: { type: number; hdr: Buffer; data: Buffer }) => void;

/** A scripted NVMe/TCP target on loopback: answers ICReq, then hands each PDU to `behave`. */
async function target(t: { teardown(f: () => unknown): void }, behave: Behaviour, ic = { hdgst: false, ddgst: false, limit: 65536 }): Promise<number> {
  const srv: Server = createServer((sock) => {
    const dg = { hdgst: false, ddgst: false };
    const r = new PduReader(true, dg, 1 << 20, (p) => {
      if (p.type === PduType.IC_REQ) {
        sock.write(encodeIcResp({ pda: 0, ...ic }));
        dg.hdgst = ic.hdgst;
        dg.ddgst = ic.ddgst;
        return;
      }
      behave(sock, { type: p.type, hdr: Buffer.from(p.hdr), data: Buffer.from(p.data) });
    }, () => sock.destroy());
    sock.on('data', (d) => r.push(d));
    sock.on('error', () => undefined);
  });
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
  t.teardown(() => srv.close());
  return (srv.address() as { port: number }).port;
}

const open = (port: number, extra: Partial<Parameters<typeof TcpQpair.connect>[0]> = {}) => TcpQpair.connect({
  host: '127.0.0.1', port, qid: 1, depth: 8, hdgst: false, ddgst: false, inCapsuleMax: 4096, connectTimeoutMs: 2000, timeoutMs: 0, ...extra,
});

function cqe(cid: number, sf = 0): Buffer {
  const c = Buffer.alloc(16);
  c.writeUInt16LE(cid, 12);
  c.writeUInt16LE(sf << 1, 14);
  return c;
}

function run(qp: TcpQpair, dir: DataDir, buf: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const r = qp.alloc()!;
    r.sqe.fill(0);
    r.dir = dir;
    r.iovs = [buf];
    r.dataLen = buf.length;
    r.cb = (st: number, _req: NvmeRequest) => resolve(st);
    qp.submit(r);
  });
}

t.test('read via C2HData with SUCCESS; write via R2T and H2CData in maxh2cdata pieces', async (t) => {
  const written: Buffer[] = [];
  const port = await target(t, (sock, p) => {
    const cid = p.hdr.readUInt16LE(10);
    if (p.type === PduType.CAPSULE_CMD && p.hdr[39 + 8] === 0x5a && p.hdr.readUInt32LE(32 + 8) === 8192 && p.data.length === 0) {
      if (written.length === 0 && p.hdr[8] === 0) {
        const d = Buffer.alloc(8192, 0xab);
        sock.write(Buffer.concat([encodeC2HData({ cccid: cid, ttag: 0, offset: 0, length: 4096 }, false, false, { hdgst: false, ddgst: false }), d.subarray(0, 4096)]));
        sock.write(Buffer.concat([encodeC2HData({ cccid: cid, ttag: 0, offset: 4096, length: 4096 }, true, true, { hdgst: false, ddgst: false }), d.subarray(4096)]));
      }
    }
    if (p.type === PduType.CAPSULE_CMD && p.hdr[8] === 1) sock.write(encodeR2T({ cccid: cid, ttag: 3, offset: 0, length: 8192 }, { hdgst: false, ddgst: false }));
    if (p.type === PduType.H2C_DATA) {
      written.push(p.data);
      if (p.hdr[1] & 4) sock.write(encodeCapsuleResp(cqe(p.hdr.readUInt16LE(8)), { hdgst: false, ddgst: false }));
    }
  }, { hdgst: false, ddgst: false, limit: 4096 });
  const qp = await open(port);
  t.teardown(() => qp.close());
  const buf = Buffer.alloc(8192);
  t.equal(await run(qp, DataDir.C2H, buf), 0);
  t.ok(buf.every((b) => b === 0xab), 'read data placed');
  const w = Buffer.alloc(8192);
  for (let i = 0; i < w.length; i++) w[i] = i & 0xff;
  const r = qp.alloc()!;
  r.sqe.fill(0);
  r.sqe[0] = 1;
  r.dir = DataDir.H2C;
  r.iovs = [w.subarray(0, 1000), w.subarray(1000)];
  r.dataLen = 8192;
  const st = await new Promise<number>((res) => { r.cb = (s) => res(s); qp.submit(r); });
  t.equal(st, 0);
  t.equal(written.length, 2, 'two H2CData PDUs of maxh2cdata 4096');
  t.same(Buffer.concat(written), w);
});

t.test('hostile target: bad PDUs reset the connection, outstanding commands fail, no crash', async (t) => {
  const cases: Array<[string, (sock: Socket, cid: number) => void, RegExp]> = [
    ['unknown type', (s) => s.write(Buffer.from([0x0b, 0, 24, 0, 24, 0, 0, 0, ...Buffer.alloc(16)])), /unexpected PDU type 0x0b/],
    ['bad hlen', (s) => s.write(Buffer.from([5, 0, 16, 0, 24, 0, 0, 0, ...Buffer.alloc(16)])), /hlen 16/],
    ['huge plen', (s) => s.write(Buffer.from([7, 0, 24, 24, 0xff, 0xff, 0xff, 0x7f])), /plen/],
    ['completion for an unknown cid', (s) => s.write(encodeCapsuleResp(cqe(7), { hdgst: false, ddgst: false })), /not outstanding/],
    ['C2HData past the end', (s, cid) => s.write(Buffer.concat([encodeC2HData({ cccid: cid, ttag: 0, offset: 4096, length: 512 }, true, true, { hdgst: false, ddgst: false }), Buffer.alloc(512)])), /offset 4096/],
    ['termination request', (s) => s.write(Buffer.from([3, 0, 24, 0, 24, 0, 0, 0, 1, ...Buffer.alloc(15)])), /C2HTermReq FES 0x1/],
  ];
  for (const [name, act, re] of cases) {
    await t.test(name, async (t) => {
      let termReq = false;
      const port = await target(t, (sock, p) => {
        if (p.type === PduType.CAPSULE_CMD) act(sock, p.hdr.readUInt16LE(10));
        if (p.type === PduType.H2C_TERM_REQ) termReq = true;
      });
      const qp = await open(port);
      const lost = new Promise<Error>((res) => { qp.onDisconnect = res; });
      const st = await run(qp, DataDir.C2H, Buffer.alloc(4096));
      t.equal(st, QP_DISCONNECTED);
      const err = await lost;
      t.equal((err as Error & { code: string }).code, 'NVME_PROTOCOL');
      t.match(err.message, re);
      t.equal(qp.alloc(), null, 'queue pair closed');
      await new Promise((r) => setTimeout(r, 50));
      if (name !== 'termination request') t.ok(termReq, 'H2CTermReq sent before closing');
    });
  }
});

t.test('data digest mismatch from the target resets the connection', async (t) => {
  const dg = { hdgst: true, ddgst: true };
  const port = await target(t, (sock, p) => {
    if (p.type !== PduType.CAPSULE_CMD) return;
    const d = Buffer.alloc(512, 1);
    sock.write(Buffer.concat([encodeC2HData({ cccid: p.hdr.readUInt16LE(10), ttag: 0, offset: 0, length: 512 }, true, true, dg), d, Buffer.from([1, 2, 3, 4])]));
  }, { ...dg, limit: 65536 });
  const qp = await open(port, { hdgst: true, ddgst: true });
  const lost = new Promise<Error>((res) => { qp.onDisconnect = res; });
  t.equal(await run(qp, DataDir.C2H, Buffer.alloc(512)), QP_DISCONNECTED);
  t.match((await lost).message, /data digest mismatch/);
});

t.test('connection set-up errors: refused, no ICResp, closed before ICResp, digest not asked for', async (t) => {
  const srv = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const freePort = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  await t.rejects(open(freePort), { code: 'NVME_CONNECT_REFUSED' });
  const mute = createServer((s) => s.on('error', () => undefined)).listen(0, '127.0.0.1');
  await new Promise((r) => mute.once('listening', r));
  t.teardown(() => mute.close());
  await t.rejects(open((mute.address() as { port: number }).port, { connectTimeoutMs: 200 }), { code: 'NVME_CONNECT_TIMEOUT' });
  const closer = createServer((s) => s.destroy()).listen(0, '127.0.0.1');
  await new Promise((r) => closer.once('listening', r));
  t.teardown(() => closer.close());
  await t.rejects(open((closer.address() as { port: number }).port), { code: 'NVME_CONNECT_RESET' });
  const port = await target(t, () => undefined, { hdgst: true, ddgst: false, limit: 65536 });
  await t.rejects(open(port), { code: 'NVME_ICRESP_INVALID', message: /did not ask for/ });
});
