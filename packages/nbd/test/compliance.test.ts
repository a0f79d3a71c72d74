import t from 'tap';
import { type Daemon, runBdevCompliance } from '@blockwork/core';
import { exportingDaemon, exportingDaemonTcp, PLUGIN, tempDir } from './fixtures/helpers';

// The bdev under test is a client bdev attached to our own export of a malloc bdev, served by a
// second in-process daemon (one per check, so no state is shared between checks).
const dir = tempDir(t);
const servers: Daemon[] = [];
t.teardown(() => Promise.all(servers.map((d) => d.stop())));

runBdevCompliance(t, 'nbd', {
  plugins: [PLUGIN],
  create: async (d) => {
    const { d: server, socket } = await exportingDaemon(dir, { blocks: 2048, blockSize: 512 });
    servers.push(server);
    return (await d.call('bdev_nbd_attach', { name: 'nbd0', socket, export_name: 'disk' })) as string;
  },
});

runBdevCompliance(t, 'nbd (TCP, 4 KiB blocks)', {
  plugins: [PLUGIN],
  create: async (d) => {
    const { d: server, port } = await exportingDaemonTcp(dir, { blocks: 256, blockSize: 4096 });
    servers.push(server);
    return (await d.call('bdev_nbd_attach', { name: 'nbd0', address: '127.0.0.1', port, export_name: 'disk' })) as string;
  },
});
