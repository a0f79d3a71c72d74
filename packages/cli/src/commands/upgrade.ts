import { spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RpcClient } from '@blockwork/core';
import type { Command } from '../command';
import { fail, rpcSocketOption } from '../command';

/** framework_upgrade_prepare's answer. */
interface Handover {
  pid: number;
  state_file: string;
  rpc_socket: string;
  socket_dir: string;
  run_dir: string;
}

/** What the command reports (printed as text, or as one JSON line with --json). */
export interface UpgradeReport {
  old_pid: number;
  new_pid: number;
  old_version: string;
  new_version: string;
  state_file: string;
  /** framework_upgrade_prepare to the new daemon answering RPC; the old one serves I/O meanwhile. */
  start_ms: number;
  /** SIGTERM to the old daemon until it has drained its queues and exited. */
  drain_ms: number;
  /** SIGTERM to every vhost session started again on the new daemon: the guest-visible pause. */
  pause_ms: number | null;
  /** Started vhost sessions per controller before the upgrade. */
  sessions: Record<string, number>;
  /** True when the old daemon had to be SIGKILLed after --drain-timeout-ms (inflight tracking recovers). */
  killed: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, stepMs: number, f: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

/**
 * Whether `pid` still runs. A zombie counts as gone: the old daemon was started detached by an
 * earlier `upgrade`, so once it exits it waits for init to reap it, which may take seconds
 * (container inits reap on a timer) and would otherwise be counted as drain time.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Started sessions per controller (empty when the vhost-blk plugin is not loaded). */
async function startedSessions(sock: string): Promise<Record<string, number>> {
  try {
    const ctrls = (await RpcClient.callOnce(sock, 'vhost_get_controllers')) as Array<{ ctrlr: string; sessions: Array<{ started: boolean }> }>;
    return Object.fromEntries(ctrls.map((c) => [c.ctrlr, c.sessions.filter((s) => s.started).length]));
  } catch {
    return {};
  }
}

async function version(sock: string): Promise<string> {
  return ((await RpcClient.callOnce(sock, 'spdk_get_version')) as { version: string }).version;
}

interface UpgradeArgs {
  'rpc-socket': string;
  'state-file'?: string;
  'log-file'?: string;
  'timeout-ms': number;
  'drain-timeout-ms': number;
  json: boolean;
  '--'?: string[];
}

/** The whole handover; throws with a sentence for the operator. */
export async function runUpgrade(a: UpgradeArgs): Promise<UpgradeReport> {
  const sock = a['rpc-socket'];
  const oldVersion = await version(sock);
  const sessions = await startedSessions(sock);
  const t0 = Date.now();
  const h = (await RpcClient.callOnce(sock, 'framework_upgrade_prepare', { state_file: a['state-file'], timeout_ms: a['timeout-ms'] })) as Handover;
  await until('the old daemon to release the RPC socket', 5000, 5, async () => (existsSync(sock) ? undefined : true));
  // The CLI on disk now (possibly newer than the running daemon's) starts the new daemon.
  const bin = join(__dirname, '../../../bin/blockwork.js');
  const extra = a['--'] ?? [];
  const args = [bin, 'start', '--rpc-socket', sock, '--state-file', h.state_file, '--socket-dir', h.socket_dir, '--run-dir', h.run_dir, ...extra];
  const out = a['log-file'] ? openSync(a['log-file'], 'a') : 'inherit';
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? -1));
  const newVersion = await until('the new daemon to answer on the RPC socket', 60_000, 20, async () => {
    if (exited !== null) return `exited ${exited}`;
    return version(sock);
  });
  if (newVersion.startsWith('exited')) {
    throw new Error(`the new daemon ${newVersion} before it was ready; the old one keeps serving and re-opens the RPC socket within ${a['timeout-ms']} ms of the handover`);
  }
  const started = Date.now() - t0;
  const tStop = Date.now();
  process.kill(h.pid, 'SIGTERM');
  // Watched from the SIGTERM on, not after the old daemon's exit: with client-mode controllers the
  // new daemon's sessions start as soon as the old ones are closed, while the old process is
  // still shutting down.
  const want = Object.entries(sessions).filter(([, n]) => n > 0);
  const paused = want.length === 0 ? Promise.resolve(null) : until('vhost sessions on the new daemon', 30_000, 5, async () => {
    const now = await startedSessions(sock);
    return want.every(([c, n]) => (now[c] ?? 0) >= n) ? Date.now() - tStop : undefined;
  }).catch(() => null);
  let killed = false;
  await until('the old daemon to drain and exit', a['drain-timeout-ms'], 5, async () => (alive(h.pid) ? undefined : true)).catch(async () => {
    // Still draining: I/O stuck in a device. Every head is marked in the inflight region, so the
    // new daemon resubmits what the old one leaves behind.
    process.kill(h.pid, 'SIGKILL');
    killed = true;
    await until('the old daemon to die', 5000, 5, async () => (alive(h.pid) ? undefined : true));
  });
  const drain = Date.now() - tStop;
  const pause = await paused;
  return {
    old_pid: h.pid, new_pid: child.pid ?? -1, old_version: oldVersion, new_version: newVersion, state_file: h.state_file,
    start_ms: started, drain_ms: drain, pause_ms: pause, sessions, killed,
  };
}

export const upgrade: Command = {
  command: 'upgrade',
  describe: 'Replace a running daemon by a new one (the CLI installed now) without losing vhost I/O: hand over the state, start the new daemon, drain and stop the old one; reports the pause (extra start args after --)',
  builder: (y) =>
    rpcSocketOption(y)
      .parserConfiguration({ 'populate--': true })
      .option('state-file', { type: 'string', describe: 'Where to save the state for the new daemon (default: the running daemon\'s --state-file)' })
      .option('log-file', { type: 'string', describe: 'Append the new daemon\'s output here (default: this terminal)' })
      .option('timeout-ms', { type: 'number', default: 60_000, describe: 'The old daemon re-opens its RPC socket if not stopped by then (failed upgrade)' })
      .option('drain-timeout-ms', { type: 'number', default: 10_000, describe: 'SIGKILL the old daemon if it has not drained and exited by then' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the report as one JSON line' }),
  async handler(argv) {
    const a = argv as unknown as UpgradeArgs;
    try {
      const r = await runUpgrade(a);
      if (a.json) process.stdout.write(`${JSON.stringify(r)}\n`);
      else {
        process.stdout.write(
          `upgraded ${r.old_version} (pid ${r.old_pid}) -> ${r.new_version} (pid ${r.new_pid})\n` +
          `  new daemon ready ${r.start_ms} ms after the handover (the old one served I/O meanwhile)\n` +
          `  old daemon drained and exited in ${r.drain_ms} ms${r.killed ? ' (SIGKILLed after the drain timeout)' : ''}\n` +
          `  guest-visible pause: ${r.pause_ms === null ? (Object.values(r.sessions).some((n) => n > 0) ? 'sessions did not come back within 30 s' : 'no vhost sessions') : `${r.pause_ms} ms`}\n`,
        );
      }
    } catch (e) {
      fail(`upgrade failed: ${(e as Error).message}`);
    }
  },
};
