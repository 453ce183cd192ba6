// Structured JSON logs: one line per request (an allowed read's at debug: its audit row has it all)
// and per session event.
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel, destination: NodeJS.WritableStream = process.stdout): Logger {
  return pino({ level, base: { service: 'kube-bastion' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
