// The server's pino logger, for every process of it (API, worker, tunnel). Secrets never reach the log:
// the values of every field named in @pocketproxy/errors' SECRET_LOG_KEYS are redacted at any depth of a
// log object and at the top level of a child's bindings. The agent logs with the same list and options.
import pino, { type Logger } from 'pino';
import { logRedactionOptions } from '@pocketproxy/errors';
import type { Config } from './config.js';

export function createLogger(config: Pick<Config, 'logLevel'>, destination?: pino.DestinationStream): Logger {
  const o: pino.LoggerOptions = { level: config.logLevel, ...logRedactionOptions() };
  return destination ? pino(o, destination) : pino(o);
}
