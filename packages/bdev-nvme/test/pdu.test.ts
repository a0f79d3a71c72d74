import t, { type Test } from 'tap';
import { crc32c } from '../src/crc32c';
import { checkCommonHeader, Fes, type Pdu, PduError, PduFlag, PduType, parsePdu } from '../src/pdu';
import { dataDigest, decodeIc, encodeC2HData, encodeCapsuleCmd, encodeCapsuleResp, encodeH2CData, encodeIcReq, encodeIcResp, encodeR2T, encodeTermReq } from '../src/pdu-writer';

const OFF = { hdgst: false, ddgst: false };
const ON = { hdgst: true, ddgst: true };
const MAX = 1 << 20;

function parse(b: Buffer, fromHost: boolean, dg = OFF): Pdu {
  const out = {} as Pdu;
  checkCommonHeader(b, 0, fromHost, dg, MAX);
  parsePdu(b, 0, dg, out);
  return out;
}

function withData(hdr: Buffer, data: Buffer, dg: { ddgst: boolean }): Buffer {
  return Buffer.concat([hdr, data, ...(dg.ddgst ? [dataDigest([data])] : [])]);
}

function fes(t: Test, f: () => unknown, want: number, re: RegExp): void {
  try {
    f();
    t.fail('no error');
  } catch (e) {
    t.ok(e instanceof PduError, 'PduError');
    t.equal((e as PduError).fes, want, 'fes');
    t.match((e as Error).message, re);
  }
}

t.test('ICReq/ICResp round trip', async (t) => {
  const req = encodeIcReq({ pda: 0, hdgst: true, ddgst: false, limit: 3 });
  const p = parse(req, true);
  t.equal(p.type, PduType.IC_REQ);
  t.equal(p.plen, 128);
  t.same(decodeIc(p.hdr), { pfv: 0, pda: 0, hdgst: true, ddgst: false, limit: 3 });
  const resp = encodeIcResp({ pda: 1, hdgst: true, ddgst: true, limit: 131072 });
  t.same(decodeIc(parse(resp, false).hdr), { pfv: 0, pda: 1, hdgst: true, ddgst: true, limit: 131072 });
});

for (const dg of [OFF, ON]) {
  const tag = dg.hdgst ? 'digests on' : 'digests off';
  t.test(`CapsuleCmd with and without in-capsule data, ${tag}`, async (t) => {
    const sqe = Buffer.alloc(64, 0x5a);
    const bare = parse(encodeCapsuleCmd(sqe, 0, dg), true, dg);
    t.equal(bare.plen, 72 + (dg.hdgst ? 4 : 0));
    t.equal(bare.pdo, 0);
    t.same(bare.hdr.subarray(8), sqe);
    const data = Buffer.from('in-capsule payload!!');
    const full = withData(encodeCapsuleCmd(sqe, data.length, dg, 0), data, dg);
    const p = parse(full, true, dg);
    t.same(p.data, data);
    t.equal(p.flags & PduFlag.HDGSTF, dg.hdgst ? 1 : 0);
    const aligned = parse(withData(encodeCapsuleCmd(sqe, data.length, dg, 32), data, dg), true, dg);
    t.equal(aligned.pdo % 32, 0, 'pdo aligned to CPDA');
    t.same(aligned.data, data);
  });

  t.test(`CapsuleResp, R2T, H2CData, C2HData round trip, ${tag}`, async (t) => {
    const cqe = Buffer.alloc(16);
    cqe.writeUInt16LE(42, 12);
    t.equal(parse(encodeCapsuleResp(cqe, dg), false, dg).hdr.readUInt16LE(20), 42);
    const r2t = parse(encodeR2T({ cccid: 5, ttag: 9, offset: 4096, length: 8192 }, dg), false, dg);
    t.same([r2t.hdr.readUInt16LE(8), r2t.hdr.readUInt16LE(10), r2t.hdr.readUInt32LE(12), r2t.hdr.readUInt32LE(16)], [5, 9, 4096, 8192]);
    const payload = Buffer.alloc(300, 7);
    const h2c = parse(withData(encodeH2CData({ cccid: 5, ttag: 9, offset: 0, length: 300 }, true, dg), payload, dg), true, dg);
    t.equal(h2c.flags & PduFlag.LAST_PDU, PduFlag.LAST_PDU);
    t.same(h2c.data, payload);
    const c2h = parse(withData(encodeC2HData({ cccid: 1, ttag: 0, offset: 0, length: 300 }, true, true, dg), payload, dg), false, dg);
    t.equal(c2h.flags & (PduFlag.SUCCESS | PduFlag.LAST_PDU), PduFlag.SUCCESS | PduFlag.LAST_PDU);
    t.same(c2h.data, payload);
  });
}

t.test('termination request carries FES and the offending header', async (t) => {
  const p = parse(encodeTermReq(false, Fes.HEADER_DIGEST_ERROR, 0, Buffer.alloc(24, 1)), false);
  t.equal(p.hdr.readUInt16LE(8), Fes.HEADER_DIGEST_ERROR);
  t.equal(p.data.length, 24);
});

t.test('malformed PDUs are refused with a fatal error status', async (t) => {
  const resp = encodeCapsuleResp(Buffer.alloc(16), OFF);
  const unknown = Buffer.from(resp);
  unknown[0] = 0x0b;
  fes(t, () => parse(unknown, false), Fes.INVALID_HEADER_FIELD, /type 0x0b/);
  fes(t, () => parse(encodeIcReq({ pda: 0, hdgst: false, ddgst: false, limit: 0 }), false), Fes.INVALID_HEADER_FIELD, /unexpected PDU ICReq from the controller/);
  const badHlen = Buffer.from(resp);
  badHlen[2] = 30;
  fes(t, () => parse(badHlen, false), Fes.INVALID_HEADER_FIELD, /hlen 30, expected 24/);
  const badPlen = Buffer.from(resp);
  badPlen.writeUInt32LE(100, 4);
  fes(t, () => parse(badPlen, false), Fes.INVALID_HEADER_FIELD, /plen 100, expected 24/);
  const huge = encodeC2HData({ cccid: 0, ttag: 0, offset: 0, length: 16 }, true, false, OFF);
  huge.writeUInt32LE(0xffffffff, 4);
  fes(t, () => parse(huge, false), Fes.INVALID_HEADER_FIELD, /plen 4294967295/);
  const data = withData(encodeC2HData({ cccid: 0, ttag: 0, offset: 0, length: 16 }, true, false, OFF), Buffer.alloc(16), OFF);
  const badPdo = Buffer.from(data);
  badPdo[3] = 12;
  fes(t, () => parse(badPdo, false), Fes.INVALID_HEADER_FIELD, /pdo 12 inconsistent/);
  const pdoPastEnd = Buffer.from(data);
  pdoPastEnd[3] = 60;
  fes(t, () => parse(pdoPastEnd, false), Fes.INVALID_HEADER_FIELD, /pdo 60/);
  const noData = encodeC2HData({ cccid: 0, ttag: 0, offset: 0, length: 0 }, true, false, OFF);
  fes(t, () => parse(noData, false), Fes.INVALID_HEADER_FIELD, /C2HData without data/);
  const respPdo = Buffer.from(resp);
  respPdo[3] = 24;
  fes(t, () => parse(respPdo, false), Fes.INVALID_HEADER_FIELD, /pdo 24, expected 0/);
});

t.test('digest flags must match the negotiated state; mismatching digests are detected', async (t) => {
  const resp = encodeCapsuleResp(Buffer.alloc(16), OFF);
  const noFlag = Buffer.concat([resp, Buffer.alloc(4)]);
  noFlag.writeUInt32LE(28, 4); // right length for a header digest, but HDGSTF clear
  fes(t, () => parse(noFlag, false, ON), Fes.INVALID_HEADER_FIELD, /HDGSTF/);
  const good = encodeCapsuleResp(Buffer.alloc(16), ON);
  const badH = Buffer.from(good);
  badH[24] ^= 0xff;
  fes(t, () => parse(badH, false, ON), Fes.HEADER_DIGEST_ERROR, /header digest mismatch/);
  const payload = Buffer.alloc(64, 3);
  const c2h = withData(encodeC2HData({ cccid: 0, ttag: 0, offset: 0, length: 64 }, true, true, ON), payload, ON);
  const badD = Buffer.from(c2h);
  badD[badD.length - 1] ^= 1;
  fes(t, () => parse(badD, false, ON), 0, /data digest mismatch/);
  const flipped = Buffer.from(c2h);
  flipped[30] ^= 1; // a data byte: the data digest no longer matches
  fes(t, () => parse(flipped, false, ON), 0, /data digest mismatch/);
  t.equal(crc32c(good, 0, 0, 24), good.readUInt32LE(24), 'header digest is CRC32C of the header');
});
