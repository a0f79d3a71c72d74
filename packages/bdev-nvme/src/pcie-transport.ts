import { execCommand } from './admin';
import type { NvmeController, PcieTransportId } from './controller';
import { DmaPool } from './dma-pool';
import { nvmeError } from './errors';
import type { VfioDeviceNative } from './native';
import { CSTS_RDY, Prop, sqeCdw, sqeInit } from './nvme-spec';
import { PcieQpair } from './pcie-qpair';
import { PAGE_SIZE } from './prp';
import type { NvmeQpair } from './qpair';
import type { NvmeTransport } from './transport';
import { openVfioDevice, pciClass } from './vfio';

/** Admin queue registers (BAR0 offsets). */
const AQA = 0x24;
const ASQ = 0x28;
const ACQ = 0x30;
const OPC_DELETE_IO_SQ = 0x00;
const OPC_CREATE_IO_SQ = 0x01;
const OPC_DELETE_IO_CQ = 0x04;
const OPC_CREATE_IO_CQ = 0x05;
/** Bounce pages per queue pair: admin 64 (256 KiB), I/O 2048 (8 MiB, ≥ one 1 MiB transfer + its PRP list). */
const ADMIN_POOL_PAGES = 64;
const IO_POOL_PAGES = 2048;

/**
 * NVMe over PCIe through VFIO: BAR0 registers by MMIO, admin queue through AQA/ASQ/ACQ, I/O
 * queues with Create I/O CQ/SQ, data bounced through DMA pools (caller buffers are not DMA
 * mapped). Polled completions, no interrupts.
 */
export class PcieTransport implements NvmeTransport {
  readonly reconnectable = false;
  readonly maxTransferBytes = 1 << 20;
  private dev: VfioDeviceNative | null = null;
  private dstrd = 0;
  private readonly qpairs: PcieQpair[] = [];

  /** @param open opens the device (tests hand in a fake). */
  constructor(private readonly trid: PcieTransportId, private readonly open: (bdf: string) => VfioDeviceNative = openVfioDevice) {}

  async openAdmin(c: NvmeController, depth: number): Promise<NvmeQpair> {
    const bdf = this.trid.traddr;
    // Opened first: its sysfs checks (exists, bound to vfio-pci, IOMMU group) say more than the class.
    const dev = (this.dev ??= this.open(bdf));
    const cls = pciClass(bdf);
    if (cls !== -1 && (cls >> 8) !== 0x0108) {
      throw nvmeError('NVME_PARAM_INVALID', `${c.describe()}: PCI device ${bdf} is not an NVMe controller (class 0x${cls.toString(16).padStart(6, '0')})`);
    }
    const cap = dev.read64(Prop.CAP);
    this.dstrd = Number((cap >> 32n) & 0xfn);
    // Disable first: a controller left enabled (by the kernel driver, or a previous run) keeps
    // queues we know nothing about. AQA/ASQ/ACQ may only change while CC.EN = 0 and CSTS.RDY = 0.
    if (dev.read32(Prop.CC) & 1) dev.write32(Prop.CC, dev.read32(Prop.CC) & ~1);
    await this.waitRdy(c, cap, 0);
    const qp = this.queue(0, depth, ADMIN_POOL_PAGES, c.opts.adminTimeoutMs);
    dev.write32(AQA, ((depth) << 16) | depth); // ACQS and ASQS, 0's based: depth + 1 entries
    dev.write64(ASQ, BigInt(qp.sqIova));
    dev.write64(ACQ, BigInt(qp.cqIova));
    return qp;
  }

  private async waitRdy(c: NvmeController, cap: bigint, want: 0 | 1): Promise<void> {
    const limitMs = Math.max(500, Number((cap >> 24n) & 0xffn) * 500);
    const deadline = Date.now() + limitMs;
    while ((this.dev!.read32(Prop.CSTS) & CSTS_RDY) !== want) {
      if (Date.now() > deadline) throw nvmeError('NVME_ENABLE_TIMEOUT', `${c.describe()}: CSTS.RDY not ${want} ${limitMs} ms after CC.EN=${want}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  private queue(qid: number, depth: number, poolPages: number, timeoutMs: number): PcieQpair {
    const dev = this.dev!;
    const queueMem = dev.allocDma(PcieQpair.queueBytes(depth));
    const pool = new DmaPool(dev.allocDma(poolPages * PAGE_SIZE));
    const qp = new PcieQpair({ qid, depth, timeoutMs, regs: dev, dstrd: this.dstrd, queueMem, pool });
    this.qpairs.push(qp);
    return qp;
  }

  async getCap(): Promise<bigint> {
    return this.device().read64(Prop.CAP);
  }

  async getReg32(_c: NvmeController, ofst: number): Promise<number> {
    return this.device().read32(ofst) >>> 0;
  }

  async setReg32(_c: NvmeController, ofst: number, value: number): Promise<void> {
    this.device().write32(ofst, value >>> 0);
  }

  /** Create I/O Completion Queue, then Create I/O Submission Queue bound to it (same qid). */
  async openIo(c: NvmeController, qid: number, depth: number): Promise<NvmeQpair> {
    const qp = this.queue(qid, depth, IO_POOL_PAGES, c.opts.ioTimeoutMs);
    const size = (qp.sqEntries - 1) << 16;
    const admin = c.admin!;
    try {
      await execCommand(admin, `${c.describe()}: Create I/O CQ ${qid}`, (s) => {
        sqeInit(s, OPC_CREATE_IO_CQ, 0);
        s.writeBigUInt64LE(BigInt(qp.cqIova), 24);
        sqeCdw(s, 10, size | qid);
        sqeCdw(s, 11, 1); // PC = 1 (contiguous), IEN = 0: polled, no interrupt vector
      });
      await execCommand(admin, `${c.describe()}: Create I/O SQ ${qid}`, (s) => {
        sqeInit(s, OPC_CREATE_IO_SQ, 0);
        s.writeBigUInt64LE(BigInt(qp.sqIova), 24);
        sqeCdw(s, 10, size | qid);
        sqeCdw(s, 11, (qid << 16) | 1); // CQID, QPRIO 0, PC = 1
      });
    } catch (e) {
      qp.close();
      throw e;
    }
    return qp;
  }

  /** Deletes the I/O queues (SQ before CQ) before a shutdown notification, as the spec asks. */
  async deleteIoQueues(c: NvmeController, qids: number[]): Promise<void> {
    const admin = c.admin;
    if (admin === null) return;
    for (const qid of qids) {
      await execCommand(admin, `${c.describe()}: Delete I/O SQ ${qid}`, (s) => { sqeInit(s, OPC_DELETE_IO_SQ, 0); sqeCdw(s, 10, qid); });
      await execCommand(admin, `${c.describe()}: Delete I/O CQ ${qid}`, (s) => { sqeInit(s, OPC_DELETE_IO_CQ, 0); sqeCdw(s, 10, qid); });
    }
  }

  close(): void {
    for (const q of this.qpairs) q.close();
    this.qpairs.length = 0;
    this.dev?.close();
    this.dev = null;
  }

  private device(): VfioDeviceNative {
    if (this.dev === null) throw nvmeError('NVME_DISCONNECTED', `PCI device ${this.trid.traddr} is closed`);
    return this.dev;
  }
}
