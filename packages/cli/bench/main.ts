import { benchBdevLayer } from './bdev-layer.bench';
import { benchFileBdevs } from './file-bdevs.bench';
import { haveFio } from './harness';
import { benchMigration } from './migration.bench';
import { benchRbd } from './rbd.bench';
import { benchVhost } from './vhost.bench';

/** `npm run bench`: every benchmark prints our figure, the peer's from the same run, and the ratio. */
async function main(): Promise<void> {
  if (!haveFio()) throw new Error('fio is needed for the peer figures: apt-get install fio');
  const seconds = Number(process.env.BENCH_SECONDS ?? 5);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
  const only = process.argv[2];
  if (!only || only === 'bdev-layer') await benchBdevLayer(seconds);
  if (!only || only === 'file') await benchFileBdevs(seconds, rounds);
  if (!only || only === 'vhost') await benchVhost(seconds, rounds);
  if (!only || only === 'rbd') await benchRbd(seconds, rounds);
  if (!only || only === 'migration') await benchMigration(seconds, rounds);
  if (!only || only === 'nvme') await (await import('./nvme.bench.js')).benchNvme(seconds, rounds);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
