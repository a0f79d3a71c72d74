import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import { type BdevLayer, type BdevModule, type ConfigEntry, inject, injectable, type Logger, type RpcMethod, Tokens } from '@blockwork/core';
import { type ControllerOptions, NvmeController, type TcpTransportId } from './controller';
import { nvmeError } from './errors';
import { NvmeBdev } from './nvme-bdev';
import { DISCOVERY_NQN } from './nvme-spec';
import { TcpQpair } from './tcp-qpair';
import { type NvmeAttachParams, type NvmeDetachParams, nvmeRpcMethods } from './rpc';
import { normalizeBdf } from './vfio';

interface Attached {
  ctrlr: NvmeController;
  bdevs: Map<number, NvmeBdev>;
  /** The attach params, normalized, for save_config. */
  params: NvmeAttachParams;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * The NVMe bdev module ("nvme"): attaches NVMe-oF controllers over TCP, exposes each active
 * namespace as a bdev, detaches them, and deletes a controller lost beyond ctrlr_loss_timeout_sec
 * (its bdevs are hot-removed), as SPDK's bdev_nvme does.
 */
@injectable()
export class NvmeBdevModule implements BdevModule {
  readonly name = 'nvme';
  private readonly ctrlrs = new Map<string, Attached>();
  /** Default host identity of this daemon: one random uuid, as SPDK generates per application. */
  private readonly hostUuid = randomUUID();

  constructor(
    @inject(Tokens.BdevLayer) private readonly layer: BdevLayer,
    @inject(Tokens.Logger) private readonly log: Logger,
  ) {}

  rpcMethods(): RpcMethod[] {
    return nvmeRpcMethods(this);
  }

  /** The controller named `name`, if attached. */
  controller(name: string): NvmeController | undefined {
    return this.ctrlrs.get(name)?.ctrlr;
  }

  /** Connects, creates one bdev per namespace and returns their names (SPDK's result). */
  async attach(p: NvmeAttachParams): Promise<string[]> {
    const opts = this.options(p);
    if (this.ctrlrs.has(p.name)) throw nvmeError('NVME_CTRLR_EXISTS', `NVMe controller '${p.name}' is already attached (one path per controller is supported)`);
    const ctrlr = new NvmeController(opts, this.log);
    const entry: Attached = { ctrlr, bdevs: new Map(), params: normalized(p, opts) };
    this.ctrlrs.set(p.name, entry); // reserves the name while connecting
    try {
      await ctrlr.connect();
    } catch (e) {
      this.ctrlrs.delete(p.name);
      throw e;
    }
    ctrlr.onFailed = () => void this.remove(entry, false);
    const names: string[] = [];
    try {
      for (const [nsid, ns] of ctrlr.namespaces) {
        if (names.length >= (p.max_bdevs ?? 128)) break;
        const bdev = new NvmeBdev(this, ctrlr, nsid, ns, (b) => entry.bdevs.delete(b.nsid));
        this.layer.register(bdev);
        entry.bdevs.set(nsid, bdev);
        names.push(bdev.name);
      }
    } catch (e) {
      await this.remove(entry, true);
      throw e;
    }
    const d = ctrlr.cdata;
    const digests = ctrlr.admin instanceof TcpQpair ? ctrlr.admin.digests : undefined;
    this.log.info({ ctrlr: p.name, ...opts.trid, model: d.modelNumber,
      serial: d.serialNumber, ioQueues: ctrlr.io.length, hdgst: digests?.hdgst, ddgst: digests?.ddgst, bdevs: names }, 'NVMe controller attached');
    return names;
  }

  private options(p: NvmeAttachParams): ControllerOptions {
    const bad = (why: string) => nvmeError('NVME_PARAM_INVALID', `bdev_nvme_attach_controller ${p.name}: ${why}`);
    const trtype = p.trtype.toUpperCase();
    if (trtype === 'PCIE') return this.pcieOptions(p);
    if (trtype !== 'TCP') throw nvmeError('NVME_TRTYPE_UNSUPPORTED', `bdev_nvme_attach_controller ${p.name}: trtype ${p.trtype} is not supported (TCP and PCIe are)`);
    const adrfam = (p.adrfam ?? 'IPv4').toLowerCase() === 'ipv6' ? 'IPv6' : 'IPv4';
    if (p.adrfam !== undefined && !['ipv4', 'ipv6'].includes(p.adrfam.toLowerCase())) throw bad(`adrfam ${p.adrfam} is not supported (IPv4 or IPv6)`);
    if (isIP(p.traddr) !== (adrfam === 'IPv6' ? 6 : 4)) throw bad(`traddr '${p.traddr}' is not an ${adrfam} address`);
    const trsvcid = p.trsvcid ?? '4420';
    if (!/^\d+$/.test(trsvcid) || Number(trsvcid) < 1 || Number(trsvcid) > 65535) throw bad(`trsvcid '${trsvcid}' is not a TCP port`);
    if (p.psk !== undefined || p.dhchap_key !== undefined || p.dhchap_ctrlr_key !== undefined) throw bad('TLS (psk) and DH-HMAC-CHAP are not supported');
    if (p.prchk_reftag || p.prchk_guard) throw bad('protection information checks are not supported');
    const hostnqn = p.hostnqn ?? `nqn.2014-08.org.nvmexpress:uuid:${this.hostUuid}`;
    const subnqn = p.subnqn ?? DISCOVERY_NQN;
    for (const [k, v] of [['subnqn', subnqn], ['hostnqn', hostnqn]]) if (Buffer.byteLength(v) > 223) throw bad(`${k} is longer than 223 bytes`);
    const loss = p.ctrlr_loss_timeout_sec ?? 0;
    const delay = p.reconnect_delay_sec ?? 0;
    const fast = p.fast_io_fail_timeout_sec ?? 0;
    // SPDK's bdev_nvme_check_io_error_resiliency_params.
    if (loss !== 0 && delay === 0) throw bad('reconnect_delay_sec must be > 0 when ctrlr_loss_timeout_sec is not 0');
    if (loss > 0 && delay > loss) throw bad('reconnect_delay_sec must not exceed ctrlr_loss_timeout_sec');
    if (fast > 0 && loss > 0 && fast > loss) throw bad('fast_io_fail_timeout_sec must not exceed ctrlr_loss_timeout_sec');
    const trid: TcpTransportId = { trtype: 'TCP', adrfam, traddr: p.traddr, trsvcid, subnqn };
    const connectMs = p.fabrics_connect_timeout_us ? Math.ceil(p.fabrics_connect_timeout_us / 1000) : DEFAULT_CONNECT_TIMEOUT_MS;
    return {
      name: p.name, trid, hostnqn, hostid: Buffer.from(this.hostUuid.replace(/-/g, ''), 'hex'),
      hdgst: p.hdgst ?? false, ddgst: p.ddgst ?? false, numIoQueues: p.num_io_queues ?? 1, ioQueueSize: 128,
      ctrlrLossTimeoutSec: loss, reconnectDelaySec: delay, fastIoFailTimeoutSec: fast,
      connectTimeoutMs: connectMs, adminTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS, ioTimeoutMs: 30_000, katoMs: 10_000,
    };
  }

  /**
   * PCIe: traddr is a PCI address of a device bound to vfio-pci. Fabrics-only params are refused;
   * no keep-alive and no reconnect (there is no connection to lose).
   */
  private pcieOptions(p: NvmeAttachParams): ControllerOptions {
    const bad = (why: string) => nvmeError('NVME_PARAM_INVALID', `bdev_nvme_attach_controller ${p.name}: ${why}`);
    const bdf = normalizeBdf(p.traddr);
    if (bdf === null) throw bad(`traddr '${p.traddr}' is not a PCI address (DDDD:BB:DD.F)`);
    for (const k of ['adrfam', 'trsvcid', 'subnqn', 'psk', 'dhchap_key', 'dhchap_ctrlr_key'] as const) {
      if (p[k] !== undefined) throw bad(`${k} does not apply to trtype PCIe`);
    }
    if (p.hdgst || p.ddgst) throw bad('hdgst/ddgst do not apply to trtype PCIe');
    if (p.prchk_reftag || p.prchk_guard) throw bad('protection information checks are not supported');
    if ((p.ctrlr_loss_timeout_sec ?? 0) !== 0) throw bad('ctrlr_loss_timeout_sec does not apply to trtype PCIe (no reconnect)');
    return {
      name: p.name, trid: { trtype: 'PCIe', traddr: bdf }, hostnqn: p.hostnqn ?? `nqn.2014-08.org.nvmexpress:uuid:${this.hostUuid}`,
      hostid: Buffer.from(this.hostUuid.replace(/-/g, ''), 'hex'), hdgst: false, ddgst: false, numIoQueues: p.num_io_queues ?? 1,
      ioQueueSize: 128, ctrlrLossTimeoutSec: 0, reconnectDelaySec: 0, fastIoFailTimeoutSec: 0, connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
      adminTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS, ioTimeoutMs: 30_000, katoMs: 0,
    };
  }

  /** Detaches: hot-removes the bdevs (I/O in flight completes), sends CC.SHN, closes the connections. */
  async detach(p: NvmeDetachParams): Promise<void> {
    const entry = this.ctrlrs.get(p.name);
    if (!entry) throw nvmeError('NVME_CTRLR_NOT_FOUND', `Controller ${p.name} does not exist`);
    const t = entry.ctrlr.opts.trid as unknown as Record<string, string | undefined>;
    const mismatch = (['trtype', 'traddr', 'adrfam', 'trsvcid', 'subnqn'] as const).find((k) => p[k] !== undefined && p[k]!.toLowerCase() !== (t[k] ?? '').toLowerCase());
    if (mismatch) throw nvmeError('NVME_CTRLR_NOT_FOUND', `Controller ${p.name} has no path with ${mismatch} ${p[mismatch]}`);
    await this.remove(entry, true);
  }

  private async remove(entry: Attached, shutdown: boolean): Promise<void> {
    const name = entry.ctrlr.opts.name;
    if (this.ctrlrs.get(name) !== entry) return;
    this.ctrlrs.delete(name);
    for (const b of [...entry.bdevs.values()]) {
      b.removed = true;
      if (this.layer.get(b.name) === b) await this.layer.unregister(b.name).catch((e) => this.log.error({ err: e, bdev: b.name }, 'unregister failed'));
    }
    if (shutdown) await entry.ctrlr.shutdown();
    else await entry.ctrlr.shutdown(0);
    this.log.info({ ctrlr: name }, shutdown ? 'NVMe controller detached' : 'NVMe controller lost and deleted');
  }

  /** SPDK's bdev_nvme_get_controllers result. */
  getControllers(name?: string): unknown[] {
    if (name !== undefined && !this.ctrlrs.has(name)) throw nvmeError('NVME_CTRLR_NOT_FOUND', `Controller ${name} does not exist`);
    const out: unknown[] = [];
    for (const [n, { ctrlr }] of this.ctrlrs) {
      if (name !== undefined && n !== name) continue;
      out.push({
        name: n,
        ctrlrs: [{
          state: ctrlr.state,
          trid: { ...ctrlr.opts.trid },
          cntlid: ctrlr.cntlid,
          host: { nqn: ctrlr.opts.hostnqn, addr: '', svcid: '', no_shn_notification: false },
        }],
      });
    }
    return out;
  }

  moduleConfig(): ConfigEntry[] {
    return [...this.ctrlrs.values()].map((e) => ({ method: 'bdev_nvme_attach_controller', params: { ...e.params } }));
  }

  async fini(): Promise<void> {
    for (const e of [...this.ctrlrs.values()]) await this.remove(e, true);
  }
}

/** The attach params as save_config writes them: SPDK's names, defaults filled in. */
function normalized(p: NvmeAttachParams, o: ControllerOptions): NvmeAttachParams {
  if (o.trid.trtype === 'PCIe') {
    const pcie: NvmeAttachParams = { name: p.name, trtype: 'PCIe', traddr: o.trid.traddr, num_io_queues: o.numIoQueues };
    if (p.max_bdevs !== undefined) pcie.max_bdevs = p.max_bdevs;
    return pcie;
  }
  const out: NvmeAttachParams = {
    name: p.name, trtype: o.trid.trtype, traddr: o.trid.traddr, adrfam: o.trid.adrfam, trsvcid: o.trid.trsvcid, subnqn: o.trid.subnqn,
    hostnqn: o.hostnqn, prchk_reftag: false, prchk_guard: false, hdgst: o.hdgst, ddgst: o.ddgst, num_io_queues: o.numIoQueues,
    ctrlr_loss_timeout_sec: o.ctrlrLossTimeoutSec, reconnect_delay_sec: o.reconnectDelaySec, fast_io_fail_timeout_sec: o.fastIoFailTimeoutSec,
  };
  if (p.fabrics_connect_timeout_us !== undefined) out.fabrics_connect_timeout_us = p.fabrics_connect_timeout_us;
  if (p.max_bdevs !== undefined) out.max_bdevs = p.max_bdevs;
  return out;
}
