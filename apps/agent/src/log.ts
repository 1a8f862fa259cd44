// The agent's pino logger. Secrets never reach the log: the values of every field named in
// @pocketproxy/errors' SECRET_LOG_KEYS (passwords, tokens, keys, PSKs, verifiers, pairing codes,
// authorization and cookie headers) are redacted at any depth of a log object and at the top level of
// a child's bindings. The server logs with the same list and options.
import pino, { type Logger } from 'pino';
import { logRedactionOptions } from '@pocketproxy/errors';

export type { Logger };

export function createLogger(opts: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
  const o: pino.LoggerOptions = {
    name: 'pocketproxy-agent',
    level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
    ...logRedactionOptions(),
  };
  return opts.destination ? pino(o, opts.destination) : pino(o);
}

/** A logger that drops everything (tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
