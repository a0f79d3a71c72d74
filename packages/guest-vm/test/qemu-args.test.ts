import t from 'tap';
import { defaultAccel, qemuArgs, type QemuArgsOptions } from '../src/qemu-args';

const base: QemuArgsOptions = {
  image: { kernel: '/k/vmlinuz', initrd: '/k/initrd.img' },
  scriptFile: '/tmp/x/cmd.sh',
  consoleFd: 3,
  outputFd: 4,
  accel: 'tcg',
};

const after = (args: string[], flag: string) => args.filter((_, i) => args[i - 1] === flag);

t.test('defaults: q35, TCG multi-threaded, 1 GiB, 2 CPUs, no defaults, no reboot', async (t) => {
  const a = qemuArgs(base);
  t.same(after(a, '-machine'), ['q35']);
  t.same(after(a, '-accel'), ['tcg,thread=multi']);
  t.same(after(a, '-cpu'), ['max']);
  t.same(after(a, '-m'), ['1024M']);
  t.same(after(a, '-smp'), ['2']);
  t.ok(a.includes('-nodefaults') && a.includes('-no-reboot'));
  t.same(after(a, '-fw_cfg'), ['name=opt/test/cmd,file=/tmp/x/cmd.sh']);
  t.match(after(a, '-append')[0], /^console=ttyS0 .*panic=-1/);
  t.same(after(a, '-serial'), ['chardev:con', 'chardev:out'], 'ttyS0 then ttyS1');
  t.same(after(a, '-chardev'), ['socket,id=con,fd=3', 'socket,id=out,fd=4']);
  t.notOk(a.includes('-object'), 'no shared memory without vhost-user disks');
});

t.test('vhost-user-blk disks: memfd shared RAM, numa node, one chardev+device each', async (t) => {
  const a = qemuArgs({ ...base, memMiB: 512, vhostUserBlk: [{ socket: '/s/a' }, { socket: '/s/b', numQueues: 4, reconnect: true }] });
  t.same(after(a, '-object'), ['memory-backend-memfd,id=mem,size=512M,share=on']);
  t.same(after(a, '-numa'), ['node,memdev=mem']);
  t.same(after(a, '-chardev').slice(2), ['socket,id=vhu0,path=/s/a', 'socket,id=vhu1,path=/s/b,reconnect=1']);
  t.same(after(a, '-device'), [
    'vhost-user-blk-pci,id=vblk0,chardev=vhu0,num-queues=1',
    'vhost-user-blk-pci,id=vblk1,chardev=vhu1,num-queues=4',
  ]);
});

t.test('a vhost-user-blk disk in server mode: QEMU owns the socket, no reconnect period', async (t) => {
  const a = qemuArgs({ ...base, vhostUserBlk: [{ socket: '/s/a', server: true, reconnect: true }] });
  t.same(after(a, '-chardev').slice(2), ['socket,id=vhu0,path=/s/a,server=on,wait=off']);
});

t.test('QMP socket, kernel arguments, KVM and extra arguments last', async (t) => {
  const a = qemuArgs({ ...base, accel: 'kvm', qmpSocket: '/q', kernelArgs: 'intel_iommu=on', extraArgs: ['-device', 'nvme,serial=S'] });
  t.same(after(a, '-qmp'), ['unix:/q,server=on,wait=off']);
  t.match(after(a, '-append')[0], / intel_iommu=on$/);
  t.same(after(a, '-cpu'), ['host']);
  t.same(a.slice(-2), ['-device', 'nvme,serial=S']);
});

t.test('BLOCKWORK_GUEST_ACCEL overrides the detected accelerator', async (t) => {
  const saved = process.env.BLOCKWORK_GUEST_ACCEL;
  t.teardown(() => {
    if (saved === undefined) delete process.env.BLOCKWORK_GUEST_ACCEL;
    else process.env.BLOCKWORK_GUEST_ACCEL = saved;
  });
  process.env.BLOCKWORK_GUEST_ACCEL = 'kvm';
  t.equal(defaultAccel(), 'kvm');
  process.env.BLOCKWORK_GUEST_ACCEL = 'tcg';
  t.equal(defaultAccel(), 'tcg');
});
