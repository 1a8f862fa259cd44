// What createTunnel hands every part of the tunnel (peer-lifecycle.ts, registration.ts,
// firewall-sync.ts, messages.ts, usage-report.ts): the clock and the loggers. Shared state beyond
// this is passed to each part on its own, so its context says what it reads and writes.
import type { Logger } from 'pino';
import type { DeviceEntry } from './devices.js';
import type { LogLimiter } from './limits.js';

export interface TunnelLogs {
  readonly now: () => number;
  /** The tunnel's logger ({subsys: 'tunnel'}). */
  readonly log: Logger;
  /** A child of `log` carrying {deviceId}. */
  readonly devLog: (device: DeviceEntry | string) => Logger;
  /** Repeated messages (per key) at most once per window; see limits.ts. */
  readonly logLimit: LogLimiter;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
