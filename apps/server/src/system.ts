// The one wiring module: builds the whole server from config. Only main.ts and tests import it.
import { existsSync, readFileSync } from 'node:fs';
import { decodeKey, encodeKey, publicKeyFromPrivate, serverKeyFromSeed } from '@pocketproxy/protocol';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { migrate, openDb, type Db } from '@pocketproxy/db';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { systemClock, type Clock, type Ctx, type PushClient } from './context.js';
import { httpPushClient } from './services/push.js';
import { connectionUsername } from './services/connections.js';
import { SecretBox } from './security/crypto.js';
import { EventBus } from './services/events.js';
import { HeartbeatBatcher } from './services/heartbeat-batch.js';
import { ensurePortPool } from './services/ports.js';
import { ensureFirstAdmin } from './services/admins.js';
import { ensureLocalRelay } from './services/relays.js';
import { createApi } from './api/app.js';
import { createWorker, type Worker } from './worker/worker.js';
import { loadSecrets, relayKeyPath } from './secrets.js';
import { ovpnProfileProvider } from './openvpn/main.js';
import { createLogger } from './log.js';

export { createLogger } from './log.js';

/** The public half of the local relay key, when the tunnel has created one. */
export function localRelayPublicKey(config: Config): string | null {
  const p = relayKeyPath(config);
  if (!existsSync(p)) return null;
  return encodeKey(publicKeyFromPrivate(decodeKey(readFileSync(p, 'utf8').trim(), 'relay key')));
}

export function defaultDashboardDir(): string {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('@pocketproxy/dashboard/package.json')), 'out');
  } catch {
    return join(process.cwd(), 'apps/dashboard/out');
  }
}

export interface System {
  ctx: Ctx;
  db: Db;
  api: FastifyInstance;
  worker: Worker;
  close(): Promise<void>;
}

export async function buildSystem(
  config: Config,
  opts: { log?: Logger; clock?: Clock; push?: PushClient; db?: Db } = {},
): Promise<System> {
  const log = opts.log ?? createLogger(config);
  const secrets = loadSecrets(config);
  const db = opts.db ?? (await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir }));
  try {
    const applied = await migrate(db);
    if (applied.length) log.info({ applied }, 'database migrated');
    const bus = new EventBus(db);
    await bus.start();
    const ctx: Ctx = {
      db,
      config,
      box: new SecretBox(secrets.secretKey),
      clock: opts.clock ?? systemClock,
      bus,
      log,
      push: opts.push ?? httpPushClient(secrets.internalToken),
      internalToken: secrets.internalToken,
      jwtKey: secrets.jwtKey,
      serverKey: serverKeyFromSeed(secrets.serverKeySeed),
      heartbeats: new HeartbeatBatcher(db, opts.clock ?? systemClock, config.heartbeatIntervalS * 2),
    };
    for (const d of config.deprecated) log.warn(d);
    await ensurePortPool(db, config.connectionPorts);
    const admin = await ensureFirstAdmin(ctx);
    if (admin === 'created') log.info({ email: config.admin?.email }, 'first admin created');
    if (admin === 'none-configured')
      log.warn('no admin exists: set POCKETPROXY_ADMIN_EMAIL and POCKETPROXY_ADMIN_PASSWORD and restart');
    await ensureLocalRelay(ctx, localRelayPublicKey(config));
    const ovpnProfile = ovpnProfileProvider(config, (id) => connectionUsername(db, id));
    const api = await createApi(ctx, {
      dashboardDir: config.dashboardDir ?? defaultDashboardDir(),
      ...(ovpnProfile ? { ovpnProfile } : {}),
    });
    const worker = createWorker(ctx);
    return {
      ctx,
      db,
      api,
      worker,
      async close() {
        await worker.stop();
        await api.close();
        await bus.stop();
        await db.close();
      },
    };
  } catch (e) {
    if (!opts.db) await db.close().catch(() => {});
    throw e;
  }
}
