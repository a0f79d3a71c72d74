import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_FILE, ensureBenchFile } from './file-bdevs.bench';
import { blockworkPerf, type Figure, printRow, record, REPO, type Row } from './harness';

const BIN = join(REPO, 'packages/cli/bin/blockwork.js');

function listening(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(sock, () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

async function waitFor(sock: string, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    if (existsSync(sock) && (await listening(sock))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not listen on ${sock}`);
}

/** Our target: a daemon with a uring bdev on the bench file (and a null bdev) behind vhost controllers. */
async function startBlockwork(dir: string): Promise<ChildProcess> {
  const cfg = join(dir, 'target.json');
  writeFileSync(cfg, JSON.stringify({
    plugins: ['@blockwork/bdev-uring', '@blockwork/vhost-blk'],
    subsystems: [
      { subsystem: 'bdev', config: [
        { method: 'bdev_uring_create', params: { name: 'uring0', filename: BENCH_FILE, block_size: 4096 } },
        { method: 'bdev_null_create', params: { name: 'null0', num_blocks: 262144, block_size: 4096 } },
      ] },
      { subsystem: 'vhost_blk', config: [
        { method: 'vhost_create_blk_controller', params: { ctrlr: 'bw.file', dev_name: 'uring0' } },
        { method: 'vhost_create_blk_controller', params: { ctrlr: 'bw.null', dev_name: 'null0' } },
      ] },
    ],
  }));
  const child = spawn(process.execPath, [BIN, 'start', '--config', cfg, '-r', join(dir, 'rpc.sock'), '-S', dir, '--run-dir', join(dir, 'run'), '--log-level', 'error'], { stdio: 'ignore' });
  await waitFor(join(dir, 'bw.null'), child, 'blockwork target');
  return child;
}

/** The peer: qemu-storage-daemon exporting the same file (io_uring, O_DIRECT) and a null-co device. */
async function startQsd(dir: string): Promise<ChildProcess> {
  const child = spawn('qemu-storage-daemon', [
    '--blockdev', `driver=file,node-name=f,filename=${BENCH_FILE},cache.direct=on,aio=io_uring,locking=off`,
    '--export', `type=vhost-user-blk,id=ef,node-name=f,addr.type=unix,addr.path=${join(dir, 'qsd.file')},writable=on,num-queues=1`,
    '--blockdev', 'driver=null-co,node-name=n,size=1073741824',
    '--export', `type=vhost-user-blk,id=en,node-name=n,addr.type=unix,addr.path=${join(dir, 'qsd.null')},writable=on,num-queues=1`,
  ], { stdio: 'ignore' });
  await waitFor(join(dir, 'qsd.null'), child, 'qemu-storage-daemon');
  return child;
}

/** blockwork perf in its own process on a bdev_virtio front end attached to `sock`. */
async function frontEnd(dir: string, sock: string, rw: string, qd: number, seconds: number): Promise<Figure> {
  const cfg = join(dir, `fe-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(cfg, JSON.stringify({
    plugins: ['@blockwork/bdev-virtio'],
    subsystems: [{ subsystem: 'bdev', config: [
      { method: 'bdev_virtio_attach_controller', params: { name: 'vb', trtype: 'user', traddr: sock, dev_type: 'blk', vq_count: 1, vq_size: 256 } },
    ] }],
  }));
  return blockworkPerf(['--config', cfg, '-b', 'vb', '-q', String(qd), '-o', '4096', '-w', rw, '-t', String(seconds)]);
}

function mean(figs: Figure[]): Figure {
  const avg = (k: keyof Figure) => figs.reduce((s, f) => s + f[k], 0) / figs.length;
  return { iops: Math.round(avg('iops')), lat_avg_us: avg('lat_avg_us'), lat_p99_us: avg('lat_p99_us') };
}

/**
 * The vhost target through our own vhost-user-blk front end (bdev_virtio + blockwork perf), against
 * qemu-storage-daemon's export of the same file through the same front end, alternated run by run.
 * The null cases show how far the front end itself goes.
 */
export async function benchVhost(seconds: number, rounds: number): Promise<Row[]> {
  ensureBenchFile();
  const dir = mkdtempSync(join(tmpdir(), 'bw-vb-'));
  const procs: ChildProcess[] = [];
  try {
    procs.push(await startBlockwork(dir), await startQsd(dir));
    const cases = [
      { name: '4K randread QD1', rw: 'randread', qd: 1, ours: 'bw.file', peer: 'qsd.file', metric: 'latency' as const, target: '≤ 1.1 (avg latency)' },
      { name: '4K randread QD32', rw: 'randread', qd: 32, ours: 'bw.file', peer: 'qsd.file', metric: 'iops' as const, target: '≥ 1.0' },
      { name: '4K randwrite QD32', rw: 'randwrite', qd: 32, ours: 'bw.file', peer: 'qsd.file', metric: 'iops' as const, target: '≥ 1.0' },
      { name: 'null 4K randread QD32', rw: 'randread', qd: 32, ours: 'bw.null', peer: 'qsd.null', metric: 'iops' as const, target: undefined },
    ];
    const acc = cases.map(() => ({ ours: [] as Figure[], peer: [] as Figure[] }));
    for (let r = 0; r < rounds; r++) {
      for (const [i, c] of cases.entries()) {
        acc[i].peer.push(await frontEnd(dir, join(dir, c.peer), c.rw, c.qd, seconds));
        acc[i].ours.push(await frontEnd(dir, join(dir, c.ours), c.rw, c.qd, seconds));
      }
    }
    const rows = cases.map((c, i): Row => ({
      case: `vhost-user-blk ${c.name}${c.ours === 'bw.file' ? ' (uring bdev / qsd io_uring, same file)' : ' (null bdev / qsd null-co)'}`,
      ours: mean(acc[i].ours), peer: mean(acc[i].peer), peerName: 'qemu-storage-daemon', metric: c.metric, target: c.target,
    }));
    rows.forEach(printRow);
    record('vhost-user-blk target vs qemu-storage-daemon', `Both targets driven from the host by the same front end (bdev_virtio + blockwork perf, one queue of 256), ${seconds} s per run, ${rounds} alternating rounds averaged; file cases use the same ${BENCH_FILE} with O_DIRECT.`, rows);
    return rows;
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    rmSync(dir, { recursive: true, force: true });
  }
}
