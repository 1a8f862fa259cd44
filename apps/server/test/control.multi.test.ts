// Two API instances on one PostgreSQL and one relay: a change made through either instance (or by
// either instance's worker) is pushed to the relay before the API answers, and what one instance
// records (the device's applied version) the other shows. The relay is a stand-in push API over HTTP
// (the real one is exercised by the lab tests); the API instances use their real HTTP push client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../src/config.js';
import { buildSystem, type System } from '../src/system.js';
import { runJob } from '../src/worker/jobs.js';
import { freshPostgres, ADMIN } from './harness.js';

const TOKEN = 'i'.repeat(40);

test('two API instances, one PostgreSQL, one relay: changes through either reach the relay before the answer', async (t) => {
  const pgdb = await freshPostgres();
  if (!pgdb) {
    console.error('SKIPPED: needs PP_TEST_DATABASE_URL (npm test starts a server and sets it)');
    t.skip('needs PP_TEST_DATABASE_URL');
    return;
  }
  const synced: { device: string; at: number; auth: string | undefined }[] = [];
  const relay = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/sync') {
        synced.push({
          device: (JSON.parse(body) as { device_id: string }).device_id,
          at: Date.now(),
          auth: req.headers.authorization,
        });
        res.setHeader('content-type', 'application/json');
        return void res.end(JSON.stringify({ ok: true, connected: true }));
      }
      res.statusCode = 404;
      res.end('{}');
    });
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const pushUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
  const dirs = [mkdtempSync(join(tmpdir(), 'pp-multi-a-')), mkdtempSync(join(tmpdir(), 'pp-multi-b-'))];
  const env = (dir: string) => ({
    DATABASE_URL: pgdb.url,
    POCKETPROXY_DATA_DIR: dir,
    POCKETPROXY_LOG_LEVEL: 'silent',
    POCKETPROXY_SECRET_KEY: Buffer.alloc(32, 9).toString('base64'),
    POCKETPROXY_INTERNAL_TOKEN: TOKEN,
    POCKETPROXY_ADMIN_EMAIL: ADMIN.email,
    POCKETPROXY_ADMIN_PASSWORD: ADMIN.password,
    POCKETPROXY_CONNECTION_PORTS: '40000-40099',
  });
  const systems: System[] = [];
  try {
    for (const d of dirs) systems.push(await buildSystem(loadConfig(env(d)), { log: pino({ level: 'silent' }) }));
    const [a, b] = systems as [System, System];
    const login = async (s: System) =>
      ((await s.api.inject({ method: 'POST', url: '/api/auth/login', payload: ADMIN })).json() as { token: string })
        .token;
    const tokens = [await login(a), await login(b)];
    const call = async (i: 0 | 1, method: string, url: string, body?: unknown, auth = `Bearer ${tokens[i]}`) => {
      const res = await systems[i]!.api.inject({
        method: method as 'GET',
        url,
        headers: { authorization: auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        payload: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.statusCode, json: (res.body ? res.json() : undefined) as any };
    };
    // The relay registers (through A) with its push URL; a device on it.
    const reg = await call(
      0,
      'POST',
      '/api/internal/relays/register',
      {
        name: 'relay-x',
        host: 'relay.example.net',
        tunnel_port: 1194,
        push_url: pushUrl,
        public_key: Buffer.alloc(32, 1).toString('base64'),
      },
      `Bearer ${TOKEN}`,
    );
    assert.equal(reg.status, 200, JSON.stringify(reg.json));
    const made = await call(1, 'POST', '/api/devices', { name: 'multi-dev', relay_id: reg.json.relay_id });
    assert.equal(made.status, 201, JSON.stringify(made.json));
    const dev = made.json.device.id as string;
    const before = () => synced.filter((s) => s.device === dev).length;

    // Created through A: pushed before A answered.
    let n = before();
    const c = await call(0, 'POST', '/api/connections', { device_id: dev, protocol: 'http' });
    assert.equal(c.status, 201, JSON.stringify(c.json));
    assert.equal(before(), n + 1, 'A pushed the new connection to the relay');
    assert.equal(synced.at(-1)!.auth, `Bearer ${TOKEN}`);
    // Changed through B: pushed by B.
    n = before();
    assert.equal((await call(1, 'PATCH', `/api/connections/${c.json.id}`, { enabled: false })).status, 200);
    assert.equal(before(), n + 1, 'B pushed the change');
    // B's worker blocks an expired connection: pushed too.
    n = before();
    await a.ctx.db.query(
      `UPDATE connections SET expires_at = now() - interval '1 minute', enabled = true WHERE id = $1`,
      [c.json.id],
    );
    const r = await runJob(b.ctx, 'blockConnections', new Date());
    assert.ok(r.changed >= 1, JSON.stringify(r));
    assert.ok(before() >= n + 1, "B's worker pushed the block");
    // What the relay answered through B, A shows: the connection is in force on the relay.
    const shown = await call(0, 'GET', `/api/connections/${c.json.id}`);
    assert.ok(shown.json.live.relay_applied_at, JSON.stringify(shown.json.live));
    // Deleted through A.
    n = before();
    assert.equal((await call(0, 'DELETE', `/api/connections/${c.json.id}`)).status, 204);
    assert.equal(before(), n + 1);
  } finally {
    for (const s of systems) await s.close();
    await new Promise<void>((r) => relay.close(() => r()));
    await pgdb.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
});
