import type { RpcClient } from '@blockwork/core';

/** save_config as rpc.py builds it on the client side: every subsystem's framework_get_config, in order. */
export async function saveConfig(client: RpcClient): Promise<unknown> {
  const subsystems = (await client.call('framework_get_subsystems')) as Array<{ subsystem: string }>;
  const out = [];
  for (const s of subsystems) {
    out.push({ subsystem: s.subsystem, config: await client.call('framework_get_config', { name: s.subsystem }) });
  }
  return { subsystems: out };
}
