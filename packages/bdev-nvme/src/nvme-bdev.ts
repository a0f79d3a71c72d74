import { createHash } from 'node:crypto';
import { type Bdev, type BdevChannel, type BdevModule, type ConfigEntry, IoType } from '@blockwork/core';
import type { NvmeController } from './controller';
import type { IdentifyNamespace } from './identify';
import { NvmeChannel, type NvmeChannelTarget } from './nvme-channel';

/** Largest data transfer per command the driver issues, bytes (bounded further by MDTS). */
export const MAX_TRANSFER_BYTES = 1 << 20;
const ONCS_DSM = 1 << 2;
const ONCS_WRITE_ZEROES = 1 << 3;

/**
 * One namespace of an NVMe controller as a bdev named `<ctrlr>n<nsid>` ("NVMe disk"). Reads and
 * writes larger than the controller's transfer limit are split by the bdev layer (optimal I/O
 * boundary = that limit). Write_zeroes is offered when ONCS has Write Zeroes; unmap (Dataset
 * Management, deallocate) when ONCS has it and DLFEAT says deallocated blocks read as zeros.
 */
export class NvmeBdev implements Bdev, NvmeChannelTarget {
  readonly aliases: string[] = [];
  readonly productName = 'NVMe disk';
  readonly requiredAlignment = 1;
  readonly splitOnOptimalIoBoundary = true;
  readonly optimalIoBoundary: number;
  readonly blockSize: number;
  readonly uuid: string;
  numBlocks: number;
  removed = false;
  private static nextQp = 0;

  /**
   * @param onDestruct called once after destruct, so the module forgets the bdev.
   */
  constructor(
    readonly module: BdevModule,
    readonly ctrlr: NvmeController,
    readonly nsid: number,
    readonly ns: IdentifyNamespace,
    private readonly onDestruct: (b: NvmeBdev) => void,
  ) {
    this.blockSize = ns.blockSize;
    this.numBlocks = ns.nsze;
    this.uuid = namespaceUuid(ctrlr, nsid, ns);
    const mdts = ctrlr.cdata.mdts;
    const mpsmin = Number((ctrlr.cap >> 48n) & 0xfn);
    const mdtsBytes = mdts === 0 ? Infinity : 2 ** (mdts + 12 + mpsmin);
    const transportBytes = ctrlr.transport.maxTransferBytes || Infinity;
    this.optimalIoBoundary = Math.max(1, Math.floor(Math.min(mdtsBytes, MAX_TRANSFER_BYTES, transportBytes, 0x10000 * this.blockSize) / this.blockSize));
  }

  get name(): string {
    return `${this.ctrlr.opts.name}n${this.nsid}`;
  }

  get writeCache(): boolean {
    return (this.ctrlr.cdata.vwc & 1) !== 0;
  }

  ioTypeSupported(type: IoType): boolean {
    const oncs = this.ctrlr.cdata.oncs;
    switch (type) {
      case IoType.READ:
      case IoType.WRITE:
      case IoType.FLUSH:
        return true;
      case IoType.UNMAP:
        // Blockwork's unmap reads back zeros (the compliance suite checks it); NVMe guarantees that
        // only when DLFEAT bits 2:0 = 001b. Linux nvmet on brd reports 0 and returns old data.
        return (oncs & ONCS_DSM) !== 0 && (this.ns.dlfeat & 0x7) === 1;
      case IoType.WRITE_ZEROES:
        return (oncs & ONCS_WRITE_ZEROES) !== 0;
      default:
        return false;
    }
  }

  createChannel(): BdevChannel {
    return new NvmeChannel(this, NvmeBdev.nextQp++);
  }

  async destruct(): Promise<void> {
    this.removed = true;
    this.onDestruct(this);
  }

  /** SPDK's driver_specific.nvme: one entry per path (one here). */
  driverSpecific(): Record<string, unknown> {
    const c = this.ctrlr;
    const d = c.cdata;
    const vs = c.vs;
    return {
      nvme: [{
        trid: { ...c.opts.trid },
        ctrlr_data: {
          cntlid: c.cntlid,
          vendor_id: `0x${d.vendorId.toString(16).padStart(4, '0')}`,
          model_number: d.modelNumber,
          serial_number: d.serialNumber,
          firmware_revision: d.firmwareRevision,
          subnqn: d.subnqn,
          oacs: { security: (d.oacs >> 0) & 1, format: (d.oacs >> 1) & 1, firmware: (d.oacs >> 2) & 1, ns_manage: (d.oacs >> 3) & 1 },
          multi_ctrlr: true,
          ana_reporting: false,
        },
        vs: { nvme_version: `${vs >>> 16}.${(vs >> 8) & 0xff}${vs & 0xff ? `.${vs & 0xff}` : ''}` },
        ns_data: { id: this.nsid, can_share: true },
      }],
    };
  }

  /** Namespaces are recreated by bdev_nvme_attach_controller (the module's config), not one by one. */
  configEntry(): ConfigEntry | null {
    return null;
  }
}

/** The namespace's NGUID (or EUI-64) as a uuid when it has one, else a stable name-based uuid of subsystem and nsid. */
function namespaceUuid(c: NvmeController, nsid: number, ns: IdentifyNamespace): string {
  let hex = ns.nguid;
  if (hex === '') {
    hex = createHash('sha1').update(`${c.cdata.subnqn || (c.opts.trid.trtype === 'TCP' ? c.opts.trid.subnqn : c.opts.trid.traddr)}\0${nsid}\0${ns.eui64}`).digest('hex').slice(0, 32);
    // RFC 4122 version 5 (name-based) and variant bits.
    hex = `${hex.slice(0, 12)}5${hex.slice(13, 16)}${((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16)}${hex.slice(17)}`;
  }
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
