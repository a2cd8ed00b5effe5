import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * JSON lines by default (for log collectors); pretty when asked or when stdout is a terminal.
 * Secrets are redacted by path as a second line of defence; code redacts URLs itself.
 */
export function createLogger(options: {
  level: string;
  format: 'json' | 'pretty';
  destination?: pino.DestinationStream;
}): Logger {
  const base: pino.LoggerOptions = {
    level: options.level,
    base: { pid: process.pid },
    redact: {
      paths: ['token', '*.token', 'authorization', '*.authorization', 'req.headers.authorization', 'password', '*.password'],
      censor: '[redacted]',
    },
  };
  if (options.destination) return pino(base, options.destination);
  if (options.format === 'pretty') {
    return pino({
      ...base,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino(base);
}
