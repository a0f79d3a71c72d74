import { randomUUID } from 'node:crypto';
import { type BdevLayer, type BdevModule, type ConfigEntry, coreError, inject, injectable, type Logger, type RpcMethod, Tokens } from '@blockwork/core';
import { rbdError } from './errors';
import { isRbdCallError, rbdAddon } from './native';
import { type RbdBacking, RbdBdev } from './rbd-bdev';
import { type ConnectionSpec, loadLibrary, RbdConnection } from './rbd-connection';
import { type RbdCreateParams, type RbdRegisterClusterParams, rbdRpcMethods } from './rpc';

interface Cluster {
  params: RbdRegisterClusterParams;
  connection: RbdConnection;
  /** Names of the bdevs on this connection. */
  users: Set<string>;
}

const MIB = 1024 * 1024;

/**
 * The Ceph RBD bdev module ("rbd"): named cluster connections shared by bdevs, and bdevs on images
 * (a bdev without cluster_name gets a private connection, as SPDK does).
 */
@injectable()
export class RbdBdevModule implements BdevModule {
  readonly name = 'rbd';
  private readonly clusters = new Map<string, Cluster>();
  private readonly bdevs = new Map<string, RbdBdev>();
  /** SPDK's bdev_rbd_count: default names are Ceph0, Ceph1... */
  private count = 0;

  constructor(
    @inject(Tokens.BdevLayer) private readonly layer: BdevLayer,
    @inject(Tokens.Logger) private readonly log: Logger,
  ) {}

  rpcMethods(): RpcMethod[] {
    return rbdRpcMethods(this);
  }

  /** Clusters first: the bdev entries that follow name them. */
  moduleConfig(): ConfigEntry[] {
    return [...this.clusters.values()].map((c) => ({ method: 'bdev_rbd_register_cluster', params: { ...c.params } }));
  }

  bdevNames(): string[] {
    return [...this.bdevs.keys()];
  }

  async registerCluster(p: RbdRegisterClusterParams): Promise<string> {
    if (this.clusters.has(p.name)) throw rbdError('RBD_CLUSTER_EXISTS', `cluster '${p.name}' is already registered`);
    const spec: ConnectionSpec = { userId: p.user_id, configFile: p.config_file, keyFile: p.key_file, configParam: p.config_param };
    const connection = await RbdConnection.connect(spec, `cluster '${p.name}'`);
    if (this.clusters.has(p.name)) {
      await connection.shutdown();
      throw rbdError('RBD_CLUSTER_EXISTS', `cluster '${p.name}' is already registered`);
    }
    this.clusters.set(p.name, { params: { ...p }, connection, users: new Set() });
    this.log.info({ cluster: p.name, user: p.user_id ?? 'admin' }, 'rbd cluster registered');
    return p.name;
  }

  async unregisterCluster(name: string): Promise<void> {
    const c = this.clusters.get(name);
    if (!c) throw rbdError('RBD_CLUSTER_NOT_FOUND', `cluster '${name}' is not registered`);
    if (c.users.size > 0) throw rbdError('RBD_CLUSTER_IN_USE', `cluster '${name}' is used by rbd bdevs: ${[...c.users].join(', ')}`);
    this.clusters.delete(name);
    await c.connection.shutdown();
  }

  /** SPDK's shape: one object for a name, else an array. */
  clustersInfo(name?: string): unknown {
    const dump = (c: Cluster): Record<string, unknown> => {
      const o: Record<string, unknown> = { cluster_name: c.params.name };
      if (c.params.user_id !== undefined) o.user_id = c.params.user_id;
      if (c.params.config_param !== undefined) o.config_param = c.params.config_param;
      if (c.params.config_file !== undefined) o.config_file = c.params.config_file;
      if (c.params.key_file !== undefined) o.key_file = c.params.key_file;
      return o;
    };
    if (name === undefined) return [...this.clusters.values()].map(dump);
    const c = this.clusters.get(name);
    if (!c) throw rbdError('RBD_CLUSTER_NOT_FOUND', `cluster '${name}' is not registered`);
    return dump(c);
  }

  /** Opens the image (pool and image looked up on the cluster) and registers the bdev. Returns its name. */
  async create(p: RbdCreateParams): Promise<string> {
    const name = p.name ?? `Ceph${this.count}`;
    this.count++;
    if (this.layer.get(name)) throw coreError('BDEV_EXISTS', `bdev name or alias '${name}' already exists`);
    if ((p.block_size & (p.block_size - 1)) !== 0) throw rbdError('RBD_BLOCK_SIZE', `bdev '${name}': block_size ${p.block_size} is not a power of two`);
    if (p.cluster_name !== undefined && (p.user_id !== undefined || p.config !== undefined)) {
      throw rbdError('RBD_CONFIG_INVALID', `bdev '${name}': cluster_name excludes user_id and config`);
    }
    const cluster = p.cluster_name === undefined ? undefined : this.clusters.get(p.cluster_name);
    if (p.cluster_name !== undefined && !cluster) throw rbdError('RBD_CLUSTER_NOT_FOUND', `bdev '${name}': cluster '${p.cluster_name}' is not registered`);
    loadLibrary();
    // Reserved while the open is under way, so a concurrent unregister_cluster is refused.
    cluster?.users.add(name);
    try {
      const backing = await this.open(name, p, cluster);
      const params: RbdCreateParams = { ...p, name };
      const bdev = new RbdBdev(name, (p.uuid ?? randomUUID()).toLowerCase(), this, params, backing, (b) => this.forget(b));
      if (bdev.numBlocks === 0) {
        await bdev.destruct();
        throw rbdError('RBD_BLOCK_SIZE', `bdev '${name}': image '${p.pool_name}/${p.rbd_name}' is smaller than one block of ${p.block_size} bytes`);
      }
      try {
        this.layer.register(bdev);
      } catch (e) {
        await bdev.destruct();
        throw e;
      }
      cluster?.users.add(name);
      this.bdevs.set(name, bdev);
      this.log.info({ bdev: name, pool: p.pool_name, image: p.rbd_name, blockSize: p.block_size, numBlocks: bdev.numBlocks }, 'rbd bdev created');
      return name;
    } catch (e) {
      if (!this.bdevs.has(name)) cluster?.users.delete(name);
      throw e;
    }
  }

  private async open(name: string, p: RbdCreateParams, cluster: Cluster | undefined): Promise<RbdBacking> {
    const n = rbdAddon();
    const connection = cluster?.connection ?? await RbdConnection.connect({ userId: p.user_id, configParam: p.config }, `bdev '${name}'`);
    const privateConnection = cluster === undefined;
    try {
      const ioctx = await connection.ioctx(p.pool_name);
      try {
        const image = await n.imageOpen(ioctx, p.rbd_name).catch((e: unknown) => {
          if (isRbdCallError(e) && e.errno === 2) throw rbdError('RBD_IMAGE_NOT_FOUND', `bdev '${name}': image '${p.rbd_name}' does not exist in pool '${p.pool_name}'`, { cause: e });
          throw rbdError('RBD_OPEN_FAILED', `bdev '${name}': cannot open image '${p.pool_name}/${p.rbd_name}' (${(e as Error).message})`,
            { errno: isRbdCallError(e) ? e.errno : undefined, cause: e });
        });
        return { connection, privateConnection, image, sizeBytes: n.imageSize(image), writeZeroes: n.libraryInfo().writeZeroes };
      } catch (e) {
        await connection.releaseIoctx(p.pool_name);
        throw e;
      }
    } catch (e) {
      if (privateConnection) await connection.shutdown();
      throw e;
    }
  }

  private forget(b: RbdBdev): void {
    if (this.bdevs.get(b.name) === b) this.bdevs.delete(b.name);
    if (b.params.cluster_name !== undefined) this.clusters.get(b.params.cluster_name)?.users.delete(b.name);
  }

  /** Unregisters through the layer (I/O in flight completes first); destruct closes the image. */
  async delete(name: string): Promise<void> {
    await this.layer.unregister(this.own(name).name);
  }

  /** Grows the image to `newSizeMiB`, updates numBlocks and notifies descriptor owners. */
  async resize(name: string, newSizeMiB: number): Promise<void> {
    const bdev = this.own(name);
    const bytes = newSizeMiB * MIB;
    const current = bdev.numBlocks * bdev.blockSize;
    if (bytes < current) throw rbdError('RBD_RESIZE_INVALID', `bdev '${name}': new_size ${newSizeMiB} MiB is smaller than the current ${current / MIB} MiB`);
    try {
      await bdev.resize(bytes);
    } catch (e) {
      throw rbdError('RBD_RESIZE_FAILED', `bdev '${name}': rbd_resize to ${newSizeMiB} MiB failed (${(e as Error).message})`,
        { errno: isRbdCallError(e) ? e.errno : undefined, cause: e });
    }
    this.layer.notifyResize(bdev.name);
  }

  /** Shuts down the registered clusters (the layer has unregistered every bdev by now). */
  async fini(): Promise<void> {
    const all = [...this.clusters.values()];
    this.clusters.clear();
    await Promise.all(all.map((c) => c.connection.shutdown()));
  }

  private own(name: string): RbdBdev {
    const b = this.layer.require(name);
    const mine = this.bdevs.get(b.name);
    if (mine !== b) throw rbdError('RBD_NOT_RBD_BDEV', `bdev '${name}' is not an rbd bdev`);
    return mine;
  }
}
