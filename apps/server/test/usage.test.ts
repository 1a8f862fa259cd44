// Usage and limits (services/usage.ts): one upsert of usage_hourly serves both sources (the device's
// heartbeat by connection id, the relay's report by port), counts add up per connection, source and hour,
// roll-ups and limits read the device's count only, and no other file writes usage_hourly or blocks.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import type { Queryable } from '@pocketproxy/db';
import { pairDevice } from './harness.js';
import { dev, internal, perBackend } from './api.assert.js';
import { addUsage, hourOf } from '../src/services/usage.js';

const SRC = new URL('../src/', import.meta.url).pathname;
function sources(dir = SRC): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : n.endsWith('.ts') ? [p] : [];
  });
}
const filesMatching = (re: RegExp) =>
  sources()
    .filter((f) => re.test(readFileSync(f, 'utf8')))
    .map((f) => relative(SRC, f));

test('usage_hourly is written by one statement, blocks are set in one place: services/usage.ts', () => {
  assert.deepEqual(filesMatching(/INSERT INTO usage_hourly/), ['services/usage.ts']);
  const inserts = readFileSync(join(SRC, 'services/usage.ts'), 'utf8').match(/INSERT INTO usage_hourly/g);
  assert.equal(inserts?.length, 1);
  assert.deepEqual(filesMatching(/blocked_reason = '(bandwidth|expired)'/), ['services/usage.ts']);
  assert.deepEqual(filesMatching(/blocked_reason = NULL, updated_at = \$1 WHERE blocked_reason = 'bandwidth'/), [
    'services/usage.ts',
  ]);
});

test('both sources go through the same statement (only the connection match differs)', async () => {
  const seen: string[] = [];
  const q = {
    query: async (sql: string) => {
      seen.push(sql);
      return { rows: [], rowCount: 0 };
    },
  } as unknown as Queryable;
  await addUsage(q, 'agent', new Date(), [{ connection_id: 'con_x', bytes_in: 1, bytes_out: 1 }], 'dev_x');
  await addUsage(q, 'nft', new Date(), [{ port: 40000, bytes_in: 1, bytes_out: 1 }]);
  assert.equal(seen.length, 2);
  const norm = (s: string) => s.replace(/JOIN connections c ON .*\n/, 'JOIN connections c ON <match>\n');
  assert.equal(norm(seen[0]!), norm(seen[1]!));
});

perBackend('usage', ({ ts, test }) => {
  test('heartbeat (by connection, own device only) and relay report (by port) add up per source and hour', async () => {
    const d = await pairDevice(ts());
    const other = await pairDevice(ts());
    const mk = async (deviceId: string, extra: Record<string, unknown> = {}) => {
      const r = await ts().call('POST', '/api/connections', { device_id: deviceId, protocol: 'http', ...extra });
      assert.equal(r.status, 201, r.body);
      return r.json as { id: string; port: number };
    };
    const a = await mk(d.id);
    const foreign = await mk(other.id);
    const hb = (usage: unknown[]) =>
      ts()
        .call('POST', `/api/devices/${d.id}/heartbeat`, { usage }, dev(d.token))
        .then((r) => {
          assert.equal(r.status, 200, r.body);
        });
    await hb([
      { connection_id: a.id, bytes_in: 100, bytes_out: 10 },
      { connection_id: foreign.id, bytes_in: 5000, bytes_out: 5000 }, // not this device's: dropped
    ]);
    await hb([{ connection_id: a.id, bytes_in: 1, bytes_out: 2 }]);
    const rep = await ts().call(
      'POST',
      '/api/internal/usage',
      { samples: [{ port: a.port, bytes_in: 7, bytes_out: 3 }] },
      internal(ts()),
    );
    assert.deepEqual(rep.json, { recorded: 1 });
    const rows = await ts().db.query<{
      connection_id: string;
      source: string;
      hour: Date;
      b_in: number;
      b_out: number;
    }>(
      `SELECT connection_id, source, hour, bytes_in::int AS b_in, bytes_out::int AS b_out FROM usage_hourly
        WHERE connection_id = ANY($1::text[]) ORDER BY source`,
      [[a.id, foreign.id]],
    );
    const hour = hourOf(ts().clock.now()).toISOString();
    assert.deepEqual(
      rows.rows.map((r) => [r.connection_id, r.source, new Date(r.hour).toISOString(), r.b_in, r.b_out]),
      [
        [a.id, 'agent', hour, 101, 12],
        [a.id, 'nft', hour, 7, 3],
      ],
    );
    const c = (await ts().call('GET', `/api/connections/${a.id}`)).json;
    assert.equal(c.bytes_used_month, 113, "the device's count");
    assert.equal(c.bytes_relay_month, 10, "the relay's count");
    ts().clock.advance(3_600_000);
    await hb([{ connection_id: a.id, bytes_in: 1, bytes_out: 0 }]);
    const n = await ts().db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM usage_hourly WHERE connection_id = $1 AND source = 'agent'`,
      [a.id],
    );
    assert.equal(n.rows[0]!.n, 2, 'a new hour, a new row');
  });

  test("the relay's count never blocks; the device's count blocks in the heartbeat that reaches the limit", async () => {
    const d = await pairDevice(ts());
    const r = await ts().call('POST', '/api/connections', {
      device_id: d.id,
      protocol: 'socks5',
      bandwidth_limit_bytes: 1000,
    });
    const con = r.json as { id: string; port: number };
    await ts().call(
      'POST',
      '/api/internal/usage',
      { samples: [{ port: con.port, bytes_in: 5000, bytes_out: 5000 }] },
      internal(ts()),
    );
    assert.equal((await ts().call('GET', `/api/connections/${con.id}`)).json.blocked_reason, null);
    const before = (await ts().call('POST', `/api/devices/${d.id}/heartbeat`, {}, dev(d.token))).json
      .credentials_version;
    const hb = await ts().call(
      'POST',
      `/api/devices/${d.id}/heartbeat`,
      { usage: [{ connection_id: con.id, bytes_in: 600, bytes_out: 400 }] },
      dev(d.token),
    );
    assert.notEqual(hb.json.credentials_version, before, 'the answer carries the blocked state');
    assert.equal((await ts().call('GET', `/api/connections/${con.id}`)).json.blocked_reason, 'bandwidth');
  });
});
