/** Parsers of Identify and log page data (NVMe base spec 2.0, Fabrics 1.1). */

function ascii(b: Buffer, off: number, len: number): string {
  return b.toString('latin1', off, off + len).replace(/\0.*$/s, '').trim();
}

/** The Identify Controller fields the driver uses and reports (ctrlr_data in SPDK's dumps). */
export interface IdentifyController {
  vendorId: number;
  subsystemVendorId: number;
  serialNumber: string;
  modelNumber: string;
  firmwareRevision: string;
  /** Maximum data transfer size as a power of two of the minimum page size (0 = no limit). */
  mdts: number;
  cntlid: number;
  /** Version (VER), e.g. 0x10400 for 1.4. */
  ver: number;
  oacs: number;
  /** Keep Alive Support granularity in 100 ms units (0 = none). */
  kas: number;
  maxcmd: number;
  /** Number of namespaces (highest valid nsid). */
  nn: number;
  /** Optional NVM command support: bit 2 Dataset Management, bit 3 Write Zeroes. */
  oncs: number;
  /** Volatile write cache present (bit 0). */
  vwc: number;
  sgls: number;
  subnqn: string;
  /** I/O queue command capsule supported size, in 16-byte units (Fabrics). */
  ioccsz: number;
  iorcsz: number;
  icdoff: number;
}

export function parseIdentifyController(b: Buffer): IdentifyController {
  return {
    vendorId: b.readUInt16LE(0),
    subsystemVendorId: b.readUInt16LE(2),
    serialNumber: ascii(b, 4, 20),
    modelNumber: ascii(b, 24, 40),
    firmwareRevision: ascii(b, 64, 8),
    mdts: b[77],
    cntlid: b.readUInt16LE(78),
    ver: b.readUInt32LE(80),
    oacs: b.readUInt16LE(256),
    kas: b.readUInt16LE(320),
    maxcmd: b.readUInt16LE(514),
    nn: b.readUInt32LE(516),
    oncs: b.readUInt16LE(520),
    vwc: b[525],
    sgls: b.readUInt32LE(536),
    subnqn: ascii(b, 768, 256),
    ioccsz: b.readUInt32LE(1792),
    iorcsz: b.readUInt32LE(1796),
    icdoff: b.readUInt16LE(1800),
  };
}

/** The Identify Namespace fields the driver uses. */
export interface IdentifyNamespace {
  /** Size in logical blocks. */
  nsze: number;
  ncap: number;
  /** Deallocate logical block features: bits 2:0 = 001b means deallocated blocks read as zeros. */
  dlfeat: number;
  /** Logical block size in bytes of the format in use. */
  blockSize: number;
  /** Metadata bytes per block of the format in use. */
  metadataSize: number;
  /** NGUID (32 hex digits) or '' when zero. */
  nguid: string;
  /** EUI-64 (16 hex digits) or '' when zero. */
  eui64: string;
}

export function parseIdentifyNamespace(b: Buffer): IdentifyNamespace {
  const flbas = b[26] & 0x0f;
  const lbaf = b.readUInt32LE(128 + flbas * 4);
  const hex = (off: number, len: number) => {
    const s = b.toString('hex', off, off + len);
    return /^0+$/.test(s) ? '' : s;
  };
  return {
    nsze: Number(b.readBigUInt64LE(0)),
    ncap: Number(b.readBigUInt64LE(8)),
    dlfeat: b[33],
    blockSize: 2 ** ((lbaf >> 16) & 0xff),
    metadataSize: lbaf & 0xffff,
    nguid: hex(104, 16),
    eui64: hex(120, 8),
  };
}

/** Active namespace list (CNS 02h): nonzero nsids in order. */
export function parseNsList(b: Buffer): number[] {
  const out: number[] = [];
  for (let o = 0; o + 4 <= b.length; o += 4) {
    const id = b.readUInt32LE(o);
    if (id === 0) break;
    out.push(id);
  }
  return out;
}

/** One discovery log page entry (log page 70h). */
export interface DiscoveryEntry {
  trtype: string;
  adrfam: string;
  subtype: 'discovery' | 'nvme' | 'current discovery' | string;
  portid: number;
  cntlid: number;
  asqsz: number;
  trsvcid: string;
  subnqn: string;
  traddr: string;
}

const TRTYPES: Record<number, string> = { 1: 'RDMA', 2: 'FC', 3: 'TCP', 254: 'intra-host' };
const ADRFAMS: Record<number, string> = { 1: 'IPv4', 2: 'IPv6', 3: 'IB', 4: 'FC', 254: 'intra-host' };
const SUBTYPES: Record<number, string> = { 1: 'discovery', 2: 'nvme', 3: 'current discovery' };

/** Header of the discovery log page: generation counter and number of records. */
export function parseDiscoveryHeader(b: Buffer): { genctr: number; numrec: number; recfmt: number } {
  return { genctr: Number(b.readBigUInt64LE(0)), numrec: Number(b.readBigUInt64LE(8)), recfmt: b.readUInt16LE(16) };
}

/** Entries of a discovery log page (1024-byte header, 1024 bytes per entry). */
export function parseDiscoveryLog(b: Buffer): DiscoveryEntry[] {
  const { numrec } = parseDiscoveryHeader(b);
  const out: DiscoveryEntry[] = [];
  for (let i = 0; i < numrec && 1024 * (i + 2) <= b.length; i++) {
    const e = b.subarray(1024 * (i + 1), 1024 * (i + 2));
    out.push({
      trtype: TRTYPES[e[0]] ?? String(e[0]),
      adrfam: ADRFAMS[e[1]] ?? String(e[1]),
      subtype: SUBTYPES[e[2]] ?? String(e[2]),
      portid: e.readUInt16LE(4),
      cntlid: e.readUInt16LE(6),
      asqsz: e.readUInt16LE(8),
      trsvcid: ascii(e, 32, 32),
      subnqn: ascii(e, 256, 256),
      traddr: ascii(e, 512, 256),
    });
  }
  return out;
}
