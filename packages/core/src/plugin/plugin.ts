import type { DependencyContainer } from 'tsyringe';

/**
 * What a plugin package's main export is (as `plugin` or default export). `register` only puts
 * classes into the container under core's tokens; it does no I/O.
 *
 * @example
 * export const plugin: BlockworkPlugin = {
 *   name: '@acme/bdev-ram',
 *   core: '^0.1.0',
 *   register(c) { c.register(Tokens.BdevModule, { useClass: RamBdevModule }, { lifecycle: Lifecycle.ContainerScoped }); },
 * };
 */
export interface BlockworkPlugin {
  /** Unique plugin name, normally the npm package name. */
  readonly name: string;
  /** semver range of @blockwork/core versions the plugin supports. */
  readonly core: string;
  /** Names of plugins that must be loaded before this one. */
  readonly dependencies?: readonly string[];
  /** Registers the plugin's classes into the daemon's container. */
  register(container: DependencyContainer): void;
}
