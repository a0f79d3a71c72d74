import { checkCommonHeader, CH_SIZE, type DigestState, type Pdu, PduError, parsePdu } from './pdu';

/**
 * Reassembles PDUs from a TCP byte stream. Complete PDUs inside a chunk are parsed in place (no
 * copy); only a partial PDU at a chunk's end is copied into a reusable buffer. The common header
 * is checked as soon as its 8 bytes arrive, so a hostile plen is refused before any buffering.
 * After the first error the reader stops: the connection is to be reset.
 */
export class PduReader {
  private pend: Buffer = Buffer.allocUnsafe(0);
  private pendLen = 0;
  private failed = false;
  private readonly pdu: Pdu = { type: 0, flags: 0, hlen: 0, pdo: 0, plen: 0, hdr: Buffer.alloc(0), data: Buffer.alloc(0) };

  /**
   * @param fromHost true to parse host-to-controller PDUs (a target), false for controller PDUs (a host).
   * @param digests the connection's digest state; read on every PDU, so ICResp handling may change it.
   * @param maxPlen the largest data-bearing PDU accepted, in bytes.
   * @param onPdu called synchronously per PDU; views are valid only during the call. Throwing a
   *   PduError from it fails the reader like a malformed PDU.
   * @param onError called once with the first PduError.
   */
  constructor(
    private readonly fromHost: boolean,
    private readonly digests: DigestState,
    private readonly maxPlen: number,
    private readonly onPdu: (pdu: Pdu) => void,
    private readonly onError: (err: PduError) => void,
  ) {}

  /** True after an error: further input is ignored. */
  get broken(): boolean {
    return this.failed;
  }

  /** Stops parsing without reporting an error (the owner closed the connection). */
  stop(): void {
    this.failed = true;
  }

  /** Feeds bytes received from the socket. Never throws. */
  push(chunk: Buffer): void {
    if (this.failed) return;
    try {
      if (this.pendLen === 0) {
        const used = this.consume(chunk, 0, chunk.length);
        if (used < chunk.length) this.keep(chunk, used);
        return;
      }
      this.append(chunk);
      const used = this.consume(this.pend, 0, this.pendLen);
      if (used > 0) {
        this.pend.copy(this.pend, 0, used, this.pendLen);
        this.pendLen -= used;
      }
    } catch (e) {
      this.failed = true;
      this.onError(e instanceof PduError ? e : new PduError(0, `PDU handling failed: ${(e as Error).message}`));
    }
  }

  /** Parses whole PDUs in b[start,end); returns where the first incomplete one begins. */
  private consume(b: Buffer, start: number, end: number): number {
    let o = start;
    while (end - o >= CH_SIZE) {
      checkCommonHeader(b, o, this.fromHost, this.digests, this.maxPlen);
      const plen = b.readUInt32LE(o + 4);
      if (end - o < plen) break;
      parsePdu(b, o, this.digests, this.pdu);
      o += plen;
      this.onPdu(this.pdu);
      if (this.failed) break;
    }
    return o;
  }

  private keep(chunk: Buffer, from: number): void {
    this.pendLen = 0;
    this.append(chunk.subarray(from));
  }

  private append(chunk: Buffer): void {
    const need = this.pendLen + chunk.length;
    if (need > this.pend.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.pend.length * 2, 4096));
      this.pend.copy(grown, 0, 0, this.pendLen);
      this.pend = grown;
    }
    chunk.copy(this.pend, this.pendLen);
    this.pendLen = need;
  }
}
