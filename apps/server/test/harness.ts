// Test harness: a whole server system in-process, on PGlite (in memory) or on a fresh database of the
// real PostgreSQL named by PP_TEST_DATABASE_URL (scripts/test.sh starts one). Fastify's inject() drives it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import pg from 'pg';
import pino from 'pino';
import { openDb, type Db } from '@pocketproxy/db';
import { loadConfig } from '../src/config.js';
import { buildSystem, type System } from '../src/system.js';
import type { Clock, PushClient } from '../src/context.js';
import { checkAnswersWith } from '../src/api/route.js';
import { checkAnswer } from './response-check.js';

// Every answer of every route, in every test that builds a system here, is checked against the schema
// /api/openapi.json publishes for it (a mismatch fails the request with a 500 and prints why).
checkAnswersWith(checkAnswer);

export const ADMIN = { email: 'admin@example.com', password: 'correct-horse-battery' };
export const BACKENDS = ['pglite', 'postgres'] as const;
export type Backend = (typeof BACKENDS)[number];

export class FakeClock implements Clock {
  constructor(public t = new Date('2026-11-25T12:00:00Z').getTime()) {}
  now() {
    return new Date(this.t);
  }
  advance(ms: number) {
    this.t += ms;
  }
}

/** Records pushes and relay syncs; `delivered` and `syncAnswer` decide the answers. */
export class FakePush implements PushClient {
  sent: { pushUrl: string; deviceId: string; message: Record<string, unknown> }[] = [];
  delivered = false;
  synced: { pushUrl: string; deviceId: string }[] = [];
  /** true / false answer; an Error is thrown (relay down). */
  syncAnswer: boolean | Error = true;
  async push(pushUrl: string, deviceId: string, message: Record<string, unknown>) {
    this.sent.push({ pushUrl, deviceId, message });
    return this.delivered;
  }
  async sync(pushUrl: string, deviceId: string) {
    this.synced.push({ pushUrl, deviceId });
    if (this.syncAnswer instanceof Error) throw this.syncAnswer;
    return this.syncAnswer;
  }
  /** The device ids synced since the last call, in order. */
  takeSynced(): string[] {
    const ids = this.synced.map((s) => s.deviceId);
    this.synced = [];
    return ids;
  }
}

/** A fresh database on the test PostgreSQL server; dropped by the returned cleanup. */
export async function freshPostgres(): Promise<{ url: string; drop: () => Promise<void> } | null> {
  const base = process.env.PP_TEST_DATABASE_URL;
  if (!base) return null;
  const name = `pp_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(base);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** Skips the test loudly when the backend is not available; never passes silently. */
/** Skips the test loudly when the backend is not available; never passes silently. In a hook (no
 * `skip` there) it only reports; the tests themselves then skip. */
export function skipUnlessBackend(t: TestContext | { skip?: unknown }, backend: Backend): boolean {
  if (backend === 'postgres' && !process.env.PP_TEST_DATABASE_URL) {
    const msg = 'SKIPPED: real PostgreSQL tests need PP_TEST_DATABASE_URL (npm test starts a server and sets it)';
    console.error(msg);
    if (typeof t.skip === 'function') (t as TestContext).skip(msg);
    return true;
  }
  return false;
}

export interface TestSystem {
  sys: System;
  clock: FakeClock;
  push: FakePush;
  db: Db;
  token: string;
  /** inject() with the admin token and JSON by default. */
  call(
    method: string,
    url: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; json: any; headers: Record<string, unknown>; body: string }>;
  close(): Promise<void>;
}

export async function startSystem(backend: Backend, env: Record<string, string> = {}): Promise<TestSystem> {
  const dataDir = mkdtempSync(join(tmpdir(), 'pp-test-'));
  const pgdb = backend === 'postgres' ? await freshPostgres() : null;
  if (backend === 'postgres' && !pgdb) throw new Error('PP_TEST_DATABASE_URL is not set');
  const config = loadConfig({
    POCKETPROXY_DATA_DIR: dataDir,
    POCKETPROXY_ADMIN_EMAIL: ADMIN.email,
    POCKETPROXY_ADMIN_PASSWORD: ADMIN.password,
    POCKETPROXY_PUBLIC_HOST: 'relay.example.net',
    POCKETPROXY_CONNECTION_PORTS: '40000-40199',
    POCKETPROXY_LOG_LEVEL: 'silent',
    ...(pgdb ? { DATABASE_URL: pgdb.url } : {}),
    ...env,
  });
  const clock = new FakeClock();
  const push = new FakePush();
  const db = await openDb({ databaseUrl: config.databaseUrl, dataDir: null });
  const sys = await buildSystem(config, { clock, push, db, log: pino({ level: 'silent' }) });
  const login = await sys.api.inject({ method: 'POST', url: '/api/auth/login', payload: ADMIN });
  const token = (login.json() as { token: string }).token;
  const ts: TestSystem = {
    sys,
    clock,
    push,
    db,
    token,
    async call(method, url, body, headers = {}) {
      const h: Record<string, string> = { authorization: `Bearer ${token}`, ...headers };
      const res = await sys.api.inject({
        method: method as 'GET',
        url,
        payload: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
        headers: body === undefined ? h : { 'content-type': 'application/json', ...h },
      });
      let json: unknown;
      try {
        json = res.json();
      } catch {
        /* not JSON */
      }
      return { status: res.statusCode, json, headers: res.headers, body: res.body };
    },
    async close() {
      await sys.close();
      await pgdb?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return ts;
}

/** Pairs a device through the public API as an agent would; returns its id and token. */
export async function pairDevice(ts: TestSystem, name?: string): Promise<{ id: string; token: string }> {
  const code = await ts.call('POST', '/api/pairing-codes', name ? { device_name: name } : {});
  const res = await ts.call('POST', '/api/public/pair', { code: code.json.code }, { authorization: '' });
  if (res.status !== 201) throw new Error(`pair failed: ${res.status} ${res.body}`);
  return { id: res.json.device_id, token: res.json.auth_token };
}

/** Every row of the tables a bad request must not change, for before/after comparison. */
export async function snapshot(db: Db): Promise<string> {
  const tables = [
    'admins',
    'relays',
    'customers',
    'devices',
    'ports',
    'connections',
    'commands',
    'ip_history',
    'pairing_codes',
    'webhooks',
    'usage_hourly',
  ];
  const out: Record<string, unknown> = {};
  for (const t of tables) out[t] = (await db.query(`SELECT * FROM ${t} ORDER BY 1`)).rows;
  return JSON.stringify(out);
}
