import { decodeLog, fdSize, LOG_PAGE_SIZE, type MappedRegion, markDirtyPages, mmapFd, requestName } from '@blockwork/vhost-user';

/** Why a SET_LOG_BASE was refused (the session closes that connection). */
export class DirtyLogError extends Error {}

/**
 * A session's live-migration dirty log (VHOST_F_LOG_ALL with LOG_SHMFD): the front end's bitmap,
 * one bit per 4 KiB guest physical page, mapped from the fd of SET_LOG_BASE. The session hands it
 * to its GuestMemory (`mem.dirty`) only while LOG_ALL is negotiated and a log is mapped, so the data
 * path pays one null check when migration is not running.
 *
 * Rule for callers: mark after the store that dirtied the page (QEMU may harvest and copy the page
 * between a mark and a later store, losing it), and before used->idx is published for it.
 */
export class DirtyLog {
  private map: MappedRegion | null = null;
  private bytes: ArrayBuffer | null = null;
  private overflowed = false;
  /** Ranges marked since the log was mapped (reported when logging stops). */
  marks = 0;

  /** @param onOverflow called once per mapped log when a page lies past its end (the mark is skipped). */
  constructor(private readonly onOverflow: (gpa: number, len: number, logBytes: number) => void) {}

  /** Whether a log is mapped. */
  get mapped(): boolean {
    return this.map !== null;
  }

  /** Bytes of the mapped log (0 when none): it covers guest physical [0, size * 8 * 4096). */
  get size(): number {
    return this.map?.size ?? 0;
  }

  /**
   * SET_LOG_BASE: payload {u64 mmap_size, u64 mmap_offset} and exactly one fd. Maps
   * [offset, offset + size) of the fd (checked against fstat: a mapping past the end would SIGBUS
   * on the first mark), then drops the previous log. Throws DirtyLogError (or the codec's
   * VHOST_USER_PAYLOAD / VHOST_USER_MMAP_RANGE) and leaves the current log in place on bad input.
   * The fd is not closed here.
   */
  set(request: number, payload: Uint8Array, fds: readonly number[]): void {
    const l = decodeLog(request, payload);
    if (fds.length !== 1) throw new DirtyLogError(`${requestName(request)}: expected one fd, got ${fds.length}`);
    const max = BigInt(Number.MAX_SAFE_INTEGER);
    if (l.mmapSize === 0n || l.mmapSize > max || l.mmapOffset > max) {
      throw new DirtyLogError(`${requestName(request)}: mmap_size ${l.mmapSize} / mmap_offset ${l.mmapOffset} out of range`);
    }
    const size = Number(l.mmapSize);
    const offset = Number(l.mmapOffset);
    const fileSize = fdSize(fds[0]);
    if (offset + size > fileSize) {
      throw new DirtyLogError(`${requestName(request)}: mmap_offset ${offset} + mmap_size ${size} passes the end of the fd (${fileSize} bytes)`);
    }
    const map = mmapFd(fds[0], size, offset);
    this.release();
    this.map = map;
    this.bytes = map.buffer;
  }

  /** Sets the bits of the pages of guest physical [gpa, gpa + len). */
  mark(gpa: number, len: number): void {
    const b = this.bytes;
    if (b === null || len === 0) return;
    this.marks++;
    if (markDirtyPages(b, gpa, len) !== 0 && !this.overflowed) {
      this.overflowed = true;
      this.onOverflow(gpa, len, b.byteLength);
    }
  }

  /** Unmaps the log (RESET_OWNER, a new SET_LOG_BASE, teardown). */
  release(): void {
    this.map?.unmap();
    this.map = null;
    this.bytes = null;
    this.overflowed = false;
    this.marks = 0;
  }
}

/** Log bytes a front end must provide to cover guest physical addresses below `end`. */
export function dirtyLogBytesFor(end: number): number {
  return Math.ceil(end / LOG_PAGE_SIZE / 8);
}
