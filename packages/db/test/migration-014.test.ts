// Migration 014 (data-plane isolation) on a database that has data from before it: device-level ports go,
// connection ports and everything else stay, and the new connection limits are checked by the database too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDb, migrate, loadMigrations, type Db } from '../src/index.js';

async function withDb(
  backend: 'pglite' | 'postgres',
  fn: (db: Db) => Promise<void>,
  t: { skip: (m: string) => void },
): Promise<void> {
  if (backend === 'pglite') {
    const db = await openDb({ dataDir: null });
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  }
  const base = process.env.PP_TEST_DATABASE_URL;
  if (!base) {
    console.error('SKIPPED: needs PP_TEST_DATABASE_URL (npm test starts a server and sets it)');
    t.skip('needs PP_TEST_DATABASE_URL');
    return;
  }
  const name = `pp_m014_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(base);
  u.pathname = `/${name}`;
  const db = await openDb({ databaseUrl: u.toString(), dataDir: null });
  try {
    await fn(db);
  } finally {
    await db.close();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

for (const backend of ['pglite', 'postgres'] as const) {
  test(`migration 014 on existing data (${backend}): base ports NULL, device port blocks gone, connection ports kept, limits CHECKed`, async (t) => {
    await withDb(
      backend,
      async (db) => {
        const all = loadMigrations();
        const before014 = all.filter((m) => m.version < '014');
        assert.ok(all.some((m) => m.version === '014_isolation'));
        await migrate(db, before014);
        await db.query(
          `INSERT INTO devices (id, name, vpn_ip, base_port, token_hash, psk_enc) VALUES ('dev_a0000000000', 'a', '192.168.255.2', 30000, 'h1', 'x'), ('dev_b0000000000', 'b', '192.168.255.3', 30004, 'h2', 'x')`,
        );
        await db.query(
          `INSERT INTO ports (port, kind, owner_id) VALUES (30000, 'device', 'dev_a0000000000'), (30004, 'device', 'dev_b0000000000'), (30008, 'device', NULL), (40000, 'connection', 'con_a0000000000'), (40001, 'connection', NULL)`,
        );
        await db.query(
          `INSERT INTO connections (id, device_id, protocol, port, username, password_enc, password_verifier, rotation_token_hash, rotation_token_enc) VALUES ('con_a0000000000', 'dev_a0000000000', 'http', 40000, 'u1', 'e', 'v', 'r1', 'x')`,
        );
        assert.equal((await migrate(db))[0], '014_isolation');
        assert.deepEqual(
          (await db.query<{ base_port: number | null }>('SELECT base_port FROM devices ORDER BY id')).rows.map(
            (r) => r.base_port,
          ),
          [null, null],
        );
        assert.deepEqual(
          (
            await db.query<{ port: number; kind: string; owner_id: string | null }>(
              'SELECT port, kind, owner_id FROM ports ORDER BY port',
            )
          ).rows,
          [
            { port: 40000, kind: 'connection', owner_id: 'con_a0000000000' },
            { port: 40001, kind: 'connection', owner_id: null },
          ],
        );
        const c = (
          await db.query<Record<string, unknown>>(
            'SELECT max_connections, rate_limit_down_kbps, rate_limit_up_kbps FROM connections',
          )
        ).rows[0]!;
        assert.deepEqual(c, { max_connections: null, rate_limit_down_kbps: null, rate_limit_up_kbps: null });
        // a new device needs no base port
        await db.query(
          `INSERT INTO devices (id, name, vpn_ip, token_hash, psk_enc) VALUES ('dev_c0000000000', 'c', '192.168.255.4', 'h3', 'x')`,
        );
        // the database refuses out-of-range limits whatever the API lets through
        await db.query(
          `UPDATE connections SET max_connections = 100000, rate_limit_down_kbps = 1, rate_limit_up_kbps = 10000000`,
        );
        for (const set of [
          'max_connections = 0',
          'max_connections = 100001',
          'rate_limit_down_kbps = 0',
          'rate_limit_up_kbps = 10000001',
        ]) {
          await assert.rejects(db.query(`UPDATE connections SET ${set}`), /check constraint/i, set);
        }
        assert.deepEqual(await migrate(db), [], 'applied once');
      },
      t,
    );
  });
}
