import { randomUUID } from 'node:crypto';
import { type Bdev, type BdevChannel, type BdevModule, type ConfigEntry, Errno, IoType, type Logger } from '@blockwork/core';
import { AioChannel } from './aio-channel';
import { aioError } from './errors';
import { type NativeFailure, type NativeFileInfo, aioNative, isFailure } from './native';

/** Params of bdev_aio_create (SPDK's names). */
export interface AioCreateParams {
  /** Bdev name (required). */
  name: string;
  /** Path of a regular file or block device (required). */
  filename: string;
  /** Block size in bytes; 0 or absent = auto (device's logical block size, or 512 / the fs's O_DIRECT alignment). */
  block_size?: number;
  /** Open read-only: writes, unmap and write_zeroes are not supported. Default false. */
  readonly?: boolean;
  /** Enable unmap/write_zeroes through fallocate (if the filesystem supports it). Default false. */
  fallocate?: boolean;
  /** Bdev uuid; random v4 when absent. */
  uuid?: string;
  /** RWF_NOWAIT: accepted for SPDK compatibility, must be false. */
  nowait?: boolean;
}

interface OpenedFile {
  fd: number;
  direct: boolean;
  info: NativeFileInfo;
}

/** The "AIO disk": a regular file or block device driven through Linux AIO. */
export class AioBdev implements Bdev {
  readonly aliases: string[];
  readonly productName = 'AIO disk';
  readonly optimalIoBoundary = 0;
  readonly splitOnOptimalIoBoundary = false;
  readonly writeCache = true;
  numBlocks: number;
  private closed = false;

  private constructor(
    readonly name: string,
    readonly uuid: string,
    readonly filename: string,
    readonly fd: number,
    /** Whether the file is open with O_DIRECT (false after the buffered fallback). */
    readonly direct: boolean,
    readonly blockSize: number,
    /** Whether block_size was given rather than detected. */
    readonly blockSizeOverride: boolean,
    readonly readonly: boolean,
    readonly fallocate: boolean,
    /** fallocate was requested and the probe found PUNCH_HOLE supported. */
    readonly fallocateSupported: boolean,
    size: number,
    readonly module: BdevModule,
  ) {
    this.aliases = [uuid];
    this.numBlocks = Math.floor(size / blockSize);
  }

  /** O_DIRECT needs block-aligned buffers; buffered I/O takes any. Misaligned buffers are bounced. */
  get requiredAlignment(): number {
    return this.direct ? this.blockSize : 1;
  }

  /**
   * Opens the file and builds the bdev (not registered yet). Synchronous: open, fstat, ioctl and a
   * fallocate probe past EOF are quick. Throws AIO_* errors naming the file.
   */
  static open(p: AioCreateParams, module: BdevModule, log: Logger): AioBdev {
    if (p.nowait) throw aioError('AIO_NOWAIT_UNSUPPORTED', `bdev ${p.name}: nowait is not supported by the Blockwork aio bdev`);
    const ro = p.readonly === true;
    const f = openFile(p.filename, ro, log);
    try {
      const { fd, direct, info } = f;
      const blockSize = chooseBlockSize(p, info, direct);
      if (info.size === 0 || info.size % blockSize !== 0) {
        throw aioError('AIO_SIZE', `${p.filename}: size ${info.size} bytes is not a non-zero multiple of block size ${blockSize}`);
      }
      let supported = false;
      if (p.fallocate === true && !ro) {
        // Punching past EOF with KEEP_SIZE changes nothing but says whether the filesystem can do it.
        // Block devices are not probed (past the end is EINVAL there); a failure surfaces per I/O.
        const rc = info.kind === 'block' ? 0 : aioNative().probeFallocate(fd, false, info.size, blockSize);
        supported = rc === 0;
        if (!supported) log.warn({ bdev: p.name, filename: p.filename, errno: rc }, 'fallocate(PUNCH_HOLE) unsupported: unmap and write_zeroes disabled');
      }
      const uuid = (p.uuid ?? randomUUID()).toLowerCase();
      return new AioBdev(p.name, uuid, p.filename, fd, direct, blockSize, (p.block_size ?? 0) > 0, ro,
        p.fallocate === true, supported, info.size, module);
    } catch (e) {
      aioNative().closeFile(f.fd);
      throw e;
    }
  }

  ioTypeSupported(type: IoType): boolean {
    switch (type) {
      case IoType.READ:
      case IoType.FLUSH:
      case IoType.RESET:
        return true;
      case IoType.WRITE:
        return !this.readonly;
      case IoType.UNMAP:
      case IoType.WRITE_ZEROES:
        return this.fallocateSupported;
      default:
        return false;
    }
  }

  createChannel(): BdevChannel {
    return new AioChannel(this);
  }

  /** Re-reads the size (bdev_aio_rescan). Returns the new size in blocks. */
  rescan(): number {
    const info = aioNative().fileInfo(this.fd);
    if (isFailure(info)) throw failure('AIO_OPEN_FAILED', this.filename, info);
    this.numBlocks = Math.floor(info.size / this.blockSize);
    return this.numBlocks;
  }

  async destruct(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    aioNative().closeFile(this.fd);
  }

  driverSpecific(): Record<string, unknown> {
    return {
      aio: {
        filename: this.filename, block_size_override: this.blockSizeOverride, readonly: this.readonly,
        fallocate: this.fallocate, nowait: false,
      },
    };
  }

  configEntry(): ConfigEntry {
    return {
      method: 'bdev_aio_create',
      params: {
        name: this.name, filename: this.filename, block_size: this.blockSize, readonly: this.readonly,
        fallocate: this.fallocate, uuid: this.uuid,
      },
    };
  }
}

/** open(2) with O_DIRECT; EINVAL there means the filesystem has no O_DIRECT, so retry buffered. */
function openFile(filename: string, ro: boolean, log: Logger): OpenedFile {
  const N = aioNative();
  let direct = true;
  let fd = N.openFile(filename, ro, true);
  if (isFailure(fd) && fd.errno === Errno.EINVAL) {
    log.warn({ filename }, 'O_DIRECT not supported here; falling back to buffered I/O (page cache, writes not durable until flush)');
    direct = false;
    fd = N.openFile(filename, ro, false);
  }
  if (isFailure(fd)) throw openError(filename, ro, fd);
  const info = N.fileInfo(fd);
  if (isFailure(info) || info.kind !== 'file' && info.kind !== 'block') {
    N.closeFile(fd);
    if (isFailure(info)) throw failure('AIO_OPEN_FAILED', filename, info);
    if (info.kind === 'directory') throw aioError('AIO_IS_DIRECTORY', `${filename} is a directory, not a file or block device`);
    throw aioError('AIO_UNSUPPORTED_FILE', `${filename} is neither a regular file nor a block device`);
  }
  return { fd, direct, info };
}

function chooseBlockSize(p: AioCreateParams, info: NativeFileInfo, direct: boolean): number {
  // O_DIRECT offsets and lengths must be multiples of the device's logical block / the fs's dio alignment.
  const minimum = Math.max(512, info.logicalBlockSize, direct ? info.dioOffsetAlign : 0);
  const given = p.block_size ?? 0;
  if (given === 0) return minimum;
  if (!Number.isInteger(given) || given < 512 || (given & (given - 1)) !== 0) {
    throw aioError('AIO_BLOCK_SIZE', `bdev ${p.name}: block_size ${given} is not a power of two of at least 512`);
  }
  if (given < minimum) {
    throw aioError('AIO_BLOCK_SIZE', `bdev ${p.name}: block_size ${given} is smaller than the ${minimum} bytes ${p.filename} requires`);
  }
  return given;
}

function openError(filename: string, ro: boolean, f: NativeFailure) {
  const text = `${f.syscall} ${filename}: ${errnoName(f.errno)}`;
  switch (f.errno) {
    case Errno.ENOENT:
      return aioError('AIO_FILE_NOT_FOUND', `${filename} does not exist (${text})`, { errno: f.errno });
    case Errno.EISDIR:
      return aioError('AIO_IS_DIRECTORY', `${filename} is a directory, not a file or block device`, { errno: f.errno });
    case Errno.EACCES:
    case Errno.EROFS:
    case Errno.EPERM:
    case Errno.ETXTBSY:
      if (!ro) {
        return aioError('AIO_NOT_WRITABLE', `${filename} cannot be opened for writing (${text}); ` +
          'pass readonly: true to use it read-only', { errno: f.errno });
      }
  }
  return failure('AIO_OPEN_FAILED', filename, f);
}

function failure(code: 'AIO_OPEN_FAILED', filename: string, f: NativeFailure) {
  return aioError(code, `${f.syscall} ${filename} failed: ${errnoName(f.errno)}`, { errno: f.errno });
}

function errnoName(errno: number): string {
  const name = Object.entries(Errno).find(([, v]) => v === errno)?.[0];
  return `${name ?? 'errno'} (${errno})`;
}
