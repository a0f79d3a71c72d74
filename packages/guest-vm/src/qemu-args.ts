import { existsSync } from 'node:fs';
import type { GuestImage } from './guest-image';

/** One vhost-user-blk disk attached to the guest (appears as /dev/vda, /dev/vdb, ... in order). */
export interface VhostUserBlkDisk {
  /** Unix socket of the vhost-user-blk server (keep the path under 107 bytes). */
  socket: string;
  /** Virtqueues the guest asks for. Default 1. */
  numQueues?: number;
  /**
   * Reconnect to the server if it goes away (chardev reconnect=1). QEMU then also waits for
   * a missing socket at start, forever: the guest's timeout is what ends that.
   */
  reconnect?: boolean;
  /**
   * QEMU owns the socket (chardev server=on,wait=off) and the back end connects to it — the
   * back end's client mode (Blockwork's vhost_create_blk_controller `client: true`). QEMU
   * waits at start-up until the back end has connected, and takes the next queued connection
   * as soon as the current one closes, so no reconnect period applies. Excludes `reconnect`.
   */
  server?: boolean;
}

/** What the QEMU command line is built from. */
export interface QemuArgsOptions {
  image: GuestImage;
  /** File holding the guest script (passed as fw_cfg opt/test/cmd). */
  scriptFile: string;
  /** Connected stream sockets (fd numbers in QEMU) that ttyS0 (console) and ttyS1 (script output) go to. */
  consoleFd: number;
  outputFd: number;
  vhostUserBlk?: VhostUserBlkDisk[];
  /** Guest RAM in MiB. Default 1024. */
  memMiB?: number;
  /** Guest CPUs. Default 2. */
  smp?: number;
  /** Unix socket path for a QMP server (server=on,wait=off). */
  qmpSocket?: string;
  /** Appended to the kernel command line, e.g. "intel_iommu=on". */
  kernelArgs?: string;
  /** 'tcg' or 'kvm'. Default: {@link defaultAccel}. */
  accel?: 'tcg' | 'kvm';
  /** Appended verbatim after everything else. */
  extraArgs?: string[];
}

/**
 * The accelerator to use: $BLOCKWORK_GUEST_ACCEL if set; otherwise KVM only when /dev/kvm
 * exists and is not PVM (kvm_pvm cannot boot a stock kernel in useful time), else TCG.
 */
export function defaultAccel(): 'tcg' | 'kvm' {
  const env = process.env.BLOCKWORK_GUEST_ACCEL;
  if (env === 'tcg' || env === 'kvm') return env;
  return existsSync('/dev/kvm') && !existsSync('/sys/module/kvm_pvm') ? 'kvm' : 'tcg';
}

/** The qemu-system-x86_64 argument vector (without the program name). */
export function qemuArgs(o: QemuArgsOptions): string[] {
  const mem = o.memMiB ?? 1024;
  const disks = o.vhostUserBlk ?? [];
  const accel = o.accel ?? defaultAccel();
  const append = ['console=ttyS0', 'loglevel=4', 'panic=-1', 'rdinit=/init', o.kernelArgs ?? ''].filter(Boolean).join(' ');
  const args = [
    '-machine', 'q35',
    ...(accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,thread=multi', '-cpu', 'max']),
    '-m', `${mem}M`,
    '-smp', String(o.smp ?? 2),
    '-nodefaults', '-no-reboot', '-display', 'none',
    '-kernel', o.image.kernel,
    '-initrd', o.image.initrd,
    '-append', append,
    '-fw_cfg', `name=opt/test/cmd,file=${o.scriptFile}`,
    // ttyS0 then ttyS1, in this order, on inherited sockets (node's extra stdio are socketpairs,
    // which a file chardev cannot open through /dev/fd).
    '-chardev', `socket,id=con,fd=${o.consoleFd}`, '-serial', 'chardev:con',
    '-chardev', `socket,id=out,fd=${o.outputFd}`, '-serial', 'chardev:out',
  ];
  if (disks.length > 0) {
    // vhost-user back ends map guest RAM: it must be a shareable fd.
    args.push('-object', `memory-backend-memfd,id=mem,size=${mem}M,share=on`, '-numa', 'node,memdev=mem');
  }
  disks.forEach((d, i) => {
    args.push(
      '-chardev', `socket,id=vhu${i},path=${d.socket}${d.server ? ',server=on,wait=off' : d.reconnect ? ',reconnect=1' : ''}`,
      '-device', `vhost-user-blk-pci,id=vblk${i},chardev=vhu${i},num-queues=${d.numQueues ?? 1}`,
    );
  });
  if (o.qmpSocket) args.push('-qmp', `unix:${o.qmpSocket},server=on,wait=off`);
  args.push(...(o.extraArgs ?? []));
  return args;
}
