import { RpcClient } from '@blockwork/core';
import type { Command } from '../command';
import { fail, rpcSocketOption } from '../command';

interface BdevInfo {
  name: string;
  product_name: string;
  block_size: number;
  num_blocks: number;
  claimed: boolean;
}

/** Left-aligned text table with a header row. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function size(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[u]}`;
}

export const bdev: Command = {
  command: 'bdev <action>',
  describe: 'Bdev commands: "list" prints a table of the bdevs of a running daemon',
  builder: (y) => rpcSocketOption(y).positional('action', { choices: ['list'] as const, describe: 'What to do' }),
  async handler(argv) {
    let client: RpcClient | undefined;
    try {
      client = await RpcClient.connect(argv['rpc-socket'] as string);
      const bdevs = (await client.call('bdev_get_bdevs')) as BdevInfo[];
      const rows = bdevs.map((b) => [
        b.name, b.product_name, String(b.block_size), String(b.num_blocks), size(b.block_size * b.num_blocks), b.claimed ? 'yes' : 'no',
      ]);
      process.stdout.write(`${table(['NAME', 'PRODUCT', 'BLOCK', 'BLOCKS', 'SIZE', 'CLAIMED'], rows)}\n`);
    } catch (e) {
      fail((e as Error).message);
    } finally {
      client?.close();
    }
  },
};
