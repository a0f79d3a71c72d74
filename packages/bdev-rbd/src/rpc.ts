import { type ParamSchema, RpcCode, RpcError, type RpcMethod } from '@blockwork/core';
import type { RbdBdevModule } from './rbd-bdev-module';

/** Params of bdev_rbd_register_cluster, as SPDK names them. */
export interface RbdRegisterClusterParams {
  name: string;
  user_id?: string;
  config_param?: Record<string, string>;
  config_file?: string;
  key_file?: string;
  /** Accepted for SPDK compatibility; librados threads are not pinned. */
  core_mask?: string;
}

/** Params of bdev_rbd_create, as SPDK names them. */
export interface RbdCreateParams {
  name?: string;
  pool_name: string;
  rbd_name: string;
  block_size: number;
  user_id?: string;
  config?: Record<string, string>;
  cluster_name?: string;
  uuid?: string;
}

const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
const NAME: ParamSchema = { type: 'string', minLength: 1, description: 'Name of the rbd bdev.' };

function stringMap(description: string): ParamSchema {
  return { type: 'object', description, additionalProperties: true };
}

/** Checks that a config map holds only strings (SPDK's decoder accepts nothing else). */
function assertStringMap(method: string, param: string, m: Record<string, unknown> | undefined): void {
  for (const [k, v] of Object.entries(m ?? {})) {
    if (typeof v !== 'string') throw new RpcError(RpcCode.INVALID_PARAMS, `${method}: param '${param}.${k}' must be string`);
  }
}

/** The module's JSON-RPC methods (same names, params and results as SPDK's bdev_rbd_rpc.c). */
export function rbdRpcMethods(m: RbdBdevModule): RpcMethod[] {
  const register: RpcMethod<RbdRegisterClusterParams> = {
    name: 'bdev_rbd_register_cluster',
    description: 'Connect to a Ceph cluster once and name the connection, for rbd bdevs to share; returns the name.',
    params: {
      properties: {
        name: { type: 'string', minLength: 1, description: 'Name of the cluster connection (cluster_name of bdev_rbd_create).' },
        user_id: { type: 'string', minLength: 1, description: 'Ceph user without the "client." prefix; default "admin".' },
        config_param: stringMap('librados options as a map of strings, set after config_file (e.g. mon_host, key, rados_osd_op_timeout); Blockwork defaults the three timeouts to 30 s.'),
        config_file: { type: 'string', minLength: 1, description: 'Path of a ceph.conf; default: librados\' search ($CEPH_CONF, /etc/ceph/ceph.conf) when config_param is absent too.' },
        key_file: { type: 'string', minLength: 1, description: 'Path of a keyring holding the user\'s key (sets the keyring option).' },
        core_mask: { type: 'string', description: 'Accepted for SPDK compatibility and ignored: librados threads are not pinned.' },
      },
      required: ['name'],
    },
    handler: (p) => {
      assertStringMap('bdev_rbd_register_cluster', 'config_param', p.config_param);
      return m.registerCluster(p);
    },
  };
  const unregister: RpcMethod<{ name: string }> = {
    name: 'bdev_rbd_unregister_cluster',
    description: 'Shut down a registered cluster connection; refused while rbd bdevs use it.',
    params: { properties: { name: { type: 'string', minLength: 1, description: 'Name of the registered cluster.' } }, required: ['name'] },
    handler: async (p) => {
      await m.unregisterCluster(p.name);
      return true;
    },
  };
  const info: RpcMethod<{ name?: string }> = {
    name: 'bdev_rbd_get_clusters_info',
    description: 'Describe registered clusters: one object for a name, else an array of all.',
    params: { properties: { name: { type: 'string', minLength: 1, description: 'Name of one registered cluster; default: all.' } } },
    handler: (p) => m.clustersInfo(p.name),
  };
  const create: RpcMethod<RbdCreateParams> = {
    name: 'bdev_rbd_create',
    description: 'Create a bdev on an existing RBD image; returns the bdev name.',
    params: {
      properties: {
        name: { ...NAME, description: 'Name of the new bdev; default "Ceph<N>".' },
        pool_name: { type: 'string', minLength: 1, description: 'Pool holding the image.' },
        rbd_name: { type: 'string', minLength: 1, description: 'Name of the image in the pool.' },
        block_size: { type: 'integer', minimum: 512, description: 'Block size in bytes, a power of two; the bdev has floor(image size / block_size) blocks.' },
        user_id: { type: 'string', minLength: 1, description: 'Ceph user for a private connection (without cluster_name); default "admin".' },
        config: stringMap('librados options for a private connection (without cluster_name), as a map of strings.'),
        cluster_name: { type: 'string', minLength: 1, description: 'Registered cluster to share (bdev_rbd_register_cluster); excludes user_id and config.' },
        uuid: { type: 'string', pattern: UUID_PATTERN, description: 'UUID of the new bdev; default: a random v4 UUID.' },
      },
      required: ['pool_name', 'rbd_name', 'block_size'],
    },
    handler: (p) => {
      assertStringMap('bdev_rbd_create', 'config', p.config);
      return m.create(p);
    },
  };
  const del: RpcMethod<{ name: string }> = {
    name: 'bdev_rbd_delete',
    description: 'Delete an rbd bdev: I/O in flight completes, then the image is closed (the image itself stays).',
    params: { properties: { name: { ...NAME, description: 'Name of the rbd bdev to delete.' } }, required: ['name'] },
    handler: async (p) => {
      await m.delete(p.name);
      return true;
    },
  };
  const resize: RpcMethod<{ name: string; new_size: number }> = {
    name: 'bdev_rbd_resize',
    description: 'Grow an rbd bdev\'s image to new_size MiB and the bdev with it.',
    params: {
      properties: {
        name: { ...NAME, description: 'Name of the rbd bdev to resize.' },
        new_size: { type: 'integer', minimum: 1, description: 'New image size in MiB; not smaller than the current size.' },
      },
      required: ['name', 'new_size'],
    },
    handler: async (p) => {
      await m.resize(p.name, p.new_size);
      return true;
    },
  };
  return [register, unregister, info, create, del, resize];
}
