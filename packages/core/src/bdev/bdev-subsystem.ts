import { inject, injectable, injectAll } from 'tsyringe';
import { coreError } from '../errors';
import type { Logger } from '../logger';
import type { RpcContext, RpcMethod } from '../rpc/types';
import type { Subsystem } from '../subsystem';
import { Tokens } from '../tokens';
import type { BdevLayer } from './bdev-layer';
import { bdevToJson } from './bdev-json';
import type { BdevModule, ConfigEntry } from './types';

/** The bdev subsystem: bdev-wide RPC methods, save_config of every module, and ordered shutdown. */
@injectable()
export class BdevSubsystem implements Subsystem {
  readonly name = 'bdev';
  readonly dependsOn: readonly string[] = [];

  constructor(
    @inject(Tokens.BdevLayer) private readonly layer: BdevLayer,
    @injectAll(Tokens.BdevModule) private readonly modules: BdevModule[],
    @inject(Tokens.Logger) private readonly log: Logger,
  ) {}

  config(): ConfigEntry[] {
    const out: ConfigEntry[] = [];
    for (const m of this.modules) out.push(...(m.moduleConfig?.() ?? []));
    for (const b of this.layer.list()) {
      const e = b.configEntry();
      if (e) out.push(e);
    }
    out.push({ method: 'bdev_wait_for_examine' });
    return out;
  }

  /** Unregisters bdevs newest first, so stacked bdevs go before their bases. */
  async fini(): Promise<void> {
    for (const b of this.layer.list().reverse()) {
      try {
        await this.layer.unregister(b.name);
      } catch (e) {
        this.log.error({ err: e, bdev: b.name }, 'bdev unregister failed at shutdown');
      }
    }
    for (const m of this.modules) await m.fini?.();
  }

  rpcMethods(): RpcMethod[] {
    return bdevRpcMethods(this.layer, this.log);
  }
}

async function waitForBdev(layer: BdevLayer, name: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!layer.get(name)) {
    if (Date.now() >= deadline || signal.aborted) throw coreError('RPC_TIMEOUT', `bdev '${name}' did not appear within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, Math.min(20, deadline - Date.now())));
  }
}

function iostatNames(layer: BdevLayer, p: { name?: string; names?: string[] }): string[] {
  const names = p.names ?? (p.name !== undefined ? [p.name] : layer.list().map((b) => b.name));
  return names.map((n) => layer.require(n).name);
}

function bdevRpcMethods(layer: BdevLayer, log: Logger): RpcMethod[] {
  return [
    {
      name: 'bdev_get_bdevs',
      description: 'List bdevs (or one, by name, alias or uuid), optionally waiting for it to appear',
      params: {
        properties: {
          name: { type: 'string', description: 'Bdev name, alias or uuid (all bdevs when omitted)' },
          timeout: { type: 'integer', minimum: 0, description: 'Milliseconds to wait for the bdev to appear' },
        },
      },
      handler: async (p: { name?: string; timeout?: number }, ctx: RpcContext) => {
        if (p.name === undefined) return layer.list().map((b) => bdevToJson(layer, b));
        if (p.timeout) await waitForBdev(layer, p.name, p.timeout, ctx.signal);
        return [bdevToJson(layer, layer.require(p.name))];
      },
    },
    {
      name: 'bdev_get_iostat',
      description: 'I/O statistics per bdev (latencies in ticks of 1 ns)',
      params: {
        properties: {
          name: { type: 'string', description: 'One bdev (SPDK ≤ 26.01 form)' },
          names: { type: 'array', items: { type: 'string' }, description: 'Bdevs to report (all when omitted)' },
          per_channel: { type: 'boolean', description: 'Per-channel stats; Blockwork runs one channel per bdev, so the same numbers' },
          reset_mode: { type: 'string', enum: ['all', 'maxmin', 'error', 'none'], description: 'Reset the counters after reading' },
        },
      },
      handler: (p: { name?: string; names?: string[]; reset_mode?: string }) => {
        const names = iostatNames(layer, p);
        const bdevs = names.map((n) => layer.stat(n).toJson(n));
        if (p.reset_mode === 'all') for (const n of names) layer.stat(n).reset();
        return { tick_rate: 1_000_000_000, ticks: Math.round(performance.now() * 1e6), bdevs };
      },
    },
    {
      name: 'bdev_reset_iostat',
      description: 'Reset I/O statistics of one bdev or all',
      params: {
        properties: {
          name: { type: 'string', description: 'Bdev (all when omitted)' },
          mode: { type: 'string', enum: ['all', 'maxmin'], description: 'What to reset (default all)' },
        },
      },
      handler: (p: { name?: string }) => {
        for (const n of iostatNames(layer, p)) layer.stat(n).reset();
        return true;
      },
    },
    {
      name: 'bdev_get_latency_histogram',
      description: 'Read/write latency histogram of a bdev: non-empty buckets [start_ns, end_ns, count] and percentiles',
      params: { properties: { name: { type: 'string', description: 'Bdev name' } }, required: ['name'] },
      handler: (p: { name: string }) => {
        const h = layer.stat(layer.require(p.name).name).histogram;
        return { total: h.total, p50_ns: h.quantile(0.5), p99_ns: h.quantile(0.99), p999_ns: h.quantile(0.999), buckets: h.buckets() };
      },
    },
    {
      name: 'bdev_wait_for_examine',
      description: 'Completes when every bdev has been examined (immediate: examine is synchronous)',
      states: ['startup', 'runtime'],
      handler: () => true,
    },
    {
      name: 'bdev_set_options',
      description: "SPDK's bdev pool options: accepted for config compatibility; Blockwork sizes its pools itself",
      states: ['startup'],
      params: {
        properties: {
          bdev_io_pool_size: { type: 'integer', minimum: 0, description: 'Ignored' },
          bdev_io_cache_size: { type: 'integer', minimum: 0, description: 'Ignored' },
          bdev_auto_examine: { type: 'boolean', description: 'Ignored (examine is always on)' },
          iobuf_small_cache_size: { type: 'integer', minimum: 0, description: 'Ignored' },
          iobuf_large_cache_size: { type: 'integer', minimum: 0, description: 'Ignored' },
        },
      },
      handler: (p: object) => {
        log.info({ params: p }, 'bdev_set_options: accepted and ignored (pools are sized automatically)');
        return true;
      },
    },
  ];
}
