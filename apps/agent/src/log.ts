// The agent's pino logger. Secrets never reach the log: tokens, keys, PSKs, passwords and
// verifiers are redacted wherever they appear (top level or one object down).
import pino, { type Logger } from 'pino';

const SECRET_KEYS = ['auth_token', 'authorization', 'private_key', 'psk', 'password', 'verifier', 'token'];
export const REDACT_PATHS = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => `*.${k}`),
  'headers.authorization',
  'req.headers.authorization',
];

export type { Logger };

export function createLogger(opts: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
  const o: pino.LoggerOptions = {
    name: 'pocketproxy-agent',
    level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  return opts.destination ? pino(o, opts.destination) : pino(o);
}

/** A logger that drops everything (tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
