import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blockworkPerf, type Figure, printRow, record, REPO, type Row } from './harness';

/** The parts of other packages' build output used here (loaded, not imported: test fixtures of another package). */
interface NvmetGuest {
  port: number;
  exec(cmd: string, timeoutMs?: number): Promise<string>;
  kill(): Promise<unknown>;
}
const NVMET_FIXTURE = join(REPO, 'packages/bdev-nvme/dist/test/fixtures/nvmet-guest.js');
const TCP_QPAIR = join(REPO, 'packages/bdev-nvme/dist/src/tcp-qpair.js');
const GUEST_VM = join(REPO, 'packages/guest-vm/dist/src/index.js');
const DEPTHS = [1, 32];

function mean(figs: Figure[]): Figure {
  const avg = (k: keyof Figure) => figs.reduce((s, f) => s + f[k], 0) / figs.length;
  return { iops: Math.round(avg('iops')), lat_avg_us: avg('lat_avg_us'), lat_p99_us: avg('lat_p99_us') };
}

/** fio run inside the guest on the exported ramdisk itself: what the target can do under TCG without transport or driver. */
async function guestFio(g: NvmetGuest, depth: number, seconds: number): Promise<Figure> {
  const out = await g.exec(`fio --output-format=json --name=bench --filename=/dev/ram0 --direct=1 --ioengine=libaio --rw=randread --bs=4k `
    + `--iodepth=${depth} --time_based --runtime=${seconds} --group_reporting 2>/dev/null`, (seconds + 60) * 1000);
  const json = JSON.parse(out.slice(out.indexOf('{'))) as { jobs: Array<{ read: { iops: number; clat_ns: { mean: number; percentile?: Record<string, number> } } }> };
  const r = json.jobs[0].read;
  return { iops: Math.round(r.iops), lat_avg_us: r.clat_ns.mean / 1000, lat_p99_us: (r.clat_ns.percentile?.['99.000000'] ?? 0) / 1000 };
}

/**
 * NVMe/TCP bdev (`blockwork perf` on the host) against fio inside the target guest on the
 * exported /dev/ram0, 4 KiB randread at QD1 and QD32: the ratio is the cost of the transport and
 * driver (slirp port forward, nvmet-tcp, our NVMe/TCP stack) over the target's own speed.
 */
export async function benchNvme(seconds: number, rounds: number): Promise<Row[] | null> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const gvm = require(GUEST_VM) as { guestToolsMissing(n: { storageDaemon: boolean }): string[] };
  const missing = gvm.guestToolsMissing({ storageDaemon: false });
  if (missing.length > 0) {
    console.log(`nvme benchmark skipped: ${missing.join('; ')}`);
    return null;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fx = require(NVMET_FIXTURE) as { SUBNQN: string; startNvmetGuest(probe: (port: number) => Promise<void>): Promise<NvmetGuest> };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { TcpQpair } = require(TCP_QPAIR) as { TcpQpair: { connect(o: unknown): Promise<{ close(): void }> } };
  const probe = async (port: number) => (await TcpQpair.connect({ host: '127.0.0.1', port, qid: 0, depth: 4, hdgst: false, ddgst: false,
    inCapsuleMax: 8192, connectTimeoutMs: 3000, timeoutMs: 0 })).close();
  const g = await fx.startNvmetGuest(probe);
  const dir = mkdtempSync(join(tmpdir(), 'bw-bench-nvme-'));
  try {
    const cfg = join(dir, 'bench.json');
    writeFileSync(cfg, JSON.stringify({ plugins: [join(REPO, 'packages/bdev-nvme')], subsystems: [{ subsystem: 'bdev', config: [
      { method: 'bdev_nvme_attach_controller', params: { name: 'Nvme0', trtype: 'TCP', adrfam: 'IPv4', traddr: '127.0.0.1', trsvcid: String(g.port), subnqn: fx.SUBNQN } },
    ] }] }));
    const rows: Row[] = [];
    for (const depth of DEPTHS) {
      const ours: Figure[] = [];
      const peer: Figure[] = [];
      for (let r = 0; r < rounds; r++) {
        ours.push(await blockworkPerf(['--config', cfg, '-b', 'Nvme0n1', '-w', 'randread', '-q', String(depth), '-o', '4096', '-t', String(seconds)]));
        peer.push(await guestFio(g, depth, seconds));
      }
      const row: Row = { case: `NVMe/TCP 4K randread QD${depth}`, ours: mean(ours), peer: mean(peer), peerName: 'fio in the guest on /dev/ram0', metric: 'iops' };
      printRow(row);
      rows.push(row);
    }
    record('NVMe/TCP bdev vs the target guest\'s own ramdisk',
      `Linux nvmet-tcp in a TCG guest (2 vCPUs, brd /dev/ram0 64 MiB exported as namespace 1, port forwarded by slirp to 127.0.0.1). `
      + `\`blockwork perf -w randread -o 4096\` on the NVMe/TCP bdev from the host vs \`fio --ioengine=libaio --direct=1 --rw=randread --bs=4k\` `
      + `inside the guest on /dev/ram0, ${seconds} s per run, ${rounds} alternated runs averaged. The peer is the target's own speed under TCG; `
      + `the ratio is what the NVMe/TCP path (slirp, the guest's TCP stack and nvmet-tcp, our transport and driver) costs on top. `
      + `Both sides are bounded by TCG emulation, not by the ramdisk or by Blockwork.`, rows);
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await g.kill();
  }
}
