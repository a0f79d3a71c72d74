import yargs from 'yargs';
import type { Command } from './command';
import { bdev } from './commands/bdev';
import { migrate } from './commands/migrate';
import { perf } from './commands/perf';
import { rpc } from './commands/rpc';
import { start } from './commands/start';
import { upgrade } from './commands/upgrade';

/** Every command, listed explicitly and kept sorted. */
export const COMMANDS: readonly Command[] = [bdev, migrate, perf, rpc, start, upgrade];

/** Builds the parser (exported so tests can render help without running anything). */
export function parser(args: string[]) {
  let y = yargs(args).scriptName('blockwork').strict().demandCommand(1, 'Give a command; see --help').help().alias('h', 'help');
  for (const c of COMMANDS) y = y.command(c.command, c.describe, c.builder, c.handler);
  return y;
}

export async function main(args: string[]): Promise<void> {
  await parser(args).parseAsync();
}
