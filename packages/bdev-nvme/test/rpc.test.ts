import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger, Daemon } from '@blockwork/core';
import { NVME_ERRORS } from '../src/errors';
import { NvmeBdevModule } from '../src/nvme-bdev-module';

const PKG = join(__dirname, '..');

async function daemon(tt: { teardown(f: () => unknown): void }): Promise<Daemon> {
  const d = await Daemon.start({ rpcSocket: null, logger: createLogger('silent'), config: { plugins: [PKG] } });
  tt.teardown(() => d.stop());
  return d;
}

async function errorOf(p: Promise<unknown>): Promise<{ code?: string; errno?: number; message?: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code: string };
  }
  return {};
}

t.test('every method and param is described', async (t) => {
  const d = await daemon(t);
  const methods = (await d.call('rpc_get_methods', {})) as string[];
  for (const m of ['bdev_nvme_attach_controller', 'bdev_nvme_detach_controller', 'bdev_nvme_get_controllers']) t.ok(methods.includes(m), m);
  const mod = new NvmeBdevModule(d.layer, createLogger('silent'));
  for (const m of mod.rpcMethods()) {
    t.ok(m.description.length > 10, `${m.name} described`);
    for (const [k, p] of Object.entries(m.params?.properties ?? {})) t.ok(p.description.length > 5, `${m.name}.${k} described`);
  }
});

t.test('trtype PCIe: a PCI address that does not exist is named; RDMA is not supported', async (t) => {
  const d = await daemon(t);
  const e = await errorOf(d.call('bdev_nvme_attach_controller', { name: 'Nvme0', trtype: 'PCIe', traddr: '7f:1f.7' }));
  t.equal(e.code, 'NVME_PCI_DEVICE_NOT_FOUND');
  t.equal(e.errno, 19);
  t.match(e.message, /no PCI device 0000:7f:1f\.7/, 'domain 0000 added');
  t.same(await d.call('bdev_nvme_get_controllers', {}), [], 'name released');
  t.equal((await errorOf(d.call('bdev_nvme_attach_controller', { name: 'Nvme0', trtype: 'RDMA', traddr: '10.0.0.1' }))).code, 'NVME_TRTYPE_UNSUPPORTED');
});

t.test('trtype PCIe: parameter checks', async (t) => {
  const d = await daemon(t);
  const bad = async (extra: Record<string, unknown>, re: RegExp) => {
    const e = await errorOf(d.call('bdev_nvme_attach_controller', { name: 'Nvme0', trtype: 'PCIe', traddr: '0000:00:04.0', ...extra }));
    t.equal(e.code, 'NVME_PARAM_INVALID', JSON.stringify(extra));
    t.match(e.message, re);
  };
  await bad({ traddr: '127.0.0.1' }, /not a PCI address/);
  await bad({ traddr: '0000:00:04' }, /not a PCI address/);
  await bad({ subnqn: 'nqn.x' }, /subnqn does not apply/);
  await bad({ trsvcid: '4420' }, /trsvcid does not apply/);
  await bad({ hdgst: true }, /hdgst\/ddgst/);
  await bad({ ctrlr_loss_timeout_sec: 5, reconnect_delay_sec: 1 }, /no reconnect/);
});

t.test('parameter checks name the problem', async (t) => {
  const d = await daemon(t);
  const base = { name: 'Nvme0', trtype: 'TCP', traddr: '127.0.0.1', subnqn: 'nqn.x' };
  const bad = async (extra: Record<string, unknown>, re: RegExp) => {
    const e = await errorOf(d.call('bdev_nvme_attach_controller', { ...base, ...extra }));
    t.equal(e.code, 'NVME_PARAM_INVALID', JSON.stringify(extra));
    t.match(e.message, re);
  };
  await bad({ traddr: 'not-an-ip' }, /not an IPv4 address/);
  await bad({ trsvcid: '99999' }, /not a TCP port/);
  await bad({ ctrlr_loss_timeout_sec: 5 }, /reconnect_delay_sec must be > 0/);
  await bad({ ctrlr_loss_timeout_sec: 5, reconnect_delay_sec: 10 }, /must not exceed/);
  await bad({ psk: 'NVMeTLSkey-1:01:x' }, /TLS/);
  const schema = await errorOf(d.call('bdev_nvme_attach_controller', { name: 'Nvme0', trtype: 'TCP' }));
  t.match(schema.message, /traddr/);
});

t.test('unknown controller: -22 "Controller X does not exist"', async (t) => {
  const d = await daemon(t);
  for (const m of ['bdev_nvme_get_controllers', 'bdev_nvme_detach_controller']) {
    const e = await errorOf(d.call(m, { name: 'Nope' }));
    t.equal(e.errno, 22, m);
    t.equal(e.message, 'Controller Nope does not exist');
  }
  t.same(await d.call('bdev_nvme_get_controllers'), []);
});

t.test('docs list every error code of the catalogue', async (t) => {
  const doc = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'bdev-nvme.md'), 'utf8');
  for (const code of Object.keys(NVME_ERRORS)) t.match(doc, `\`${code}\``, code);
});
