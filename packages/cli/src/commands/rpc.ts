import { RpcClient, isRpcError } from '@blockwork/core';
import type { Command } from '../command';
import { fail, rpcSocketOption } from '../command';
import { saveConfig } from '../save-config';

/** Options of this command itself; every other --flag becomes a param. */
const OWN = new Set(['_', '$0', 'json', 'rpc-socket', 'r', 's', 'method', 'help', 'version']);

/** Params from `--name value` flags (numbers and booleans as yargs parsed them) merged over --json. */
export function paramsFrom(argv: Record<string, unknown>): Record<string, unknown> | undefined {
  let params: Record<string, unknown> = {};
  if (argv.json !== undefined) {
    const parsed = JSON.parse(String(argv.json)) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('--json must be a JSON object');
    params = parsed as Record<string, unknown>;
  }
  for (const [k, v] of Object.entries(argv)) if (!OWN.has(k)) params[k] = v;
  return Object.keys(params).length > 0 ? params : undefined;
}

export const rpc: Command = {
  command: 'rpc <method>',
  describe: 'Call an RPC method of a running daemon (save_config is assembled client-side, as rpc.py does)',
  builder: (y) =>
    rpcSocketOption(y)
      .positional('method', { type: 'string', describe: 'Method name, e.g. bdev_get_bdevs' })
      .option('json', { type: 'string', describe: 'Params as one JSON object; --param value flags are merged over it' })
      .parserConfiguration({ 'camel-case-expansion': false, 'unknown-options-as-args': false })
      .strict(false)
      .example('$0 rpc bdev_get_bdevs', 'list bdevs')
      .example('$0 rpc bdev_malloc_create --name M1 --num_blocks 2048 --block_size 512', 'create a malloc bdev')
      .example("$0 rpc bdev_null_create --json '{\"name\":\"n0\",\"num_blocks\":64,\"block_size\":4096}'", 'params as JSON'),
  async handler(argv) {
    let client: RpcClient | undefined;
    try {
      const params = paramsFrom(argv);
      client = await RpcClient.connect(argv['rpc-socket'] as string);
      const method = argv.method as string;
      const result = method === 'save_config' ? await saveConfig(client) : await client.call(method, params);
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } catch (e) {
      if (isRpcError(e)) fail(`${argv.method}: ${e.message} (code ${e.rpcCode})`);
      else fail((e as Error).message);
    } finally {
      client?.close();
    }
  },
};
