import { Errno } from '@blockwork/core';
import { rbdError } from './errors';
import { firstReachable, parseMonHost } from './mon-probe';
import { type ClusterHandle, type IoctxHandle, isRbdCallError, libraryPaths, rbdAddon, type RbdNative } from './native';

/** How to reach a cluster: SPDK's register_cluster params, or a bdev's private user_id/config. */
export interface ConnectionSpec {
  /** Ceph user without "client." (default "admin"). */
  userId?: string;
  /** ceph.conf to read; without it and without configParam, librados' default search ($CEPH_CONF, /etc/ceph/ceph.conf). */
  configFile?: string;
  /** Keyring file (sets the `keyring` option). */
  keyFile?: string;
  /** Options set with rados_conf_set after the file, e.g. mon_host, key, rados_osd_op_timeout. */
  configParam?: Record<string, string>;
}

/** Seconds after which a mon command, an OSD op or the initial connect fails instead of waiting forever. */
export const DEFAULT_TIMEOUT_SEC = 30;

/**
 * Options Blockwork sets unless configParam names them. Ceph's own defaults wait forever for a dead
 * OSD (rados_osd_op_timeout=0) and 300 s for the mons; a block device must fail its I/O instead.
 * Partial discards are not skipped, so unmap reads back zeros as the bdev contract wants.
 */
export function defaultOptions(): Record<string, string> {
  const t = String(DEFAULT_TIMEOUT_SEC);
  return { rados_osd_op_timeout: t, rados_mon_op_timeout: t, client_mount_timeout: t, rbd_skip_partial_discard: 'false' };
}

/** The rados_conf_set pairs for a spec, in the order they are applied (later wins). */
export function connectOptions(spec: ConnectionSpec): Array<[string, string]> {
  const opts: Record<string, string> = { ...defaultOptions() };
  if (spec.keyFile !== undefined) opts.keyring = spec.keyFile;
  for (const [k, v] of Object.entries(spec.configParam ?? {})) opts[k] = v;
  return Object.entries(opts);
}

/** The addon with librbd loaded, or RBD_LIBRARY_MISSING naming what dlopen said. */
export function loadLibrary(): RbdNative {
  const n = rbdAddon();
  const { rados, rbd } = libraryPaths();
  const err = n.load(rados, rbd);
  if (err !== null) throw rbdError('RBD_LIBRARY_MISSING', `librbd not found: install librbd1 (${err})`);
  return n;
}

async function connectError(e: unknown, what: string, spec: ConnectionSpec): Promise<Error> {
  if (!isRbdCallError(e)) return e as Error;
  const timeout = spec.configParam?.client_mount_timeout ?? String(DEFAULT_TIMEOUT_SEC);
  const user = `client.${spec.userId ?? 'admin'}`;
  switch (e.syscall) {
    case 'rados_conf_read_file':
      return rbdError('RBD_CONFIG_INVALID', `${what}: cannot read config file '${e.detail}' (errno ${e.errno})`, { errno: e.errno, cause: e });
    case 'rados_conf_set':
      return rbdError('RBD_CONFIG_INVALID', `${what}: librados refused config option '${e.detail}' (errno ${e.errno})`, { errno: e.errno, cause: e });
    case 'rados_connect':
      if (e.errno === Errno.ETIMEDOUT) {
        // librados reports a refused key as a timeout too (the monclient keeps hunting until
        // client_mount_timeout). A monitor that accepts TCP means the cluster is there and cephx failed.
        const mon = await firstReachable(parseMonHost(e.detail ?? ''));
        if (mon !== null) {
          return rbdError('RBD_AUTH_FAILED', `${what}: monitor ${mon} is reachable but did not authenticate ${user} within ${timeout} s: `
            + 'wrong key, unknown user or no keyring (cephx)', { cause: e });
        }
        return rbdError('RBD_CLUSTER_UNREACHABLE', `${what}: no monitor answered within ${timeout} s (mon_host ${e.detail || 'unset'}, client_mount_timeout)`, { cause: e });
      }
      if (e.errno === Errno.EACCES || e.errno === Errno.EPERM) {
        return rbdError('RBD_AUTH_FAILED', `${what}: authentication refused for ${user} (errno ${e.errno})`, { errno: e.errno, cause: e });
      }
      if (e.errno === Errno.ENOENT) {
        return rbdError('RBD_CONFIG_INVALID', `${what}: no monitor address: set mon_host in config_param or give a config file`, { errno: e.errno, cause: e });
      }
      return rbdError('RBD_CONNECT_FAILED', `${what}: rados_connect failed (errno ${e.errno})`, { errno: e.errno, cause: e });
    default:
      return rbdError('RBD_CONNECT_FAILED', `${what}: ${e.syscall} failed (errno ${e.errno})`, { errno: e.errno, cause: e });
  }
}

/**
 * One librados connection (rados_t) and its ioctxs, one per pool, shared by the bdevs on it.
 * Shut down only after every image opened through it is closed.
 */
export class RbdConnection {
  private readonly pools = new Map<string, { ioctx: Promise<IoctxHandle>; refs: number }>();
  private closed = false;

  private constructor(private readonly n: RbdNative, private readonly handle: ClusterHandle, readonly what: string) {}

  /** Connects (on the thread pool, bounded by client_mount_timeout). `what` names the owner in errors. */
  static async connect(spec: ConnectionSpec, what: string): Promise<RbdConnection> {
    const n = loadLibrary();
    const readDefault = spec.configFile === undefined && spec.configParam === undefined;
    try {
      const h = await n.connect(spec.userId ?? 'admin', spec.configFile ?? null, readDefault, connectOptions(spec));
      return new RbdConnection(n, h, what);
    } catch (e) {
      throw await connectError(e, what, spec);
    }
  }

  /** The pool's ioctx, created on first use; pair every call with releaseIoctx. */
  async ioctx(pool: string): Promise<IoctxHandle> {
    let p = this.pools.get(pool);
    if (p === undefined) {
      p = { ioctx: this.n.ioctxCreate(this.handle, pool), refs: 0 };
      this.pools.set(pool, p);
      p.ioctx.catch(() => { if (this.pools.get(pool) === p) this.pools.delete(pool); });
    }
    p.refs++;
    try {
      return await p.ioctx;
    } catch (e) {
      if (isRbdCallError(e) && e.errno === Errno.ENOENT) throw rbdError('RBD_POOL_NOT_FOUND', `${this.what}: pool '${pool}' does not exist`, { cause: e });
      throw rbdError('RBD_OPEN_FAILED', `${this.what}: cannot open pool '${pool}' (${(e as Error).message})`, { errno: isRbdCallError(e) ? e.errno : undefined, cause: e });
    }
  }

  /** Drops one use of the pool's ioctx; destroys it with the last. */
  async releaseIoctx(pool: string): Promise<void> {
    const p = this.pools.get(pool);
    if (p === undefined || --p.refs > 0) return;
    this.pools.delete(pool);
    this.n.ioctxDestroy(await p.ioctx);
  }

  /** rados_shutdown (on the thread pool). Idempotent. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pools.values()) {
      const io = await p.ioctx.catch(() => null);
      if (io !== null) this.n.ioctxDestroy(io);
    }
    this.pools.clear();
    await this.n.shutdown(this.handle);
  }
}
