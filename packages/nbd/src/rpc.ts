import type { RpcMethod } from '@blockwork/core';
import type { NbdBdevModule } from './nbd-bdev-module';
import type { NbdAddExportParams, NbdServer, NbdServerStartParams } from './nbd-server';

/** Params of bdev_nbd_attach. */
export interface NbdAttachParams {
  name: string;
  address?: string;
  port?: number;
  socket?: string;
  export_name?: string;
  block_size?: number;
  uuid?: string;
}

const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

/**
 * The export server's methods. SPDK's nbd_start_disk/nbd_stop_disk attach a bdev to a kernel
 * /dev/nbdX, a different feature; these serve bdevs to NBD clients over the network.
 */
export function nbdServerRpcMethods(s: NbdServer): RpcMethod[] {
  const start: RpcMethod<NbdServerStartParams> = {
    name: 'nbd_server_start',
    description: 'Start the NBD export server on a TCP address and port, or on a Unix socket; returns true.',
    params: {
      properties: {
        listen_address: { type: 'string', minLength: 1, description: 'IP address to listen on (TCP); default 127.0.0.1.' },
        port: { type: 'integer', minimum: 0, maximum: 65535, description: 'TCP port; default 10809 (the NBD port); 0 picks a free port (see nbd_server_get_exports).' },
        socket: { type: 'string', minLength: 1, description: 'Path of a Unix socket to listen on instead of TCP.' },
      },
    },
    handler: async (p) => {
      await s.start(p);
      return true;
    },
  };
  const stop: RpcMethod = {
    name: 'nbd_server_stop',
    description: 'Stop listening and drop every NBD connection; exports stay defined; returns true.',
    handler: async () => {
      await s.stop();
      return true;
    },
  };
  const add: RpcMethod<NbdAddExportParams> = {
    name: 'nbd_server_add_export',
    description: 'Serve a bdev under an export name (opened for write unless readonly); returns true.',
    params: {
      properties: {
        bdev: { type: 'string', minLength: 1, description: 'Name of the bdev to export.' },
        name: { type: 'string', description: 'Export name clients ask for; default the bdev name.' },
        readonly: { type: 'boolean', description: 'Export read-only (NBD_FLAG_READ_ONLY; writes fail with EPERM); default false.' },
      },
      required: ['bdev'],
    },
    handler: (p) => {
      s.addExport(p);
      return true;
    },
  };
  const remove: RpcMethod<{ name: string }> = {
    name: 'nbd_server_remove_export',
    description: 'Stop serving an export: its connections are closed and the bdev descriptor released; returns true.',
    params: {
      properties: { name: { type: 'string', description: 'Export name.' } },
      required: ['name'],
    },
    handler: (p) => {
      s.removeExport(p.name);
      return true;
    },
  };
  const get: RpcMethod = {
    name: 'nbd_server_get_exports',
    description: 'List the exports: name, bdev_name, readonly, size (bytes), block_size, connections.',
    handler: () => s.list(),
  };
  return [start, stop, add, remove, get];
}

/** The client bdev module's methods (Blockwork naming; SPDK has no bdev_nbd_*). */
export function nbdBdevRpcMethods(m: NbdBdevModule): RpcMethod[] {
  const attach: RpcMethod<NbdAttachParams> = {
    name: 'bdev_nbd_attach',
    description: 'Connect to an NBD server export and create a bdev on it; returns the bdev name.',
    params: {
      properties: {
        name: { type: 'string', minLength: 1, description: 'Name of the new bdev.' },
        address: { type: 'string', minLength: 1, description: 'Host name or IP address of the NBD server (TCP); default 127.0.0.1 when socket is not given.' },
        port: { type: 'integer', minimum: 1, maximum: 65535, description: 'TCP port of the NBD server; default 10809.' },
        socket: { type: 'string', minLength: 1, description: 'Path of the server\'s Unix socket instead of TCP.' },
        export_name: { type: 'string', description: 'Export to attach; default "" (the server\'s default export).' },
        block_size: { type: 'integer', minimum: 512, description: 'Block size of the bdev in bytes (multiple of 512, at least the server\'s minimum); default max(512, server minimum).' },
        uuid: { type: 'string', pattern: UUID_PATTERN, description: 'UUID of the new bdev; default a random v4 UUID.' },
      },
      required: ['name'],
    },
    handler: (p) => m.attach(p),
  };
  const detach: RpcMethod<{ name: string }> = {
    name: 'bdev_nbd_detach',
    description: 'Delete an NBD client bdev: I/O in flight completes, then the connection is closed; returns true.',
    params: {
      properties: { name: { type: 'string', minLength: 1, description: 'Name of the NBD bdev.' } },
      required: ['name'],
    },
    handler: async (p) => {
      await m.detach(p.name);
      return true;
    },
  };
  return [attach, detach];
}
