import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDb, migrate, acquireDirLock } from '../src/index.js';

test('PGlite: rowCount counts rows returned by a SELECT and rows changed by an UPDATE', async () => {
  const db = await openDb({ dataDir: null });
  try {
    await db.query('CREATE TABLE t (x int)');
    await db.query('INSERT INTO t VALUES (1), (2)');
    assert.equal((await db.query('SELECT 1 FROM t WHERE x = 1')).rowCount, 1);
    assert.equal((await db.query('SELECT 1 FROM t WHERE x = 9')).rowCount, 0);
    assert.equal((await db.query('UPDATE t SET x = x + 10')).rowCount, 2);
  } finally {
    await db.close();
  }
});

test('the data dir lock refuses a live owner and takes over a dead one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pp-lock-'));
  try {
    const release = acquireDirLock(dir);
    writeFileSync(join(dir, 'pocketproxy.lock'), String(process.ppid)); // a live process that is not us
    assert.throws(() => acquireDirLock(dir), /PP_ERR_DB_LOCKED|in use by process/);
    writeFileSync(join(dir, 'pocketproxy.lock'), '2147483646'); // no such process
    const again = acquireDirLock(dir);
    again();
    release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('migrations apply once and are idempotent', async () => {
  const db = await openDb({ dataDir: null });
  try {
    const first = await migrate(db);
    assert.ok(first.length >= 13);
    assert.deepEqual(await migrate(db), []);
  } finally {
    await db.close();
  }
});

test('PostgreSQL: LISTEN survives the server dropping its connection', async (t) => {
  const base = process.env.PP_TEST_DATABASE_URL;
  if (!base) {
    console.error('SKIPPED: needs PP_TEST_DATABASE_URL (npm test starts a server and sets it)');
    t.skip('needs PP_TEST_DATABASE_URL');
    return;
  }
  const channel = `pp_test_${randomBytes(4).toString('hex')}`;
  const db = await openDb({ databaseUrl: base, dataDir: null });
  const got: string[] = [];
  try {
    await db.listen(channel, (p) => got.push(p));
    const admin = new pg.Client({ connectionString: base });
    await admin.connect();
    const killed = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1`, [
      `LISTEN "${channel}"`,
    ]);
    await admin.end();
    assert.equal(killed.rowCount, 1, 'the listener connection was found and terminated');
    const deadline = Date.now() + 10_000;
    while (!got.includes('after') && Date.now() < deadline) {
      await db.notify(channel, 'after');
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.ok(got.includes('after'), 'a notification arrives after the reconnect');
  } finally {
    await db.close();
  }
});

test('sessions run in UTC on both backends (calendar months of limits and usage are UTC months)', async (t) => {
  const lite = await openDb({ dataDir: null });
  try {
    assert.equal((await lite.query<{ tz: string }>("SELECT current_setting('TimeZone') AS tz")).rows[0]!.tz, 'UTC');
  } finally {
    await lite.close();
  }
  const base = process.env.PP_TEST_DATABASE_URL;
  if (!base) {
    console.error('SKIPPED (PostgreSQL half): needs PP_TEST_DATABASE_URL (npm test starts a server and sets it)');
    t.skip('needs PP_TEST_DATABASE_URL');
    return;
  }
  // A server whose own default is another zone: our sessions still use UTC.
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  const dbName = `pp_tz_${randomBytes(4).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.query(`ALTER DATABASE ${dbName} SET TimeZone = 'Pacific/Auckland'`);
  const url = new URL(base);
  url.pathname = `/${dbName}`;
  const db = await openDb({ databaseUrl: url.toString(), dataDir: null });
  try {
    assert.equal((await db.query<{ tz: string }>("SELECT current_setting('TimeZone') AS tz")).rows[0]!.tz, 'UTC');
    assert.equal(
      (await db.queryRelaxed<{ tz: string }>("SELECT current_setting('TimeZone') AS tz")).rows[0]!.tz,
      'UTC',
    );
    const m = (await db.query<{ m: Date }>("SELECT date_trunc('month', '2026-11-30T23:30:00Z'::timestamptz) AS m"))
      .rows[0]!.m;
    assert.equal(m.toISOString(), '2026-11-01T00:00:00.000Z');
  } finally {
    await db.close();
    await admin.query(`DROP DATABASE ${dbName}`);
    await admin.end();
  }
});
