import type { RpcMethod } from '../rpc/types';

/** I/O types a bdev may support. Values are stable (used as array indices in iostat). */
export enum IoType {
  READ = 0,
  WRITE = 1,
  FLUSH = 2,
  UNMAP = 3,
  WRITE_ZEROES = 4,
  RESET = 5,
}

/** SPDK's names for the I/O types, as `supported_io_types` reports them. */
export const IO_TYPE_NAMES = ['read', 'write', 'flush', 'unmap', 'write_zeroes', 'reset'] as const;

/**
 * Completion callback of the hot path. `status` is 0 on success or a negative errno (-EIO, -EINVAL,
 * -ENODEV...). `arg` is whatever the submitter passed with the I/O, so a caller can use one
 * long-lived function for every I/O instead of allocating a closure per request.
 */
export type IoCallback = (status: number, arg: unknown) => void;

/**
 * One I/O as a driver sees it. Objects are pooled by the bdev layer and reused after completion:
 * a driver must not keep a reference once it has called `complete`.
 */
export interface BdevIo {
  type: IoType;
  /** First block (in the bdev's blocks). */
  offsetBlocks: number;
  /** Length in blocks; 0 for flush of the whole device and for reset. */
  numBlocks: number;
  /**
   * Data buffers for read and write, in order; their lengths add up to numBlocks × blockSize.
   * Owned by the submitter, which keeps them alive until completion. May be views of guest memory.
   * Empty for flush, unmap, write_zeroes and reset.
   */
  iovs: Uint8Array[];
  /** Driver scratch space: a driver may store per-I/O state here while the I/O is in flight. */
  driverCtx: unknown;
}

/** Completion entry point handed to a driver with each I/O. */
export type DriverDone = (io: BdevIo, status: number) => void;

/**
 * A driver's per-thread channel to one bdev (SPDK's io_channel). Submission is synchronous and never
 * throws; the driver calls `done` exactly once per I/O, possibly later. Drivers batch: many
 * submissions in one event-loop turn should become one system call.
 */
export interface BdevChannel {
  submit(io: BdevIo, done: DriverDone): void;
  /** Releases the channel. I/Os still in flight complete (or fail with -ECANCELED) first. */
  close(): void | Promise<void>;
}

/**
 * A filter in front of a bdev's driver, inserted under every open descriptor at once (as QEMU
 * inserts a mirror filter node): it sees each I/O after the layer's checks and before the driver,
 * and passes it on with `next.submit(io, done)` — at once, or later (e.g. while writes are held).
 * It must not use `io.driverCtx` (the driver's) and must pass on or complete every I/O exactly once.
 */
export interface BdevFilter {
  submit(io: BdevIo, done: DriverDone, next: BdevChannel): void;
}

/** An RPC call that recreates an object: config is replayed RPC. */
export interface ConfigEntry {
  method: string;
  params?: Record<string, unknown>;
}

/**
 * A block device. Implemented by bdev modules; registered with the bdev layer, which owns bounds
 * checks, splitting, statistics and claims. Geometry fields may change only through `resize`.
 */
export interface Bdev {
  /** Unique name (also unique among aliases). */
  readonly name: string;
  /** Other names the bdev answers to. The uuid is always an alias as well. */
  readonly aliases: string[];
  /** RFC 4122 uuid, lower case. */
  readonly uuid: string;
  /** "Malloc disk", "Null disk", "AIO disk"... as SPDK's product_name. */
  readonly productName: string;
  /** Logical block size in bytes (a multiple of 512). */
  readonly blockSize: number;
  /** Size in blocks. */
  numBlocks: number;
  /** Required address and length alignment of data buffers in bytes (1 = none), e.g. 512 for O_DIRECT. */
  readonly requiredAlignment: number;
  /** Optimal I/O boundary in blocks (0 = none). With `splitOnOptimalIoBoundary`, the layer splits I/Os crossing it. */
  readonly optimalIoBoundary: number;
  readonly splitOnOptimalIoBoundary: boolean;
  /** Whether the device has a volatile write cache (flush means something). */
  readonly writeCache: boolean;
  /** The module that created this bdev. */
  readonly module: BdevModule;
  /** Whether the bdev handles this type. The layer fails unsupported types with -ENOTSUP. */
  ioTypeSupported(type: IoType): boolean;
  /** Creates a driver channel. Called once per thread by the layer; the layer shares it among descriptors. */
  createChannel(): BdevChannel;
  /** Releases resources after the bdev is unregistered and every channel is closed. */
  destruct(): Promise<void>;
  /** The `driver_specific` member of bdev_get_bdevs, e.g. `{aio: {filename}}`. */
  driverSpecific(): Record<string, unknown>;
  /** The RPC call that recreates this bdev, or null if it is created by another path (e.g. nvme namespaces). */
  configEntry(): ConfigEntry | null;
}

/**
 * One per bdev kind (malloc, aio, ...). Registered into the DI container under `Tokens.BdevModule`.
 * The module creates its bdevs through its RPC methods and describes them back for save_config.
 */
export interface BdevModule {
  /** Module name as SPDK names it ("malloc", "aio", "passthru"). */
  readonly name: string;
  /** The RPC methods this module provides (bdev_<kind>_create, ...). */
  rpcMethods(): RpcMethod[];
  /**
   * Called for every bdev registered after this module (SPDK's examine): virtual bdev modules
   * attach to a base that appears later. Synchronous and cheap; must not throw.
   */
  examine?(bdev: Bdev): void;
  /** Module-level config written before the bdevs (e.g. *_set_options). */
  moduleConfig?(): ConfigEntry[];
  /** Called at shutdown after the module's bdevs are unregistered. */
  fini?(): Promise<void>;
}
