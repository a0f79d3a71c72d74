import { connect as netConnect, type Socket } from 'node:net';
import { sliceIovs } from '@blockwork/core';
import { nvmeError } from './errors';
import { SGL_DATA_BLOCK_OFFSET, SGL_TRANSPORT_DATA_BLOCK } from './nvme-spec';
import { type DigestState, Fes, type Pdu, PduError, PduFlag, PduType, pduTypeName } from './pdu';
import { PduReader } from './pdu-reader';
import { dataDigest, decodeIc, encodeCapsuleCmd, encodeH2CData, encodeIcReq, encodeTermReq } from './pdu-writer';
import { DataDir, NvmeQpair, type NvmeRequest, QP_DISCONNECTED } from './qpair';

/** Where and how to open one NVMe/TCP connection (one queue pair). */
export interface TcpQpairOptions {
  host: string;
  port: number;
  /** 4 or 6; default: by address. */
  family?: 4 | 6;
  qid: number;
  /** Queue entries (SQSIZE + 1). */
  depth: number;
  /** Ask for header / data digests in ICReq. */
  hdgst: boolean;
  ddgst: boolean;
  /** Largest write sent as in-capsule data, in bytes (8192 on the admin queue, IOCCSZ × 16 − 64 on I/O queues). */
  inCapsuleMax: number;
  /** TCP connect + ICReq/ICResp budget, ms. */
  connectTimeoutMs: number;
  /** Per-command timeout, ms (0 = none). */
  timeoutMs: number;
  /** Largest C2HData PDU accepted, bytes. Default 1 MiB + headers. */
  maxPlen?: number;
}

const ICRESP_MIN_MAXH2CDATA = 4096;

/**
 * A queue pair over one NVMe/TCP connection: ICReq/ICResp, capsules, in-capsule or R2T/H2CData
 * writes, C2HData reads, digests. Every capsule written in one event-loop turn leaves in one
 * writev (the socket is corked until the next tick). A malformed PDU or a termination request
 * from the controller resets the connection: outstanding commands complete with QP_DISCONNECTED
 * and `onDisconnect` gets an error naming the cause.
 */
export class TcpQpair extends NvmeQpair {
  readonly digests: DigestState = { hdgst: false, ddgst: false };
  /** From ICResp: largest H2CData payload, bytes. */
  maxH2CData = 0;
  /** From ICResp: controller PDU data alignment in bytes (0 = none). */
  cpdaBytes = 0;
  /** Called once when the connection ends for any reason after set-up (not after close()). */
  onDisconnect: ((err: Error) => void) | null = null;
  private readonly reader: PduReader;
  private corked = false;
  private ended = false;
  private icWaiter: ((pdu: Pdu | Error) => void) | null = null;
  private readonly uncork = () => {
    this.corked = false;
    this.sock.uncork();
  };

  private constructor(private readonly sock: Socket, readonly opts: TcpQpairOptions) {
    super(opts.qid, opts.depth, opts.timeoutMs);
    const maxPlen = opts.maxPlen ?? (1 << 20) + 256;
    this.reader = new PduReader(false, this.digests, maxPlen, (p) => this.onPdu(p), (e) => this.protocolError(e));
    sock.on('data', (d: Buffer) => this.reader.push(d));
    sock.on('error', (e) => this.lost(e));
    sock.on('close', () => this.lost(nvmeError('NVME_DISCONNECTED', `${this.where()}: connection closed by the target`)));
  }

  /** "qid 1 of 127.0.0.1:4420" for messages. */
  where(): string {
    return `qid ${this.qid} of ${this.opts.host}:${this.opts.port}`;
  }

  /**
   * Opens the TCP connection and exchanges ICReq/ICResp. Rejects with NVME_CONNECT_REFUSED,
   * NVME_CONNECT_TIMEOUT, NVME_CONNECT_RESET or NVME_ICRESP_INVALID.
   */
  static connect(opts: TcpQpairOptions): Promise<TcpQpair> {
    return new Promise((resolve, reject) => {
      const sock = netConnect({ host: opts.host, port: opts.port, family: opts.family, noDelay: true });
      let qp: TcpQpair | null = null;
      const fail = (e: Error) => {
        clearTimeout(timer);
        sock.destroy();
        qp?.failAll(QP_DISCONNECTED);
        reject(e);
      };
      const timer = setTimeout(() => fail(nvmeError('NVME_CONNECT_TIMEOUT',
        `no ICResp from ${opts.host}:${opts.port} within ${opts.connectTimeoutMs} ms`)), opts.connectTimeoutMs);
      sock.once('error', (e: NodeJS.ErrnoException) => {
        if (qp === null) fail(connectError(opts, e));
      });
      sock.once('connect', () => {
        qp = new TcpQpair(sock, opts);
        qp.icWaiter = (r) => {
          qp!.icWaiter = null;
          if (r instanceof Error) return fail(setupError(opts, r));
          try {
            qp!.acceptIcResp(r);
          } catch (e) {
            return fail(e as Error);
          }
          clearTimeout(timer);
          resolve(qp!);
        };
        sock.write(encodeIcReq({ pda: 0, hdgst: opts.hdgst, ddgst: opts.ddgst, limit: 0 }));
      });
    });
  }

  private acceptIcResp(pdu: Pdu): void {
    const ic = decodeIc(pdu.hdr);
    const bad = (why: string) => nvmeError('NVME_ICRESP_INVALID', `${this.where()}: ICResp ${why}`);
    if (ic.pfv !== 0) throw bad(`has PDU format version ${ic.pfv}, only 0 is supported`);
    if ((ic.hdgst && !this.opts.hdgst) || (ic.ddgst && !this.opts.ddgst)) throw bad('enables a digest the host did not ask for');
    if (ic.limit < ICRESP_MIN_MAXH2CDATA || ic.limit % 4 !== 0) throw bad(`has MAXH2CDATA ${ic.limit} (must be ≥ 4096 and a multiple of 4)`);
    if (ic.pda > 31) throw bad(`has CPDA ${ic.pda} (at most 31)`);
    this.digests.hdgst = ic.hdgst;
    this.digests.ddgst = ic.ddgst;
    this.maxH2CData = ic.limit;
    this.cpdaBytes = ic.pda === 0 ? 0 : (ic.pda + 1) * 4;
  }

  /** Closes the connection without notifying onDisconnect; outstanding commands fail with QP_DISCONNECTED. */
  override close(): void {
    if (this.ended) return;
    this.ended = true;
    this.reader.stop();
    this.sock.destroy();
    this.failAll(QP_DISCONNECTED);
  }

  protected transportSubmit(req: NvmeRequest): void {
    const sqe = req.sqe;
    const inCapsule = req.dir === DataDir.H2C && req.dataLen <= this.opts.inCapsuleMax;
    if (req.dataLen > 0) {
      sqe.writeUInt32LE(req.dataLen, 32);
      sqe[39] = inCapsule ? SGL_DATA_BLOCK_OFFSET : SGL_TRANSPORT_DATA_BLOCK;
    }
    this.cork();
    this.sock.write(encodeCapsuleCmd(sqe, inCapsule ? req.dataLen : 0, this.digests, this.cpdaBytes));
    if (inCapsule) this.writeData(req.iovs);
  }

  private cork(): void {
    if (this.corked) return;
    this.corked = true;
    this.sock.cork();
    process.nextTick(this.uncork);
  }

  private writeData(iovs: readonly Uint8Array[]): void {
    for (const iov of iovs) this.sock.write(iov);
    if (this.digests.ddgst) this.sock.write(dataDigest(iovs));
  }

  private onPdu(pdu: Pdu): void {
    switch (pdu.type) {
      case PduType.CAPSULE_RESP: return this.onResp(pdu.hdr);
      case PduType.C2H_DATA: return this.onC2HData(pdu);
      case PduType.R2T: return this.onR2T(pdu.hdr);
      case PduType.IC_RESP:
        if (this.icWaiter === null) throw new PduError(Fes.PDU_SEQUENCE_ERROR, 'ICResp after connection set-up');
        return this.icWaiter(pdu);
      case PduType.C2H_TERM_REQ: {
        const fes = pdu.hdr.readUInt16LE(8);
        const err = nvmeError('NVME_PROTOCOL', `${this.where()}: the controller terminated the connection (C2HTermReq FES 0x${fes.toString(16)})`);
        this.reader.stop();
        if (this.icWaiter !== null) return this.icWaiter(err);
        return this.lost(err);
      }
    }
    if (this.icWaiter !== null) throw new PduError(Fes.PDU_SEQUENCE_ERROR, `${pduTypeName(pdu.type)} before ICResp`);
  }

  private onResp(h: Buffer): void {
    if (this.icWaiter !== null) throw new PduError(Fes.PDU_SEQUENCE_ERROR, 'CapsuleResp before ICResp');
    const cid = h.readUInt16LE(20);
    const sf = h.readUInt16LE(22) >> 1;
    if (!this.complete(cid, sf, h.readUInt32LE(8), h.readUInt32LE(12))) {
      throw new PduError(Fes.INVALID_HEADER_FIELD, `CapsuleResp for command id ${cid}, which is not outstanding`, 20);
    }
  }

  private onC2HData(pdu: Pdu): void {
    const h = pdu.hdr;
    const cid = h.readUInt16LE(8);
    const datao = h.readUInt32LE(12);
    const datal = h.readUInt32LE(16);
    const req = this.lookup(cid);
    if (req === undefined || req.dir !== DataDir.C2H) throw new PduError(Fes.INVALID_HEADER_FIELD, `C2HData for command id ${cid}, which is not an outstanding read`, 8);
    if (datal !== pdu.data.length) throw new PduError(Fes.INVALID_HEADER_FIELD, `C2HData DATAL ${datal} but ${pdu.data.length} data bytes`, 16);
    if (datao !== req.xferred || datao + datal > req.dataLen) {
      throw new PduError(Fes.DATA_OUT_OF_RANGE, `C2HData for cid ${cid} at offset ${datao}+${datal}, expected offset ${req.xferred} within ${req.dataLen} bytes`, 12);
    }
    const success = (pdu.flags & PduFlag.SUCCESS) !== 0;
    if (success && (pdu.flags & PduFlag.LAST_PDU) === 0) throw new PduError(Fes.INVALID_HEADER_FIELD, 'C2HData with SUCCESS but not LAST_PDU', 1);
    req.xferred += datal;
    // A timed-out (abandoned) command's buffers may belong to someone else by now: drop its data.
    if (req.abandoned) return void (success && this.complete(cid, 0));
    copyInto(req.iovs, datao, pdu.data);
    if (success) {
      if (req.xferred !== req.dataLen) throw new PduError(Fes.DATA_OUT_OF_RANGE, `C2HData SUCCESS for cid ${cid} after ${req.xferred} of ${req.dataLen} bytes`, 12);
      this.complete(cid, 0);
    }
  }

  private onR2T(h: Buffer): void {
    const cid = h.readUInt16LE(8);
    const ttag = h.readUInt16LE(10);
    const r2to = h.readUInt32LE(12);
    const r2tl = h.readUInt32LE(16);
    const req = this.lookup(cid);
    if (req === undefined || req.dir !== DataDir.H2C) throw new PduError(Fes.INVALID_HEADER_FIELD, `R2T for command id ${cid}, which is not an outstanding write`, 8);
    if (r2tl === 0 || r2to !== req.xferred || r2to + r2tl > req.dataLen) {
      throw new PduError(Fes.DATA_OUT_OF_RANGE, `R2T for cid ${cid} at offset ${r2to}+${r2tl}, expected offset ${req.xferred} within ${req.dataLen} bytes`, 12);
    }
    req.xferred += r2tl;
    // An abandoned write still answers with (stale-safe) zeros, so the controller's transfer ends.
    const iovs = req.abandoned ? [Buffer.alloc(r2tl)] : sliceIovs(req.iovs, r2to, r2tl);
    this.cork();
    for (let off = 0; off < r2tl; off += this.maxH2CData) {
      const len = Math.min(this.maxH2CData, r2tl - off);
      const last = off + len === r2tl;
      const part = req.abandoned ? [iovs[0].subarray(off, off + len)] : sliceIovs(iovs, off, len);
      this.sock.write(encodeH2CData({ cccid: cid, ttag, offset: r2to + off, length: len }, last, this.digests, this.cpdaBytes));
      this.writeData(part);
    }
  }

  private protocolError(e: PduError): void {
    if (!this.ended && e.fes !== 0) this.sock.write(encodeTermReq(true, e.fes, e.fei));
    const err = nvmeError('NVME_PROTOCOL', `${this.where()}: ${e.message}; connection reset`, e);
    if (this.icWaiter !== null) return this.icWaiter(err);
    this.sock.end();
    this.lost(err);
  }

  private lost(err: Error): void {
    if (this.icWaiter !== null) return this.icWaiter(err);
    if (this.ended) return;
    this.ended = true;
    this.reader.stop();
    this.sock.destroy();
    // The owner hears first, so the commands failed next see the controller already resetting.
    this.onDisconnect?.(err);
    this.failAll(QP_DISCONNECTED);
  }
}

/** Copies `src` into the scatter list at byte offset `at`. */
function copyInto(iovs: readonly Uint8Array[], at: number, src: Uint8Array): void {
  let pos = 0;
  let done = 0;
  for (const iov of iovs) {
    const end = pos + iov.length;
    if (end > at + done && done < src.length) {
      const from = at + done - pos;
      const n = Math.min(iov.length - from, src.length - done);
      iov.set(src.subarray(done, done + n), from);
      done += n;
    }
    pos = end;
    if (done === src.length) break;
  }
}

/** A failure before ICResp: protocol errors stay, a closed or reset socket becomes NVME_CONNECT_RESET. */
function setupError(o: TcpQpairOptions, e: Error): Error {
  const code = (e as { code?: string }).code;
  if (code === 'NVME_PROTOCOL' || code === 'NVME_ICRESP_INVALID') return e;
  return nvmeError('NVME_CONNECT_RESET', `NVMe/TCP target ${o.host}:${o.port} closed the connection before ICResp ` +
    '(nothing listening behind a port forward yet, or not an NVMe/TCP target)', e);
}

function connectError(o: TcpQpairOptions, e: NodeJS.ErrnoException): Error {
  const at = `${o.host}:${o.port}`;
  if (e.code === 'ECONNREFUSED') return nvmeError('NVME_CONNECT_REFUSED', `cannot connect to NVMe/TCP target ${at}: connection refused`, e);
  if (e.code === 'ETIMEDOUT' || e.code === 'EHOSTUNREACH' || e.code === 'ENETUNREACH') {
    return nvmeError('NVME_CONNECT_TIMEOUT', `cannot connect to NVMe/TCP target ${at}: ${e.code}`, e);
  }
  return nvmeError('NVME_CONNECT_RESET', `cannot connect to NVMe/TCP target ${at}: ${e.message}`, e);
}

