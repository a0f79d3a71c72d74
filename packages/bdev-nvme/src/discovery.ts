import type { Logger } from '@blockwork/core';
import { type ControllerOptions, NvmeController, type TcpTransportId } from './controller';
import { type DiscoveryEntry, parseDiscoveryHeader, parseDiscoveryLog } from './identify';
import { DISCOVERY_NQN } from './nvme-spec';

const LID_DISCOVERY = 0x70;

/**
 * Connects to the discovery controller at `opts.trid` (its subnqn is replaced by the discovery
 * NQN), reads the discovery log page (0x70) and disconnects. Resolves with its entries; rejects
 * with the controller's catalogue errors.
 */
export async function discover(opts: ControllerOptions & { trid: TcpTransportId }, log: Logger): Promise<DiscoveryEntry[]> {
  const c = new NvmeController({ ...opts, trid: { ...opts.trid, subnqn: DISCOVERY_NQN }, katoMs: 0, ctrlrLossTimeoutSec: 0 }, log);
  await c.connect();
  try {
    // The header says how many records; read it first, then the whole page.
    const head = parseDiscoveryHeader(await c.getLogPage(LID_DISCOVERY, 1024));
    const page = await c.getLogPage(LID_DISCOVERY, 1024 * (head.numrec + 1));
    return parseDiscoveryLog(page);
  } finally {
    await c.shutdown(1000);
  }
}
