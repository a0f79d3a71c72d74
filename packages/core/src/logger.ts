import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * The daemon's logger: one JSON line per event on stderr (pino), level from `level` or
 * BLOCKWORK_LOG_LEVEL (default "info"). Tests pass level "silent".
 */
export function createLogger(level = process.env.BLOCKWORK_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));
}
