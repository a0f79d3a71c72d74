import t from 'tap';
import { createLogger, Daemon, PerfJob } from '../src/index';

const log = createLogger('silent');

async function daemonWith(t: { teardown(fn: () => unknown): void }, method: string, params: unknown): Promise<Daemon> {
  const daemon = await Daemon.start({ rpcSocket: null, logger: log, config: {} as never });
  t.teardown(() => daemon.stop());
  await daemon.call(method, params);
  return daemon;
}

t.test('verify at QD1 and QD8 on a malloc bdev finds no miscompare', async (t) => {
  const daemon = await daemonWith(t, 'bdev_malloc_create', { name: 'M0', num_blocks: 1024, block_size: 4096 });
  for (const queueDepth of [1, 8]) {
    const r = await new PerfJob(daemon.layer, { bdev: 'M0', queueDepth, ioSize: 4096, workload: 'verify', timeSec: 0.2 }).run();
    t.ok(r.ios > 100, `QD${queueDepth}: ${r.ios} I/Os`);
    t.equal(r.errors + r.miscompares, 0, `QD${queueDepth}: no error, no miscompare`);
  }
});

t.test('randread latency figures are consistent with the IOPS at QD1', async (t) => {
  const daemon = await daemonWith(t, 'bdev_null_create', { name: 'N0', num_blocks: 4096, block_size: 4096 });
  const r = await new PerfJob(daemon.layer, { bdev: 'N0', queueDepth: 1, ioSize: 4096, workload: 'randread', timeSec: 0.3 }).run();
  t.ok(r.ios > 100);
  t.ok(r.lat_us.avg > 0 && r.lat_us.p50 <= r.lat_us.p99 && r.lat_us.p99 <= r.lat_us.p999, 'avg > 0, p50 <= p99 <= p999');
  // At QD1 the I/Os run back to back: their latencies add up to (nearly) the whole run.
  const busy = (r.lat_us.avg * r.ios) / 1e6;
  t.ok(busy <= r.seconds * 1.01 && busy >= r.seconds * 0.5, `sum of latencies ${busy.toFixed(3)} s within a ${r.seconds} s run`);
});
