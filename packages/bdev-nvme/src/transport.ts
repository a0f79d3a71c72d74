import type { NvmeController } from './controller';
import type { NvmeQpair } from './qpair';

/**
 * What differs between NVMe transports, as the controller drives them: how the admin queue is
 * opened, how controller registers are read and written (Fabrics Property Get/Set over TCP,
 * MMIO in BAR0 over PCIe) and how an I/O queue pair is created. The controller does the common
 * bring-up: CAP/VS, CC.EN, CSTS.RDY, Identify, Set Features, namespaces, shutdown.
 */
export interface NvmeTransport {
  /** Opens the admin queue pair with `depth` command ids. Rejects with a catalogue error. */
  openAdmin(c: NvmeController, depth: number): Promise<NvmeQpair>;
  /** Reads the 64-bit CAP register. */
  getCap(c: NvmeController): Promise<bigint>;
  /** Reads a 32-bit register at byte offset `ofst` (VS, CC, CSTS). */
  getReg32(c: NvmeController, ofst: number): Promise<number>;
  /** Writes a 32-bit register (CC). */
  setReg32(c: NvmeController, ofst: number, value: number): Promise<void>;
  /** Opens I/O queue pair `qid` with `depth` command ids (after the controller is enabled and identified). */
  openIo(c: NvmeController, qid: number, depth: number): Promise<NvmeQpair>;
  /** Releases what the transport holds beyond the queue pairs (PCIe: the VFIO device). Idempotent. */
  close(): void;
  /** Whether a lost connection may be re-established (TCP yes; PCIe has no connection to lose). */
  readonly reconnectable: boolean;
  /** The largest data transfer per command this transport wants, bytes (0: no own limit). */
  readonly maxTransferBytes: number;
}
