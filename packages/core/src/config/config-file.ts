import { readFileSync } from 'node:fs';
import type { ConfigEntry } from '../bdev/types';
import { coreError } from '../errors';

/** SPDK's JSON config plus Blockwork's top-level `plugins`. */
export interface BlockworkConfig {
  plugins?: string[];
  subsystems?: Array<{ subsystem: string; config?: Array<ConfigEntry | ConfigEntry[]> | null }>;
}

/** One config entry with where it came from, for error messages. */
export interface LocatedEntry extends ConfigEntry {
  subsystem: string;
  index: number;
}

/** Removes // and /* *\/ comments outside strings (SPDK parses configs with comments allowed). */
export function stripComments(text: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 1;
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

export function parseConfig(text: string, source: string): BlockworkConfig {
  let value: unknown;
  try {
    value = JSON.parse(stripComments(text));
  } catch (e) {
    throw coreError('CONFIG_PARSE', `config ${source}: ${(e as Error).message}`, e);
  }
  return validateShape(value, source);
}

export function readConfigFile(path: string): BlockworkConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw coreError('CONFIG_PARSE', `config ${path} cannot be read: ${(e as Error).message}`, e);
  }
  return parseConfig(text, path);
}

function validateShape(v: unknown, source: string): BlockworkConfig {
  const bad = (what: string) => coreError('CONFIG_INVALID', `config ${source}: ${what}`);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('the top level must be an object');
  const cfg = v as Record<string, unknown>;
  if (cfg.plugins !== undefined && (!Array.isArray(cfg.plugins) || cfg.plugins.some((p) => typeof p !== 'string'))) {
    throw bad('"plugins" must be an array of package names or paths');
  }
  if (cfg.subsystems !== undefined) {
    if (!Array.isArray(cfg.subsystems)) throw bad('"subsystems" must be an array');
    cfg.subsystems.forEach((s, i) => {
      if (typeof s !== 'object' || s === null || typeof (s as { subsystem?: unknown }).subsystem !== 'string') {
        throw bad(`subsystems[${i}] must be an object with a "subsystem" name`);
      }
      const list = (s as { config?: unknown }).config;
      if (list !== undefined && list !== null && !Array.isArray(list)) throw bad(`subsystems[${i}].config must be an array`);
      for (const [j, e] of ((list as unknown[]) ?? []).entries()) {
        for (const one of Array.isArray(e) ? e : [e]) {
          const ok = typeof one === 'object' && one !== null && typeof (one as ConfigEntry).method === 'string';
          if (!ok) throw bad(`subsystem '${(s as { subsystem: string }).subsystem}' entry #${j} must be {"method": ..., "params": ...}`);
        }
      }
    });
  }
  return cfg as BlockworkConfig;
}

/** Entries in file order, batches flattened, each tagged with its subsystem and index. */
export function entriesOf(cfg: BlockworkConfig): LocatedEntry[] {
  const out: LocatedEntry[] = [];
  for (const s of cfg.subsystems ?? []) {
    (s.config ?? []).forEach((e, index) => {
      for (const one of Array.isArray(e) ? e : [e]) out.push({ ...one, subsystem: s.subsystem, index });
    });
  }
  return out;
}
