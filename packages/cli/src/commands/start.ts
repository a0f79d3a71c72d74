import { createLogger, Daemon } from '@blockwork/core';
import { dirname } from 'node:path';
import type { Command } from '../command';
import { fail } from '../command';
import { DEFAULT_CONFIG } from '../default-config';

export const start: Command = {
  command: 'start',
  describe: 'Run the daemon (SPDK JSON config + "plugins"; an embedded malloc config when --config is not given)',
  builder: (y) =>
    y
      .option('config', { alias: ['c', 'json'], type: 'string', describe: 'JSON config file (SPDK format, plus a top-level "plugins" list)' })
      .option('rpc-socket', { alias: 'r', type: 'string', default: '/var/tmp/blockwork.sock', describe: 'RPC socket path' })
      .option('socket-dir', { alias: 'S', type: 'string', describe: 'Directory for vhost controller sockets (default: the run directory)' })
      .option('state-file', { type: 'string', describe: 'Keep the daemon state here (save_config format), rewritten on every change and loaded instead of --config when it exists' })
      .option('run-dir', { type: 'string', default: '/var/tmp/blockwork', describe: 'Directory for runtime state' })
      .option('log-level', { type: 'string', default: process.env.BLOCKWORK_LOG_LEVEL ?? 'info', describe: 'trace, debug, info, warn, error or silent' }),
  async handler(argv) {
    const log = createLogger(argv['log-level'] as string);
    let daemon: Daemon;
    try {
      daemon = await Daemon.start({
        configPath: argv.config as string | undefined,
        config: argv.config ? undefined : DEFAULT_CONFIG,
        rpcSocket: argv['rpc-socket'] as string,
        socketDir: argv['socket-dir'] as string | undefined,
        runDir: argv['run-dir'] as string,
        stateFile: argv['state-file'] as string | undefined,
        pluginSearchDirs: [dirname(require.resolve('@blockwork/core')), __dirname],
        logger: log,
      });
    } catch (e) {
      fail((e as Error).message);
      return;
    }
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        log.info({ signal }, 'shutting down');
        daemon.stop().then(resolve, resolve);
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
      daemon.onShutdownRequest(stop);
    });
  },
};
