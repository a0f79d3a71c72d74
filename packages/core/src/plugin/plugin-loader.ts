import { dirname, isAbsolute, join, resolve as resolvePath } from 'node:path';
import semver from 'semver';
import type { DependencyContainer } from 'tsyringe';
import { coreError } from '../errors';
import { packageRoot } from '../native';
import type { BlockworkPlugin } from './plugin';

/** First-party plugins loaded when a config has no `plugins` key, if installed. */
export const FIRST_PARTY_PLUGINS = [
  '@blockwork/bdev-aio',
  '@blockwork/bdev-uring',
  '@blockwork/bdev-nvme',
  '@blockwork/bdev-rbd',
  '@blockwork/bdev-virtio',
  '@blockwork/vhost-blk',
  '@blockwork/migration',
  '@blockwork/nbd',
] as const;

/** This core's version, checked against each plugin's `core` range. */
export const CORE_VERSION: string = require(join(packageRoot(__dirname), 'package.json')).version;

export interface LoadedPlugin {
  plugin: BlockworkPlugin;
  /** The specifier from the config (npm name or path). */
  spec: string;
}

/**
 * Resolves a plugin specifier: an npm name (looked up from `searchDirs`, then from core itself) or
 * a path (relative to the config file's directory).
 */
export function resolvePlugin(spec: string, searchDirs: readonly string[]): string {
  const isPath = spec.startsWith('.') || isAbsolute(spec);
  const paths = isPath ? [] : [...searchDirs, __dirname];
  try {
    return isPath ? require.resolve(resolvePath(searchDirs[0] ?? process.cwd(), spec)) : require.resolve(spec, { paths });
  } catch (e) {
    throw coreError('PLUGIN_NOT_FOUND', `plugin '${spec}' could not be resolved (is it installed? npm install ${isPath ? '' : spec})`.trim(), e);
  }
}

function asPlugin(spec: string, mod: unknown): BlockworkPlugin {
  const m = mod as { plugin?: unknown; default?: unknown };
  const p = (m?.plugin ?? m?.default ?? m) as Partial<BlockworkPlugin>;
  if (!p || typeof p.name !== 'string' || typeof p.core !== 'string' || typeof p.register !== 'function') {
    throw coreError('PLUGIN_INVALID', `plugin '${spec}' does not export a plugin object { name, core, register } (as 'plugin' or default)`);
  }
  return p as BlockworkPlugin;
}

/** Loads the modules and checks names, core version ranges and dependencies, without registering. */
export function loadPlugins(specs: readonly string[], searchDirs: readonly string[]): LoadedPlugin[] {
  const loaded: LoadedPlugin[] = [];
  const names = new Set<string>();
  for (const spec of specs) {
    const file = resolvePlugin(spec, searchDirs);
    let mod: unknown;
    try {
      mod = require(file);
    } catch (e) {
      throw coreError('PLUGIN_INVALID', `plugin '${spec}' failed to load: ${(e as Error).message}`, e);
    }
    const plugin = asPlugin(spec, mod);
    if (names.has(plugin.name)) throw coreError('PLUGIN_DUPLICATE', `plugin '${plugin.name}' is listed twice`);
    if (!semver.satisfies(CORE_VERSION, plugin.core, { includePrerelease: true })) {
      throw coreError('PLUGIN_VERSION', `plugin '${plugin.name}' supports @blockwork/core ${plugin.core}, this is ${CORE_VERSION}`);
    }
    names.add(plugin.name);
    loaded.push({ plugin, spec });
  }
  for (const { plugin } of loaded) {
    for (const dep of plugin.dependencies ?? []) {
      if (!names.has(dep)) throw coreError('PLUGIN_DEPENDENCY', `plugin '${plugin.name}' needs plugin '${dep}'; add it to "plugins"`);
    }
  }
  return loaded;
}

/** The first-party plugins that are installed beside the caller (the CLI) or core. */
export function installedFirstParty(searchDirs: readonly string[]): string[] {
  return FIRST_PARTY_PLUGINS.filter((name) => {
    try {
      require.resolve(name, { paths: [...searchDirs, __dirname] });
      return true;
    } catch {
      return false;
    }
  });
}

/** Registers loaded plugins into the container, dependencies first. */
export function registerPlugins(container: DependencyContainer, plugins: readonly LoadedPlugin[]): void {
  const done = new Set<string>();
  const visit = (p: LoadedPlugin) => {
    if (done.has(p.plugin.name)) return;
    done.add(p.plugin.name);
    for (const dep of p.plugin.dependencies ?? []) visit(plugins.find((x) => x.plugin.name === dep)!);
    p.plugin.register(container);
  };
  plugins.forEach(visit);
}

export function configDir(configPath: string | undefined): string {
  return configPath ? dirname(resolvePath(configPath)) : process.cwd();
}
