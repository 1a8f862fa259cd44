// Several API instances on one PostgreSQL: an event published by one reaches the WebSocket hub of the
// other through LISTEN/NOTIFY, and an instance does not deliver its own events twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../src/config.js';
import { buildSystem } from '../src/system.js';
import { freshPostgres } from './harness.js';

test('events fan out across API instances sharing PostgreSQL', async (t) => {
  const pgdb = await freshPostgres();
  if (!pgdb) {
    console.error('SKIPPED: needs PP_TEST_DATABASE_URL (npm test starts a server and sets it)');
    t.skip('needs PP_TEST_DATABASE_URL');
    return;
  }
  const dirs = [mkdtempSync(join(tmpdir(), 'pp-fan-a-')), mkdtempSync(join(tmpdir(), 'pp-fan-b-'))];
  const env = (dir: string) => ({
    DATABASE_URL: pgdb.url,
    POCKETPROXY_DATA_DIR: dir,
    POCKETPROXY_LOG_LEVEL: 'silent',
    POCKETPROXY_SECRET_KEY: Buffer.alloc(32, 7).toString('base64'),
    POCKETPROXY_INTERNAL_TOKEN: 'x'.repeat(32),
  });
  const a = await buildSystem(loadConfig(env(dirs[0]!)), { log: pino({ level: 'silent' }) });
  const b = await buildSystem(loadConfig(env(dirs[1]!)), { log: pino({ level: 'silent' }) });
  try {
    const atB: string[] = [];
    const atA: string[] = [];
    b.ctx.bus.subscribe((e) => atB.push(`${e.type}:${String(e.data.n)}`));
    a.ctx.bus.subscribe((e) => atA.push(`${e.type}:${String(e.data.n)}`));
    for (let n = 0; n < 50; n++) a.ctx.bus.publish('heartbeat', { n });
    const deadline = Date.now() + 5000;
    while (atB.length < 50 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(atB.length, 50, 'instance B received every event of A');
    assert.deepEqual(atB.slice(0, 3), ['heartbeat:0', 'heartbeat:1', 'heartbeat:2']);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(atA.length, 50, 'instance A delivered its own events once, not again from NOTIFY');
  } finally {
    await a.close();
    await b.close();
    await pgdb.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
});
