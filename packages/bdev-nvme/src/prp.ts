/**
 * PRP (Physical Region Page) descriptors for the PCIe transport, NVMe base spec 4.1.1: PRP1 points
 * at the first byte (any dword-aligned offset in its page), PRP2 at the second page when the
 * transfer touches exactly two pages, else at a PRP list: one 8-byte entry per remaining page,
 * page aligned, the last entry of a full list page pointing at the next list page.
 */

/** Memory page size the driver sets in CC.MPS (0 → 4 KiB). */
export const PAGE_SIZE = 4096;
const ENTRIES_PER_LIST = PAGE_SIZE / 8;

/** One PRP list page: its device address and its bytes. */
export interface PrpListPage {
  iova: number;
  bytes: Uint8Array;
}

/** Data pages a transfer of `len` bytes starting `offset` bytes into its first page touches. */
export function prpDataPages(offset: number, len: number): number {
  return len === 0 ? 0 : Math.ceil((offset + len) / PAGE_SIZE);
}

/** PRP list pages needed for `dataPages` data pages (0 when PRP1/PRP2 suffice). */
export function prpListPages(dataPages: number): number {
  if (dataPages <= 2) return 0;
  let entries = dataPages - 1;
  let lists = 1;
  // A full list page gives its last slot to the pointer to the next list page.
  while (entries > ENTRIES_PER_LIST) {
    entries -= ENTRIES_PER_LIST - 1;
    lists++;
  }
  return lists;
}

/**
 * Writes PRP1 (SQE bytes 24–31) and PRP2 (bytes 32–39) for a transfer of `len` bytes whose data
 * lives in the pages at `pages` (device addresses, page aligned, in order) starting `offset` bytes
 * into the first one, filling `lists` (exactly prpListPages(pages.length) pages) as needed.
 */
export function writePrps(sqe: Uint8Array, pages: readonly number[], offset: number, len: number, lists: readonly PrpListPage[]): void {
  const n = prpDataPages(offset, len);
  if (pages.length < n) throw new RangeError(`PRP: ${n} data pages needed, ${pages.length} given`);
  if (lists.length !== prpListPages(n)) throw new RangeError(`PRP: ${prpListPages(n)} list pages needed, ${lists.length} given`);
  if (offset % 4 !== 0 || offset >= PAGE_SIZE) throw new RangeError(`PRP: offset ${offset} must be dword aligned and inside the page`);
  const dv = new DataView(sqe.buffer, sqe.byteOffset, sqe.byteLength);
  dv.setBigUint64(24, n === 0 ? 0n : BigInt(pages[0] + offset), true);
  if (n <= 1) return dv.setBigUint64(32, 0n, true);
  if (n === 2) return dv.setBigUint64(32, BigInt(pages[1]), true);
  dv.setBigUint64(32, BigInt(lists[0].iova), true);
  let li = 0;
  let slot = 0;
  let lv = listView(lists[0]);
  for (let p = 1; p < n; p++) {
    const remaining = n - p;
    if (slot === ENTRIES_PER_LIST - 1 && remaining > 1) {
      lv.setBigUint64(slot * 8, BigInt(lists[li + 1].iova), true);
      lv = listView(lists[++li]);
      slot = 0;
    }
    lv.setBigUint64(slot * 8, BigInt(pages[p]), true);
    slot++;
  }
}

function listView(l: PrpListPage): DataView {
  return new DataView(l.bytes.buffer, l.bytes.byteOffset, PAGE_SIZE);
}
