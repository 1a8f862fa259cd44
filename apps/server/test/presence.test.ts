// Device presence (services/presence.ts), every source: a transition emits exactly one event row, one
// webhook delivery per subscribed webhook and one bus event; a repeat emits no row and no webhook (a
// tunnel session of a device already online still goes on the bus: its tunnel is up). A device whose
// heartbeat and tunnel session both arrive, in either order, connected once. And presence is written in
// presence.ts only.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { pairDevice, type TestSystem } from './harness.js';
import { dev, internal, perBackend } from './api.assert.js';
import { runJob } from '../src/worker/jobs.js';

const SRC = new URL('../src/', import.meta.url).pathname;

function sources(dir = SRC): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : n.endsWith('.ts') ? [p] : [];
  });
}

test('devices.status, tunnel_connected and last_seen_at are written in services/presence.ts only', () => {
  const writes = /\b(status\s*=\s*'(online|offline)'|tunnel_connected\s*=\s*(true|false)|last_seen_at\s*=)/;
  const found = new Set<string>();
  for (const f of sources()) {
    const text = readFileSync(f, 'utf8');
    // Statements that update devices (an UPDATE devices ... up to the end of its template string).
    for (const m of text.matchAll(/UPDATE devices\b[^`]*/g)) if (writes.test(m[0])) found.add(relative(SRC, f));
  }
  assert.deepEqual([...found], ['services/presence.ts']);
});

/** Presence event rows ('ev:<type>') and webhook deliveries ('hook:<event>') of one device. */
async function counts(ts: TestSystem, deviceId: string): Promise<Record<string, number>> {
  const r = await ts.db.query<{ k: string; n: number }>(
    `SELECT 'ev:' || type AS k, count(*)::int AS n FROM events
      WHERE device_id = $1 AND type IN ('device_connected', 'device_disconnected') GROUP BY type
     UNION ALL
     SELECT 'hook:' || event, count(*)::int FROM webhook_deliveries WHERE payload->>'device_id' = $1 GROUP BY event`,
    [deviceId],
  );
  return Object.fromEntries(r.rows.map((x) => [x.k, x.n]));
}

perBackend('presence', ({ ts, test }) => {
  const bus = () => {
    const seen: string[] = [];
    const off = ts().sys.ctx.bus.subscribe((e) => {
      if (e.type === 'device_connected' || e.type === 'device_disconnected')
        seen.push(`${e.type}:${String(e.data.via ?? e.data.reason)}`);
    });
    return { seen, off };
  };
  const device = async (ts: TestSystem, id: string) => (await ts.call('GET', `/api/devices/${id}`)).json;

  test('webhook subscribed to both presence events', async () => {
    await ts().db.query(
      `INSERT INTO webhooks (id, url, secret_enc, events) VALUES ('whk_presence0001', 'https://hooks.example.com/p', $1, $2)`,
      [ts().sys.ctx.box.seal('whsec_presence_test_0123456789'), ['device_connected', 'device_disconnected']],
    );
  });

  test('heartbeat: offline → online once (one event, one webhook, one bus event); a second heartbeat emits nothing', async () => {
    const d = await pairDevice(ts());
    const b = bus();
    for (let i = 0; i < 2; i++)
      assert.equal((await ts().call('POST', `/api/devices/${d.id}/heartbeat`, {}, dev(d.token))).status, 200);
    b.off();
    assert.deepEqual(b.seen, ['device_connected:heartbeat']);
    assert.deepEqual(await counts(ts(), d.id), { 'ev:device_connected': 1, 'hook:device_connected': 1 });
    const row = await device(ts(), d.id);
    assert.equal(row.status, 'online');
    assert.equal(row.tunnel_connected, false);
    assert.equal(row.last_seen_at, ts().clock.now().toISOString());
  });

  test('tunnel: a second session of an online device is no new connect (bus only); disconnected twice → one offline event', async () => {
    const d = await pairDevice(ts());
    const b = bus();
    const vpnIp = (await device(ts(), d.id)).vpn_ip;
    for (let i = 0; i < 2; i++) {
      const r = await ts().call(
        'POST',
        '/api/internal/vpn/connected',
        { device_id: d.id, vpn_ip: vpnIp, endpoint: 'tcp/198.51.100.7:5555' },
        internal(ts()),
      );
      assert.equal(r.status, 200, r.body);
    }
    const on = await device(ts(), d.id);
    assert.equal(on.status, 'online');
    assert.equal(on.tunnel_connected, true);
    assert.equal(on.tunnel_transport, 'tcp');
    for (let i = 0; i < 2; i++) {
      const r = await ts().call(
        'POST',
        '/api/internal/vpn/disconnected',
        { device_id: d.id, reason: 'dead peer' },
        internal(ts()),
      );
      assert.equal(r.status, 200, r.body);
    }
    b.off();
    assert.deepEqual(b.seen, ['device_connected:tunnel', 'device_connected:tunnel', 'device_disconnected:dead peer']);
    assert.deepEqual(await counts(ts(), d.id), {
      'ev:device_connected': 1,
      'ev:device_disconnected': 1,
      'hook:device_connected': 1,
      'hook:device_disconnected': 1,
    });
    const off = await device(ts(), d.id);
    assert.equal(off.status, 'offline');
    assert.equal(off.tunnel_connected, false);
  });

  for (const order of [
    ['heartbeat', 'tunnel'],
    ['tunnel', 'heartbeat'],
  ] as const)
    test(`one connect, one event row: ${order.join(' then ')} (issue 12: each connect appeared twice)`, async () => {
      const d = await pairDevice(ts());
      const vpnIp = (await device(ts(), d.id)).vpn_ip;
      for (const source of order) {
        const r =
          source === 'heartbeat'
            ? await ts().call('POST', `/api/devices/${d.id}/heartbeat`, {}, dev(d.token))
            : await ts().call(
                'POST',
                '/api/internal/vpn/connected',
                { device_id: d.id, vpn_ip: vpnIp, endpoint: '198.51.100.7:5555' },
                internal(ts()),
              );
        assert.equal(r.status, 200, r.body);
      }
      const ev = await ts().db.query<{ via: string }>(
        `SELECT data->>'via' AS via FROM events WHERE device_id = $1 AND type = 'device_connected' ORDER BY id`,
        [d.id],
      );
      assert.deepEqual(
        ev.rows.map((x) => x.via),
        [order[0]],
      );
      assert.deepEqual(await counts(ts(), d.id), { 'ev:device_connected': 1, 'hook:device_connected': 1 });
      const row = await device(ts(), d.id);
      assert.equal(row.status, 'online');
      assert.equal(row.tunnel_connected, true);
    });

  test('stale sweep: one offline event per silent device, none on the next sweep', async () => {
    const d = await pairDevice(ts());
    assert.equal((await ts().call('POST', `/api/devices/${d.id}/heartbeat`, {}, dev(d.token))).status, 200);
    ts().clock.advance((ts().sys.ctx.config.staleAfterS + 1) * 1000);
    const b = bus();
    const first = await runJob(ts().sys.ctx, 'staleDevices', ts().clock.now());
    const second = await runJob(ts().sys.ctx, 'staleDevices', ts().clock.now());
    b.off();
    assert.ok(first.changed >= 1);
    assert.equal(second.changed, 0);
    assert.equal(b.seen.filter((s) => s === 'device_disconnected:stale').length, first.changed);
    const c = await counts(ts(), d.id);
    assert.equal(c['ev:device_disconnected'], 1);
    assert.equal(c['hook:device_disconnected'], 1);
    const row = await device(ts(), d.id);
    assert.equal(row.status, 'offline');
    assert.equal(row.tunnel_connected, false);
  });
});
