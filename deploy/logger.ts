import { type Logger, pino } from 'pino';

/** Structured log lines (pino, JSON) on stderr; SATCHEL_LOG_LEVEL sets the level (default info). */
export function createLogger(name: string): Logger {
  return pino({ name, level: process.env.SATCHEL_LOG_LEVEL ?? 'info' }, pino.destination(2));
}
