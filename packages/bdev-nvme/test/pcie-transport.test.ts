import t from 'tap';
import { createLogger } from '@blockwork/core';
import { execCommand } from '../src/admin';
import { type ControllerOptions, NvmeController } from '../src/controller';
import { IoOpc, sqeInit, sqeLba } from '../src/nvme-spec';
import { PcieTransport } from '../src/pcie-transport';
import { DataDir } from '../src/qpair';
import { FakeNvmeDevice } from './fixtures/fake-nvme-device';

// A PCI address that does not exist on any host, so the sysfs class check is skipped.
const TRADDR = '0000:7e:1f.7';
const log = createLogger('silent');

function options(): ControllerOptions {
  return {
    name: 'Nvme0', trid: { trtype: 'PCIe', traddr: TRADDR }, hostnqn: 'nqn.x', hostid: Buffer.alloc(16), hdgst: false, ddgst: false,
    numIoQueues: 2, ioQueueSize: 128, ctrlrLossTimeoutSec: 0, reconnectDelaySec: 0, fastIoFailTimeoutSec: 0,
    connectTimeoutMs: 1000, adminTimeoutMs: 1000, ioTimeoutMs: 1000, katoMs: 0,
  };
}

function controller(dev: FakeNvmeDevice): NvmeController {
  return new NvmeController(options(), log, new PcieTransport({ trtype: 'PCIe', traddr: TRADDR }, () => dev));
}

t.test('bring-up over the admin queue: CC.EN, Identify, queues; I/O through PRPs; detach deletes queues and shuts down', async (t) => {
  const dev = new FakeNvmeDevice(2048, 'SER-42');
  const c = controller(dev);
  await c.connect();
  t.equal(c.state, 'enabled');
  t.equal(c.cdata.modelNumber, 'Fake NVMe Ctrl');
  t.equal(c.cdata.serialNumber, 'SER-42');
  t.equal(c.cntlid, 7, 'cntlid from Identify Controller');
  t.equal(c.vs, 0x10400);
  t.same([...c.namespaces.keys()], [1]);
  t.equal(c.namespaces.get(1)!.blockSize, 512);
  t.equal(c.io.length, 2);
  t.equal(c.io[0].depth, 63, 'depth capped by CAP.MQES (SQ = MQES + 1 entries)');
  t.match(dev.log, ['CC=0x460001', 'admin 0x6 cdw10 0x1', 'admin 0x9 cdw10 0x7', 'admin 0x6 cdw10 0x2', 'admin 0x6 cdw10 0x0']);
  t.ok(dev.log.includes('admin 0x5 cdw10 0x3f0001') && dev.log.includes('admin 0x1 cdw10 0x3f0001'), 'Create I/O CQ then SQ, 64 entries (QSIZE 63), qid 1');

  const data = Buffer.alloc(3 * 4096 + 512);
  for (let i = 0; i < data.length; i++) data[i] = i % 251;
  const io = (opc: number, buf: Buffer, dir: DataDir) => execCommand(c.io[1], 'io', (s) => { sqeInit(s, opc, 1); sqeLba(s, 100, buf.length / 512); }, { dir, buf });
  await io(IoOpc.WRITE, data, DataDir.H2C);
  t.ok(dev.disk.subarray(100 * 512, 100 * 512 + data.length).equals(data), 'write landed through a PRP list');
  const back = Buffer.alloc(data.length);
  await io(IoOpc.READ, back, DataDir.C2H);
  t.ok(back.equals(data), 'read back');
  await t.rejects(execCommand(c.io[0], 'past end', (s) => { sqeInit(s, IoOpc.READ, 1); sqeLba(s, 2048, 1); }, { dir: DataDir.C2H, buf: Buffer.alloc(512) }),
    { code: 'NVME_ADMIN_FAILED', message: /LBA Out of Range/ });

  await c.shutdown();
  const tail = dev.log.slice(dev.log.indexOf('admin 0x0 cdw10 0x1'));
  t.same(tail, ['admin 0x0 cdw10 0x1', 'admin 0x4 cdw10 0x1', 'admin 0x0 cdw10 0x2', 'admin 0x4 cdw10 0x2', 'CC=0x464001', 'close'],
    'Delete SQ, Delete CQ per queue, CC.SHN, then the device is closed');
});

t.test('a controller left enabled is disabled first; CSTS.RDY never set → NVME_ENABLE_TIMEOUT and the device is closed', async (t) => {
  const dev = new FakeNvmeDevice();
  dev.write32(0x14, 1); // enabled by someone else
  dev.neverReady = true;
  const c = controller(dev);
  const started = Date.now();
  await t.rejects(c.connect(), { code: 'NVME_ENABLE_TIMEOUT', message: /PCIe 0000:7e:1f\.7\).*CSTS\.RDY not set 500 ms after CC\.EN=1/ });
  t.ok(Date.now() - started >= 450, 'waited CAP.TO (500 ms)');
  t.equal(dev.log[1], 'CC=0x0', 'disabled before the admin queue was set');
  t.ok(dev.closed, 'VFIO device closed on failure');
});
