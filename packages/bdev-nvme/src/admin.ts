import { nvmeError } from './errors';
import { AdminOpc, Cns, FcType, sqeCdw, sqeInit, statusText } from './nvme-spec';
import { DataDir, type NvmeQpair, QP_DISCONNECTED, QP_TIMEOUT } from './qpair';

/** Result dwords of a completed admin command. */
export interface AdminResult {
  cdw0: number;
  cdw1: number;
}

/** An admin command that completed with an NVMe error status; `nvmeStatus` is the status field. */
export type AdminError = Error & { code: string; errno: number; nvmeStatus?: number };

/**
 * Runs one command on a queue pair and resolves with its result dwords (control plane only: one
 * promise per command). Rejects with NVME_ADMIN_FAILED (carrying `nvmeStatus`), NVME_ADMIN_TIMEOUT
 * or NVME_DISCONNECTED, each naming `what`.
 */
export function execCommand(qp: NvmeQpair, what: string, fill: (sqe: Buffer) => void,
  data?: { dir: DataDir; buf: Buffer }, timeoutMs?: number): Promise<AdminResult> {
  return new Promise((resolve, reject) => {
    const req = qp.alloc();
    if (req === null) {
      reject(nvmeError(qp.isClosed ? 'NVME_DISCONNECTED' : 'NVME_ADMIN_FAILED', `${what}: queue ${qp.qid} is ${qp.isClosed ? 'disconnected' : 'full'}`));
      return;
    }
    fill(req.sqe);
    if (data !== undefined) {
      req.dir = data.dir;
      req.iovs = [data.buf];
      req.dataLen = data.buf.length;
    }
    req.cb = (status, r) => {
      if (status === 0) return resolve({ cdw0: r.cdw0, cdw1: r.cdw1 });
      if (status === QP_TIMEOUT) return reject(nvmeError('NVME_ADMIN_TIMEOUT', `${what}: no completion within ${timeoutMs ?? qp.timeoutMs} ms`));
      if (status < 0) return reject(nvmeError('NVME_DISCONNECTED', `${what}: connection lost (${status === QP_DISCONNECTED ? 'disconnected' : `status ${status}`})`));
      const fabrics = r.sqe[0] === AdminOpc.FABRICS;
      const e = nvmeError('NVME_ADMIN_FAILED', `${what} failed: ${statusText(status, fabrics)}`) as AdminError;
      e.nvmeStatus = status;
      // Connect errors carry IATTR/IPO (which field was wrong) in DW0.
      (e as AdminError & { cdw0?: number }).cdw0 = r.cdw0;
      reject(e);
    };
    qp.submit(req, timeoutMs);
  });
}

/** Connect command data: host identifier, controller id, subsystem and host NQNs (1024 bytes). */
export function connectData(hostid: Buffer, cntlid: number, subnqn: string, hostnqn: string): Buffer {
  const d = Buffer.alloc(1024);
  hostid.copy(d, 0, 0, 16);
  d.writeUInt16LE(cntlid, 16);
  d.write(subnqn, 256, 255, 'utf8');
  d.write(hostnqn, 512, 255, 'utf8');
  return d;
}

/** Fabrics Connect SQE: queue id, 0's based SQ size, keep-alive timeout in ms (admin queue only). */
export function fillConnect(sqe: Buffer, qid: number, sqsize: number, katoMs: number): void {
  sqeInit(sqe, AdminOpc.FABRICS, 0);
  sqe[4] = FcType.CONNECT;
  sqe.writeUInt16LE(0, 40); // RECFMT 0
  sqe.writeUInt16LE(qid, 42);
  sqe.writeUInt16LE(sqsize, 44);
  sqe[46] = 0; // CATTR
  sqe.writeUInt32LE(katoMs, 48);
}

/** Fabrics Property Get of a 4- or 8-byte property. */
export function fillPropertyGet(sqe: Buffer, ofst: number, eight: boolean): void {
  sqeInit(sqe, AdminOpc.FABRICS, 0);
  sqe[4] = FcType.PROPERTY_GET;
  sqe[40] = eight ? 1 : 0;
  sqe.writeUInt32LE(ofst, 44);
}

/** Fabrics Property Set of a 4-byte property. */
export function fillPropertySet(sqe: Buffer, ofst: number, value: number): void {
  sqeInit(sqe, AdminOpc.FABRICS, 0);
  sqe[4] = FcType.PROPERTY_SET;
  sqe[40] = 0;
  sqe.writeUInt32LE(ofst, 44);
  sqe.writeUInt32LE(value >>> 0, 48);
}

/** Identify with a CNS value and namespace id (4096 bytes of data). */
export function fillIdentify(sqe: Buffer, cns: number, nsid: number): void {
  sqeInit(sqe, AdminOpc.IDENTIFY, nsid);
  sqeCdw(sqe, 10, cns);
}

/** Set Features with CDW11. */
export function fillSetFeatures(sqe: Buffer, fid: number, cdw11: number): void {
  sqeInit(sqe, AdminOpc.SET_FEATURES, 0);
  sqeCdw(sqe, 10, fid);
  sqeCdw(sqe, 11, cdw11);
}

/** Get Log Page of `bytes` (a multiple of 4) at byte `offset`. */
export function fillGetLogPage(sqe: Buffer, lid: number, bytes: number, offset: number): void {
  sqeInit(sqe, AdminOpc.GET_LOG_PAGE, 0);
  const numd = bytes / 4 - 1;
  sqeCdw(sqe, 10, lid | ((numd & 0xffff) << 16));
  sqeCdw(sqe, 11, numd >>> 16);
  sqeCdw(sqe, 12, offset >>> 0);
  sqeCdw(sqe, 13, Math.floor(offset / 0x100000000));
}

/** Abort of command `cid` on submission queue `sqid`. */
export function fillAbort(sqe: Buffer, sqid: number, cid: number): void {
  sqeInit(sqe, AdminOpc.ABORT, 0);
  sqeCdw(sqe, 10, sqid | (cid << 16));
}

export const fillKeepAlive = (sqe: Buffer): void => sqeInit(sqe, AdminOpc.KEEP_ALIVE, 0);
export { Cns };
