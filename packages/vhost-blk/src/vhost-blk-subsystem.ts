import {
  type BdevLayer, type ConfigEntry, type DaemonOptions, inject, injectable, type Logger, type RpcMethod, type Subsystem, Tokens,
} from '@blockwork/core';
import { vhostBlkError } from './errors';
import { type CreateBlkControllerParams, type SetCoalescingParams, vhostBlkRpcMethods } from './rpc';
import { DEFAULT_DELAY_BASE_US, DEFAULT_IOPS_THRESHOLD, VhostBlkController } from './vhost-blk-controller';

/** SPDK answers vhost_get_controllers for an unknown name with -32603 (the others use -32602). */
const INTERNAL_ERROR = -32603;

/** Reports a cpumask as SPDK does ("0x…"): hex kept, a CPU list ("[0,2-3]" or "0,2-3") turned into a mask. */
export function cpumaskHex(mask: string | undefined): string {
  if (mask === undefined || mask.trim() === '') return '0x1';
  const m = mask.trim().toLowerCase();
  if (/^(0x)?[0-9a-f]+$/.test(m)) return `0x${BigInt(m.startsWith('0x') ? m : `0x${m}`).toString(16)}`;
  let bits = 0n;
  for (const part of m.replace(/^\[|\]$/g, '').split(',')) {
    const [a, b] = part.split('-').map((x) => Number.parseInt(x, 10));
    if (!Number.isInteger(a) || a < 0 || a > 1023) continue;
    for (let c = a; c <= (Number.isInteger(b) && b >= a ? Math.min(b, 1023) : a); c++) bits |= 1n << BigInt(c);
  }
  return `0x${(bits === 0n ? 1n : bits).toString(16)}`;
}

/**
 * The vhost_blk subsystem (SPDK's "vhost_blk"): owns the controllers, their RPC methods and their
 * part of save_config. Depends on bdev, so it is finished (controllers closed) before bdevs go.
 */
@injectable()
export class VhostBlkSubsystem implements Subsystem {
  readonly name = 'vhost_blk';
  // After migration when both are loaded: a restart must re-insert write tracking before a
  // controller lets the guest write again (dependencies that are not loaded are ignored).
  readonly dependsOn: readonly string[] = ['bdev', 'migration'];
  private readonly controllers = new Map<string, VhostBlkController>();

  constructor(
    @inject(Tokens.BdevLayer) private readonly layer: BdevLayer,
    @inject(Tokens.DaemonOptions) private readonly options: DaemonOptions,
    @inject(Tokens.Logger) private readonly log: Logger,
  ) {}

  rpcMethods(): RpcMethod[] {
    return vhostBlkRpcMethods(this);
  }

  /** A controller by name (for tests and other plugins). */
  controller(name: string): VhostBlkController | undefined {
    return this.controllers.get(name);
  }

  async createController(p: CreateBlkControllerParams): Promise<VhostBlkController> {
    if (p.ctrlr.includes('/') || p.ctrlr === '.' || p.ctrlr === '..' || p.ctrlr.includes('\0')) {
      throw vhostBlkError('VHOST_CONTROLLER_NAME', `controller name '${p.ctrlr}' is not a plain file name`);
    }
    if (p.transport !== undefined && p.transport !== 'vhost_user_blk') {
      throw vhostBlkError('VHOST_TRANSPORT', `transport '${p.transport}' is not supported (only vhost_user_blk)`);
    }
    if (p.packed_ring === true) throw vhostBlkError('VHOST_PACKED_RING', 'packed ring is not supported yet');
    if (this.controllers.has(p.ctrlr)) throw vhostBlkError('VHOST_CONTROLLER_EXISTS', `vhost controller '${p.ctrlr}' already exists`);
    const socketDir = this.options.socketDir ?? this.options.runDir ?? '/var/tmp/blockwork';
    const opts = { ctrlr: p.ctrlr, devName: p.dev_name, cpumask: p.cpumask, readonly: p.readonly === true, client: p.client === true };
    // Reserve the name while the socket is being created, so two concurrent creates cannot both win.
    this.controllers.set(p.ctrlr, null as unknown as VhostBlkController);
    try {
      const c = await VhostBlkController.create(opts, this.layer, socketDir, this.log);
      this.controllers.set(p.ctrlr, c);
      return c;
    } catch (e) {
      this.controllers.delete(p.ctrlr);
      throw e;
    }
  }

  private require(name: string, rpcCode?: number): VhostBlkController {
    const c = this.controllers.get(name);
    if (!c) throw vhostBlkError('VHOST_CONTROLLER_NOT_FOUND', `vhost controller '${name}' does not exist`, { rpcCode });
    return c;
  }

  getControllers(name?: string): unknown[] {
    const list = name === undefined ? [...this.controllers.values()].filter((c) => c) : [this.require(name, INTERNAL_ERROR)];
    return list.map((c) => ({
      ctrlr: c.name,
      cpumask: cpumaskHex(c.opts.cpumask),
      delay_base_us: c.delayBaseUs,
      iops_threshold: c.iopsThreshold,
      socket: c.socketPath,
      client: c.opts.client,
      sessions: [...c.sessions].map((s) => ({
        vid: s.vid, id: s.id, name: s.name, started: s.started, max_queues: s.maxQueues, inflight_task_cnt: s.inflight,
      })),
      backend_specific: { block: { readonly: c.opts.readonly, bdev: c.opts.devName, transport: 'vhost_user_blk' } },
    }));
  }

  async deleteController(name: string): Promise<void> {
    const c = this.require(name);
    this.controllers.delete(name);
    await c.destroy();
    this.log.info({ ctrlr: name }, 'vhost-blk controller deleted');
  }

  setCoalescing(p: SetCoalescingParams): void {
    const c = this.require(p.ctrlr);
    if (!(p.iops_threshold > 0)) throw vhostBlkError('VHOST_COALESCING', `iops_threshold ${p.iops_threshold} must be > 0`);
    c.delayBaseUs = p.delay_base_us;
    c.iopsThreshold = p.iops_threshold;
  }

  config(): ConfigEntry[] {
    const out: ConfigEntry[] = [];
    for (const c of this.controllers.values()) {
      if (!c) continue;
      const params: Record<string, unknown> = { ctrlr: c.name, dev_name: c.opts.devName };
      if (c.opts.cpumask !== undefined) params.cpumask = c.opts.cpumask;
      params.readonly = c.opts.readonly;
      params.packed_ring = false;
      // Only when set: a server-mode config stays exactly what SPDK writes.
      if (c.opts.client) params.client = true;
      out.push({ method: 'vhost_create_blk_controller', params });
      if (c.delayBaseUs !== DEFAULT_DELAY_BASE_US || c.iopsThreshold !== DEFAULT_IOPS_THRESHOLD) {
        out.push({ method: 'vhost_controller_set_coalescing', params: { ctrlr: c.name, delay_base_us: c.delayBaseUs, iops_threshold: c.iopsThreshold } });
      }
    }
    return out;
  }

  /** Closes every controller (sessions drained) before the bdev subsystem unregisters bdevs. */
  async fini(): Promise<void> {
    for (const name of [...this.controllers.keys()]) {
      const c = this.controllers.get(name);
      this.controllers.delete(name);
      if (!c) continue;
      try {
        await c.destroy();
      } catch (e) {
        this.log.error({ err: e, ctrlr: name }, 'vhost controller close failed at shutdown');
      }
    }
  }
}
