/**
 * DI tokens. `Symbol.for` keeps them identical across copies of core (a third-party plugin may
 * resolve its own), so registration never depends on module identity.
 */
export const Tokens = {
  /** BdevModule implementations (resolveAll). */
  BdevModule: Symbol.for('blockwork.BdevModule'),
  /** RpcMethodProvider implementations (resolveAll). */
  RpcMethodProvider: Symbol.for('blockwork.RpcMethodProvider'),
  /** Subsystem implementations (resolveAll). */
  Subsystem: Symbol.for('blockwork.Subsystem'),
  /** The BdevLayer singleton of the daemon. */
  BdevLayer: Symbol.for('blockwork.BdevLayer'),
  /** The daemon's pino logger. */
  Logger: Symbol.for('blockwork.Logger'),
  /** DaemonOptions of the running daemon (run directory, sockets). */
  DaemonOptions: Symbol.for('blockwork.DaemonOptions'),
  /** The RpcRegistry of the daemon (to call methods from other modules, e.g. perf). */
  RpcRegistry: Symbol.for('blockwork.RpcRegistry'),
} as const;
