import { decodeInflight, encodeInflight, type MappedRegion, memfdCreate, mmapFd } from '@blockwork/vhost-user';
import { MAX_QUEUES } from './blk-config';
import { InflightQueue, inflightQueueBytes, inflightRegionBytes } from './inflight-region';
import { MAX_QUEUE_SIZE } from './virtqueue';

/** A reply carrying fds (GET_INFLIGHT_FD); the caller closes them once sent. */
export interface FdReply {
  payload: Uint8Array;
  fds: number[];
}

/**
 * A session's side of INFLIGHT_SHMFD: creates the region on GET_INFLIGHT_FD, maps the one the front
 * end hands back with SET_INFLIGHT_FD (sizes checked against num_queues × queue_size and the fd's
 * size) and gives each starting queue its slice. Methods throw an Error naming what is wrong for a
 * malformed message (the session then closes the connection).
 */
export class SessionInflight {
  private map: MappedRegion | null = null;
  private numQueues = 0;
  private queueSize = 0;

  /** Whether SET_INFLIGHT_FD has been received (and the region is mapped). */
  get mapped(): boolean {
    return this.map !== null;
  }

  /** GET_INFLIGHT_FD: a zeroed memfd in DPDK's split layout for the asked geometry. Nothing is kept. */
  static allocate(request: number, payload: Uint8Array, name: string): FdReply {
    const p = decodeInflight(request, payload);
    checkGeometry(p.numQueues, p.queueSize);
    const size = inflightRegionBytes(p.numQueues, p.queueSize);
    const fd = memfdCreate(`blockwork-inflight-${name}`, size);
    return { payload: encodeInflight({ mmapSize: BigInt(size), mmapOffset: 0n, numQueues: p.numQueues, queueSize: p.queueSize }), fds: [fd] };
  }

  /** SET_INFLIGHT_FD: maps the region (replacing a previous one) and writes desc_num per queue, as DPDK does. */
  set(request: number, payload: Uint8Array, fds: readonly number[]): void {
    const p = decodeInflight(request, payload);
    if (fds.length !== 1) throw new Error(`expected one fd, got ${fds.length}`);
    checkGeometry(p.numQueues, p.queueSize);
    const need = inflightRegionBytes(p.numQueues, p.queueSize);
    if (p.mmapSize < BigInt(need)) throw new Error(`inflight mmap_size ${p.mmapSize} < ${need} for ${p.numQueues} queues of ${p.queueSize}`);
    if (p.mmapOffset > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`inflight mmap_offset ${p.mmapOffset} is beyond 2^53`);
    // mmapFd refuses a range past the fd's end (touching it would raise SIGBUS).
    const map = mmapFd(fds[0], need, Number(p.mmapOffset));
    this.release();
    this.map = map;
    this.numQueues = p.numQueues;
    this.queueSize = p.queueSize;
    for (let i = 0; i < p.numQueues; i++) this.slice(i).setDescNum(p.queueSize);
  }

  /** Queue `index`'s slice if the region covers it with size `num`; otherwise a sentence why not. */
  queueFor(index: number, num: number): InflightQueue | string {
    if (this.map === null) return 'no SET_INFLIGHT_FD was sent';
    if (index >= this.numQueues || num !== this.queueSize) {
      return `queue ${index} (size ${num}) is not covered by the inflight region (${this.numQueues} queues of ${this.queueSize})`;
    }
    return this.slice(index);
  }

  private slice(i: number): InflightQueue {
    const per = inflightQueueBytes(this.queueSize);
    return new InflightQueue(new Uint8Array(this.map!.buffer, i * per, per), this.queueSize);
  }

  /** Unmaps the region (queues must be stopped). Idempotent. */
  release(): void {
    this.map?.unmap();
    this.map = null;
  }
}

function checkGeometry(numQueues: number, queueSize: number): void {
  if (numQueues < 1 || numQueues > MAX_QUEUES) throw new Error(`inflight num_queues ${numQueues} is not in 1..${MAX_QUEUES}`);
  if (queueSize < 1 || queueSize > MAX_QUEUE_SIZE || (queueSize & (queueSize - 1)) !== 0) throw new Error(`inflight queue_size ${queueSize} is not a power of two ≤ ${MAX_QUEUE_SIZE}`);
}
