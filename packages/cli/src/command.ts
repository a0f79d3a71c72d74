import type { Argv, ArgumentsCamelCase } from 'yargs';

/** One CLI command: static metadata plus a handler, one file each under commands/, as npm's commands. */
export interface Command {
  readonly command: string;
  readonly describe: string;
  builder(y: Argv): Argv;
  handler(argv: ArgumentsCamelCase<Record<string, unknown>>): Promise<void>;
}

/** The RPC socket option shared by every command that talks to a daemon. */
export function rpcSocketOption(y: Argv): Argv {
  return y.option('rpc-socket', {
    alias: ['r', 's'],
    type: 'string',
    default: '/var/tmp/blockwork.sock',
    describe: 'RPC socket of the daemon',
  });
}

/** Prints an error for a person and sets a failing exit code. */
export function fail(message: string): void {
  process.stderr.write(`blockwork: ${message}\n`);
  process.exitCode = 1;
}
