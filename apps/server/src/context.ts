// What every service and route receives: built once by system.ts, never from globals.
import type { Db } from '@pocketproxy/db';
import type { Logger } from 'pino';
import type { ServerKey } from '@pocketproxy/protocol';
import type { Config } from './config.js';
import type { SecretBox } from './security/crypto.js';
import type { EventBus } from './services/events.js';
import type { HeartbeatBatcher } from './services/heartbeat-batch.js';

export interface Clock {
  now(): Date;
}
export const systemClock: Clock = { now: () => new Date() };

/** Calls the tunnel (relay) that holds a device, at its push API. */
export interface PushClient {
  /** Sends a frame to a device through the tunnel that holds it; false when it is not connected there. */
  push(pushUrl: string, deviceId: string, message: Record<string, unknown>): Promise<boolean>;
  /** Asks the relay to apply a device's changed connections now (forwarding, credentials to the
   * device); true when it answered that it did for a device connected to it. Throws or answers
   * false otherwise (the device is offline there: it gets its state when it reconnects). */
  sync(pushUrl: string, deviceId: string): Promise<boolean>;
}

export interface Ctx {
  readonly db: Db;
  readonly config: Config;
  readonly box: SecretBox;
  readonly clock: Clock;
  readonly bus: EventBus;
  readonly log: Logger;
  readonly push: PushClient;
  /** Secrets the tunnel and hooks present on /api/internal/*. */
  readonly internalToken: string;
  readonly jwtKey: Uint8Array;
  /** Endorses the relay key each device gets; its fingerprint goes into pairing codes (services/pairing.ts). */
  readonly serverKey: ServerKey;
  readonly heartbeats: HeartbeatBatcher;
}
