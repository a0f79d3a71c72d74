import { connect } from 'node:net';

/** One monitor address from a mon_host value. */
export interface MonAddr {
  host: string;
  port: number;
}

/**
 * Parses a mon_host value ("[v2:1.2.3.4:3300,v1:1.2.3.4:6789]", "1.2.3.4:6789,host2", "[::1]:6789")
 * into addresses; a missing port gives both defaults (3300 for msgr2, 6789 for msgr1).
 */
export function parseMonHost(value: string): MonAddr[] {
  const out: MonAddr[] = [];
  for (let tok of value.split(/[\s,;]+/)) {
    tok = tok.replace(/^\[(?=v[12]:)/, '').replace(/\]$/, '').replace(/^v[12]:/, '').replace(/\/\d+$/, '');
    if (tok === '') continue;
    let host = tok;
    let port: number | null = null;
    const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(tok);
    if (v6) {
      host = v6[1];
      port = v6[2] ? Number(v6[2]) : null;
    } else if (tok.split(':').length === 2) {
      [host, port] = [tok.split(':')[0], Number(tok.split(':')[1])];
    }
    if (port !== null) out.push({ host, port });
    else out.push({ host, port: 3300 }, { host, port: 6789 });
  }
  return out;
}

function reachable(a: MonAddr, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: a.host, port: a.port });
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** The first address that accepts a TCP connection ("host:port"), or null when none does. */
export async function firstReachable(addrs: MonAddr[], timeoutMs = 1000): Promise<string | null> {
  const ok = await Promise.all(addrs.map((a) => reachable(a, timeoutMs)));
  const i = ok.indexOf(true);
  return i < 0 ? null : `${addrs[i].host}:${addrs[i].port}`;
}
