import { type AdminError, connectData, execCommand, fillConnect, fillPropertyGet, fillPropertySet } from './admin';
import type { NvmeController, TcpTransportId } from './controller';
import { nvmeError } from './errors';
import { decodeStatus, Prop, SC_CONNECT_INVALID_HOST, SC_CONNECT_INVALID_PARAM, statusText } from './nvme-spec';
import { DataDir, type NvmeQpair } from './qpair';
import { TcpQpair } from './tcp-qpair';
import type { NvmeTransport } from './transport';

const ADMIN_IN_CAPSULE = 8192;

/**
 * NVMe/TCP: one TCP connection per queue pair, each with ICReq/ICResp and a Fabrics Connect;
 * registers through Fabrics Property Get/Set on the admin queue.
 */
export class TcpTransport implements NvmeTransport {
  readonly reconnectable = true;
  readonly maxTransferBytes = 0;

  constructor(private readonly trid: TcpTransportId) {}

  async openAdmin(c: NvmeController, depth: number): Promise<NvmeQpair> {
    const qp = await this.open(c, 0, depth, ADMIN_IN_CAPSULE, c.opts.adminTimeoutMs);
    const res = await this.fabricsConnect(c, qp, c.opts.katoMs, 0xffff);
    c.cntlid = res.cdw0 & 0xffff;
    return qp;
  }

  async getCap(c: NvmeController): Promise<bigint> {
    const cap = await c.cmd('Property Get CAP', (s) => fillPropertyGet(s, Prop.CAP, true));
    return BigInt(cap.cdw0 >>> 0) | (BigInt(cap.cdw1 >>> 0) << 32n);
  }

  async getReg32(c: NvmeController, ofst: number): Promise<number> {
    return (await c.cmd(`Property Get 0x${ofst.toString(16)}`, (s) => fillPropertyGet(s, ofst, false))).cdw0 >>> 0;
  }

  async setReg32(c: NvmeController, ofst: number, value: number): Promise<void> {
    await c.cmd(`Property Set 0x${ofst.toString(16)}=0x${value.toString(16)}`, (s) => fillPropertySet(s, ofst, value));
  }

  async openIo(c: NvmeController, qid: number, depth: number): Promise<NvmeQpair> {
    const icd = Math.max(0, c.cdata.ioccsz * 16 - 64);
    const qp = await this.open(c, qid, depth, icd, c.opts.ioTimeoutMs);
    try {
      await this.fabricsConnect(c, qp, 0, c.cntlid);
    } catch (e) {
      qp.close();
      throw e;
    }
    return qp;
  }

  close(): void {
    // Nothing beyond the connections, which the controller closes.
  }

  private async open(c: NvmeController, qid: number, depth: number, inCapsuleMax: number, timeoutMs: number): Promise<TcpQpair> {
    const t = this.trid;
    const qp = await TcpQpair.connect({
      host: t.traddr, port: Number(t.trsvcid), family: t.adrfam === 'IPv6' ? 6 : 4, qid, depth,
      hdgst: c.opts.hdgst, ddgst: c.opts.ddgst, inCapsuleMax, connectTimeoutMs: c.opts.connectTimeoutMs, timeoutMs,
    });
    qp.onDisconnect = (err) => c.connectionLost(err);
    return qp;
  }

  private async fabricsConnect(c: NvmeController, qp: NvmeQpair, katoMs: number, cntlid: number) {
    const o = c.opts;
    const data = connectData(o.hostid, cntlid, this.trid.subnqn, o.hostnqn);
    try {
      return await execCommand(qp, `Fabrics Connect (qid ${qp.qid})`, (s) => fillConnect(s, qp.qid, qp.depth - 1, katoMs),
        { dir: DataDir.H2C, buf: data }, o.connectTimeoutMs);
    } catch (e) {
      throw this.connectError(c, e as AdminError & { cdw0?: number });
    }
  }

  private connectError(c: NvmeController, e: AdminError & { cdw0?: number }): Error {
    if (e.nvmeStatus === undefined) return e;
    const s = decodeStatus(e.nvmeStatus);
    const t = this.trid;
    // DW0 of a Connect Invalid Parameters: IPO (offset of the bad field) in bits 15:0, IATTR in bit 16.
    const ipo = (e.cdw0 ?? 0) & 0xffff;
    if (s.sct === 1 && s.sc === SC_CONNECT_INVALID_HOST || (s.sct === 1 && s.sc === SC_CONNECT_INVALID_PARAM && ipo === 512)) {
      return nvmeError('NVME_HOST_REJECTED', `${c.describe()}: target ${t.traddr}:${t.trsvcid} does not allow host ${c.opts.hostnqn} on ${t.subnqn} (${statusText(e.nvmeStatus, true)})`, e);
    }
    if (s.sct === 1 && s.sc === SC_CONNECT_INVALID_PARAM && ipo === 256) {
      return nvmeError('NVME_SUBSYSTEM_NOT_FOUND', `${c.describe()}: target ${t.traddr}:${t.trsvcid} has no subsystem '${t.subnqn}' (${statusText(e.nvmeStatus, true)})`, e);
    }
    return nvmeError('NVME_CONNECT_FAILED', `${c.describe()}: Fabrics Connect failed: ${statusText(e.nvmeStatus, true)}`, e);
  }
}
