// The worker's jobs driven by the FakeClock: stale devices, command and connection expiry, bandwidth
// blocks, auto-rotation, retention, webhook delivery (signature, back-off, give-up), and two workers
// on one PostgreSQL processing each stale device exactly once.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { openDb } from '@pocketproxy/db';
import { pairDevice, type TestSystem } from './harness.js';
import { dev, perBackend } from './api.assert.js';
import { createWorker } from '../src/worker/worker.js';
import { deliverWebhooks, MAX_ATTEMPTS, backoffS, type Poster } from '../src/worker/webhooks.js';
import type { Ctx } from '../src/context.js';

interface Posted {
  url: string;
  body: string;
  headers: Record<string, string>;
}
function recorder(status = (_url: string) => 200): { post: Poster; posted: Posted[] } {
  const posted: Posted[] = [];
  return {
    posted,
    post: async (url, body, headers) => {
      posted.push({ url, body, headers });
      return status(url);
    },
  };
}

async function addWebhook(
  ts: TestSystem,
  url: string,
  events: string[],
  secret = 'whsec_test_secret_0123456789',
): Promise<string> {
  const id = `whk_${Math.random().toString(36).slice(2, 14).padEnd(12, '0')}`;
  await ts.db.query('INSERT INTO webhooks (id, url, secret_enc, events) VALUES ($1, $2, $3, $4)', [
    id,
    url,
    ts.sys.ctx.box.seal(secret),
    events,
  ]);
  return id;
}

const online = async (ts: TestSystem, d: { id: string; token: string }) =>
  assert.equal((await ts.call('POST', `/api/devices/${d.id}/heartbeat`, {}, dev(d.token))).status, 200);

perBackend(
  'worker',
  ({ ts, test, backend }) => {
    test('a silent device goes offline with a device_disconnected event and a webhook delivery', async () => {
      const hook = await addWebhook(ts(), 'https://hooks.example.com/stale', ['device_disconnected']);
      const w = createWorker(ts().sys.ctx, { post: recorder().post });
      const quiet = await pairDevice(ts());
      const chatty = await pairDevice(ts());
      await online(ts(), quiet);
      await online(ts(), chatty);
      const stale = ts().sys.ctx.config.staleAfterS;
      ts().clock.advance((stale - 1) * 1000);
      await w.tick();
      assert.equal((await ts().call('GET', `/api/devices/${quiet.id}`)).json.status, 'online', 'not stale yet');
      await online(ts(), chatty);
      ts().clock.advance(2000);
      const events: string[] = [];
      const unsub = ts().sys.ctx.bus.subscribe(
        (e) => e.type === 'device_disconnected' && events.push(String(e.data.device_id)),
      );
      const res = await w.tick();
      unsub();
      assert.ok(res.find((r) => r.job === 'staleDevices')!.changed >= 1);
      assert.equal((await ts().call('GET', `/api/devices/${quiet.id}`)).json.status, 'offline');
      assert.equal((await ts().call('GET', `/api/devices/${chatty.id}`)).json.status, 'online');
      assert.deepEqual(events, [quiet.id]);
      const ev = await ts().db.query<{ data: { reason: string } }>(
        `SELECT data FROM events WHERE type = 'device_disconnected' AND device_id = $1`,
        [quiet.id],
      );
      assert.equal(ev.rows.length, 1);
      assert.equal(ev.rows[0]!.data.reason, 'stale');
      const del = await ts().db.query<{ payload: { device_id: string; type: string } }>(
        'SELECT payload FROM webhook_deliveries WHERE webhook_id = $1',
        [hook],
      );
      assert.deepEqual(
        del.rows.map((r) => [r.payload.type, r.payload.device_id]),
        [['device_disconnected', quiet.id]],
      );
      // a second tick changes nothing more
      await w.tick();
      assert.equal(
        (await ts().db.query(`SELECT 1 FROM events WHERE type = 'device_disconnected' AND device_id = $1`, [quiet.id]))
          .rows.length,
        1,
      );
      await ts().db.query('DELETE FROM webhooks WHERE id = $1', [hook]);
    });

    test('open commands past their expiry end as expired; finished ones stay', async () => {
      const w = createWorker(ts().sys.ctx, { post: recorder().post });
      const d = await pairDevice(ts());
      const open = (await ts().call('POST', `/api/devices/${d.id}/commands`, { type: 'reboot', ttl_s: 10 })).json;
      const done = (await ts().call('POST', `/api/devices/${d.id}/commands`, { type: 'wifi_toggle', ttl_s: 10 })).json;
      const later = (await ts().call('POST', `/api/devices/${d.id}/commands`, { type: 'airplane_mode', ttl_s: 600 }))
        .json;
      await ts().call('POST', `/api/devices/${d.id}/commands/${done.id}/result`, { status: 'succeeded' }, dev(d.token));
      ts().clock.advance(11_000);
      await w.tick();
      const st = Object.fromEntries(
        (await ts().call('GET', `/api/devices/${d.id}/commands`)).json.items.map(
          (c: { id: string; status: string }) => [c.id, c.status],
        ),
      );
      assert.deepEqual(st, { [open.id]: 'expired', [done.id]: 'succeeded', [later.id]: 'pending' });
      // an expired command is not delivered and cannot be completed any more
      const hb = await ts().call('POST', `/api/devices/${d.id}/heartbeat`, {}, dev(d.token));
      assert.deepEqual(
        hb.json.commands.map((c: { id: string }) => c.id),
        [later.id],
      );
      assert.equal(
        (
          await ts().call(
            'POST',
            `/api/devices/${d.id}/commands/${open.id}/result`,
            { status: 'succeeded' },
            dev(d.token),
          )
        ).status,
        409,
      );
    });

    test("connection expiry and bandwidth limit (the device's count only) set blocked_reason, sync the relay; raising the limit lifts it", async () => {
      const w = createWorker(ts().sys.ctx, { post: recorder().post });
      const d = await pairDevice(ts());
      const exp = (
        await ts().call('POST', '/api/connections', {
          device_id: d.id,
          protocol: 'http',
          expires_at: new Date(ts().clock.now().getTime() + 60_000).toISOString(),
        })
      ).json;
      const lim = (
        await ts().call('POST', '/api/connections', {
          device_id: d.id,
          protocol: 'http',
          bandwidth_limit_bytes: 10_000,
        })
      ).json;
      // Usage the device reported (recorded here straight in SQL, as a heartbeat that did not block would
      // leave it) and the relay's port counters, which limits ignore.
      const hour = new Date(Math.floor(ts().clock.now().getTime() / 3_600_000) * 3_600_000);
      const agentUsage = (bytesIn: number) =>
        ts().db.query(
          `INSERT INTO usage_hourly (connection_id, device_id, hour, source, bytes_in, bytes_out) VALUES ($1, $2, $3, 'agent', $4, 0)
           ON CONFLICT (connection_id, source, hour) DO UPDATE SET bytes_in = usage_hourly.bytes_in + excluded.bytes_in`,
          [lim.id, d.id, hour, bytesIn],
        );
      await agentUsage(9000);
      await ts().call(
        'POST',
        '/api/internal/usage',
        { samples: [{ port: lim.port, bytes_in: 50_000, bytes_out: 50_000 }] },
        { authorization: `Bearer ${ts().sys.ctx.internalToken}` },
      );
      ts().push.takeSynced();
      await w.tick();
      const blocked = async (id: string) =>
        (
          await ts().db.query<{ blocked_reason: string | null }>(
            'SELECT blocked_reason FROM connections WHERE id = $1',
            [id],
          )
        ).rows[0]!.blocked_reason;
      assert.equal(await blocked(exp.id), null);
      assert.equal(
        await blocked(lim.id),
        null,
        '9000 of 10000 bytes by the device (the relay counted 100,000): still open',
      );
      assert.deepEqual(ts().push.takeSynced(), [], 'nothing changed, nothing synced');
      await agentUsage(1000);
      ts().clock.advance(61_000);
      const events: unknown[] = [];
      const unsub = ts().sys.ctx.bus.subscribe((e) => e.type === 'connection_updated' && events.push(e.data));
      await w.tick();
      unsub();
      assert.equal(await blocked(exp.id), 'expired');
      assert.equal(await blocked(lim.id), 'bandwidth');
      assert.deepEqual(ts().push.takeSynced(), [d.id], "the device's relay is told once");
      // One per blocked connection, then one per connection the relay confirmed (live state moved).
      assert.equal(events.filter((e) => !(e as { live?: boolean }).live).length, 2);
      assert.equal(events.filter((e) => (e as { live?: boolean }).live).length, 2);
      // blocked connections stay in the device's credentials with their state (the device refuses them
      // with the reason); the relay's forwarding marks them not usable
      const items = (await ts().call('GET', `/api/devices/${d.id}/credentials`, undefined, dev(d.token))).json
        .items as { connection_id: string; state: string }[];
      assert.deepEqual(Object.fromEntries(items.map((c) => [c.connection_id, c.state])), {
        [exp.id]: 'expired',
        [lim.id]: 'bandwidth',
      });
      const fw = (
        await ts().call('GET', `/api/internal/devices/${d.id}/forwarding`, undefined, {
          authorization: `Bearer ${ts().sys.ctx.internalToken}`,
        })
      ).json.connections;
      assert.ok(fw.every((c: { enabled: boolean }) => !c.enabled));
      assert.equal((await ts().call('GET', '/api/overview')).status, 200);
      await ts().call('PATCH', `/api/connections/${lim.id}`, { bandwidth_limit_bytes: 1_000_000 });
      await w.tick();
      assert.equal(await blocked(lim.id), null, 'raised limit lifts the block');
      // lowering it again below usage re-blocks, at once (the PATCH checks), not at the next tick
      await ts().call('PATCH', `/api/connections/${lim.id}`, { bandwidth_limit_bytes: 100 });
      assert.equal(await blocked(lim.id), 'bandwidth');
      // a relay that is down does not fail the tick
      ts().push.syncAnswer = new Error('ECONNREFUSED');
      try {
        assert.equal(
          (await ts().call('PATCH', `/api/connections/${lim.id}`, { bandwidth_limit_bytes: 1_000_000 })).status,
          200,
          'the API call does not fail with the relay',
        );
        await agentUsage(5_000_000);
        const res = await w.tick();
        assert.equal(res.find((r) => r.job === 'blockConnections')!.changed, 1);
        assert.equal(await blocked(lim.id), 'bandwidth');
      } finally {
        ts().push.syncAnswer = true;
      }
    });

    test('auto-rotation queues rotate_ip on schedule, never stacking two', async () => {
      const w = createWorker(ts().sys.ctx, { post: recorder().post });
      const d = await pairDevice(ts());
      await ts().call('PATCH', `/api/devices/${d.id}`, { rotation_interval_s: 120 });
      ts().clock.advance(60_000);
      await w.tick();
      const cmds = async () =>
        (await ts().call('GET', `/api/devices/${d.id}/commands`)).json.items as {
          id: string;
          type: string;
          source: string;
          status: string;
        }[];
      assert.equal((await cmds()).length, 0);
      ts().clock.advance(61_000);
      await w.tick();
      const first = await cmds();
      assert.deepEqual(
        first.map((c) => [c.type, c.source, c.status]),
        [['rotate_ip', 'schedule', 'pending']],
      );
      const next = (await ts().call('GET', `/api/devices/${d.id}`)).json.next_rotation_at;
      assert.equal(Date.parse(next), ts().clock.now().getTime() + 120_000);
      await w.tick();
      assert.equal((await cmds()).length, 1);
      // a rotation still open (here one queued by the API with a long ttl) is not stacked on
      await ts().call(
        'POST',
        `/api/devices/${d.id}/commands/${first[0]!.id}/result`,
        { status: 'succeeded' },
        dev(d.token),
      );
      ts().clock.advance(1000);
      const manual = (await ts().call('POST', `/api/devices/${d.id}/commands`, { type: 'rotate_ip', ttl_s: 86400 }))
        .json;
      ts().clock.advance(120_000);
      await w.tick();
      assert.equal((await cmds()).length, 2);
      await ts().call(
        'POST',
        `/api/devices/${d.id}/commands/${manual.id}/result`,
        { status: 'succeeded' },
        dev(d.token),
      );
      ts().clock.advance(121_000);
      await w.tick();
      const all = await cmds();
      assert.deepEqual(
        all.map((c) => [c.source, c.status]),
        [
          ['schedule', 'pending'],
          ['api', 'succeeded'],
          ['schedule', 'succeeded'],
        ],
      );
      // a scheduled rotation lives at most one interval (capped at 10 min), so it never outlives the next one
      assert.equal(
        (await ts().call('PATCH', `/api/devices/${d.id}`, { rotation_interval_s: null })).json.next_rotation_at,
        null,
      );
    });

    test('retention keeps the newest POCKETPROXY_IP_HISTORY_KEEP addresses per device', async () => {
      const keep = ts().sys.ctx.config.ipHistoryKeep;
      assert.equal(keep, 50);
      const w = createWorker(ts().sys.ctx, { post: recorder().post });
      const d = await pairDevice(ts());
      const o = await pairDevice(ts());
      for (let i = 0; i < keep + 15; i++) {
        await ts().db.query(
          'INSERT INTO ip_history (device_id, old_ip, new_ip, reason, changed_at) VALUES ($1, NULL, $2, $3, $4)',
          [d.id, `198.18.20.${i}`, 'observed', ts().clock.now()],
        );
      }
      await ts().db.query('INSERT INTO ip_history (device_id, new_ip, changed_at) VALUES ($1, $2, $3)', [
        o.id,
        '198.18.21.1',
        ts().clock.now(),
      ]);
      await w.tick();
      const left = (
        await ts().db.query<{ new_ip: string }>('SELECT new_ip FROM ip_history WHERE device_id = $1 ORDER BY id', [
          d.id,
        ])
      ).rows.map((r) => r.new_ip);
      assert.equal(left.length, keep);
      assert.equal(left[0], '198.18.20.15');
      assert.equal(left.at(-1), `198.18.20.${keep + 14}`);
      assert.equal((await ts().db.query('SELECT 1 FROM ip_history WHERE device_id = $1', [o.id])).rows.length, 1);
    });

    test('webhooks: signed with HMAC-SHA256 over "timestamp.body"; failures retried with back-off; given up after 10', async () => {
      const secret = 'whsec_signing_secret_for_tests';
      const good = await addWebhook(ts(), 'https://good.example.com/h', ['ip_changed'], secret);
      const bad = await addWebhook(ts(), 'https://bad.example.com/h', ['ip_changed'], secret);
      const { post, posted } = recorder((url) => (url.includes('bad') ? 503 : 204));
      const d = await pairDevice(ts());
      await ts().call('POST', `/api/devices/${d.id}/heartbeat`, { public_ip: '198.18.30.1' }, dev(d.token));
      const ctx = ts().sys.ctx;
      const r1 = await deliverWebhooks(ctx, ctx.clock.now(), post);
      assert.deepEqual(r1, { delivered: 1, failed: 1 });
      const ok = posted.find((p) => p.url.includes('good'))!;
      const tsHeader = ok.headers['x-pocketproxy-timestamp']!;
      assert.equal(tsHeader, String(Math.floor(ctx.clock.now().getTime() / 1000)));
      assert.equal(ok.headers['x-pocketproxy-event'], 'ip_changed');
      assert.equal(
        ok.headers['x-pocketproxy-signature'],
        `sha256=${createHmac('sha256', secret).update(`${tsHeader}.${ok.body}`).digest('hex')}`,
      );
      const payload = JSON.parse(ok.body);
      assert.equal(payload.type, 'ip_changed');
      assert.equal(payload.device_id, d.id);
      assert.equal(payload.data.new_ip, '198.18.30.1');
      const row = async () =>
        (
          await ts().db.query<{ status: string; attempts: number; next_attempt_at: Date; last_error: string | null }>(
            'SELECT status, attempts, next_attempt_at, last_error FROM webhook_deliveries WHERE webhook_id = $1',
            [bad],
          )
        ).rows[0]!;
      const goodRow = (
        await ts().db.query<{ status: string; attempts: number }>(
          'SELECT status, attempts FROM webhook_deliveries WHERE webhook_id = $1',
          [good],
        )
      ).rows[0]!;
      assert.deepEqual([goodRow.status, goodRow.attempts], ['delivered', 1]);
      let r = await row();
      assert.deepEqual([r.status, r.attempts, r.last_error], ['pending', 1, 'HTTP 503']);
      assert.equal(new Date(r.next_attempt_at).getTime(), ctx.clock.now().getTime() + backoffS(1) * 1000);
      // not before the back-off has passed
      posted.length = 0;
      assert.deepEqual(await deliverWebhooks(ctx, ctx.clock.now(), post), { delivered: 0, failed: 0 });
      assert.equal(posted.length, 0);
      for (let attempt = 2; attempt <= MAX_ATTEMPTS; attempt++) {
        ts().clock.advance(backoffS(attempt - 1) * 1000); // 2^n seconds
        assert.deepEqual(
          await deliverWebhooks(ctx, ctx.clock.now(), post),
          { delivered: 0, failed: 1 },
          `attempt ${attempt}`,
        );
        r = await row();
        assert.equal(r.attempts, attempt);
      }
      assert.equal(r.status, 'failed', 'given up after 10 attempts');
      ts().clock.advance(3_600_000);
      posted.length = 0;
      await deliverWebhooks(ctx, ctx.clock.now(), post);
      assert.equal(posted.length, 0);
      // a thrown error (DNS, timeout) counts as a failure too
      const thrower: Poster = async () => {
        throw new Error('getaddrinfo ENOTFOUND bad.example.com');
      };
      await ts().call('POST', `/api/devices/${d.id}/heartbeat`, { public_ip: '198.18.30.2' }, dev(d.token));
      assert.deepEqual(await deliverWebhooks(ctx, ctx.clock.now(), thrower), { delivered: 0, failed: 2 });
      await ts().db.query('DELETE FROM webhooks WHERE id = ANY($1::text[])', [[good, bad]]);
    });

    if (backend === 'postgres') {
      test('two workers on one PostgreSQL process each stale device exactly once', async () => {
        const ctx = ts().sys.ctx;
        const other = await openDb({ databaseUrl: ctx.config.databaseUrl, dataDir: null });
        try {
          const ctx2: Ctx = { ...ctx, db: other };
          const devs = [];
          for (let i = 0; i < 12; i++) devs.push(await pairDevice(ts()));
          // online, then silent
          await ts().db.query(`UPDATE devices SET status = 'online', last_seen_at = $2 WHERE id = ANY($1::text[])`, [
            devs.map((d) => d.id),
            ctx.clock.now(),
          ]);
          const wasOnline = (
            await ts().db.query<{ n: number }>(`SELECT count(*)::int AS n FROM devices WHERE status = 'online'`)
          ).rows[0]!.n;
          ts().clock.advance((ctx.config.staleAfterS + 5) * 1000);
          const workers = [
            createWorker(ctx, { post: recorder().post }),
            createWorker(ctx2, { post: recorder().post }),
            createWorker(ctx, { post: recorder().post }),
            createWorker(ctx2, { post: recorder().post }),
          ];
          const results = await Promise.all(workers.map((w) => w.tick()));
          const changed = results
            .map((r) => r.find((x) => x.job === 'staleDevices')!.changed)
            .reduce((a, b) => a + b, 0);
          assert.equal(changed, wasOnline);
          const ev = await ts().db.query<{ device_id: string; n: number }>(
            `SELECT device_id, count(*)::int AS n FROM events WHERE type = 'device_disconnected' AND device_id = ANY($1::text[]) GROUP BY device_id`,
            [devs.map((d) => d.id)],
          );
          assert.equal(ev.rows.length, devs.length);
          assert.ok(
            ev.rows.every((r) => r.n === 1),
            JSON.stringify(ev.rows),
          );
        } finally {
          await other.close();
        }
      });
    }

    test('bandwidth blocks lift at the start of a new month, and the relay is told', async () => {
      const w = createWorker(ts().sys.ctx, { post: recorder().post });
      const d = await pairDevice(ts());
      const c = (
        await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http', bandwidth_limit_bytes: 10 })
      ).json;
      await ts().call(
        'POST',
        `/api/devices/${d.id}/heartbeat`,
        { usage: [{ connection_id: c.id, bytes_in: 100, bytes_out: 0 }] },
        dev(d.token),
      );
      const blocked = async () =>
        (
          await ts().db.query<{ blocked_reason: string | null }>(
            'SELECT blocked_reason FROM connections WHERE id = $1',
            [c.id],
          )
        ).rows[0]!.blocked_reason;
      assert.equal(await blocked(), 'bandwidth', 'blocked by the heartbeat that reported it');
      await w.tick();
      assert.equal(await blocked(), 'bandwidth');
      ts().push.takeSynced();
      ts().clock.advance(40 * 86400_000); // no API calls after this: the admin JWT has expired
      await w.tick();
      assert.equal(await blocked(), null);
      const synced = ts().push.takeSynced();
      assert.ok(synced.includes(d.id), 'its relay is told');
      assert.equal(new Set(synced).size, synced.length, 'each device once');
    });
  },
  { POCKETPROXY_PAIRING_RATE: '10000', POCKETPROXY_IP_HISTORY_KEEP: '50' },
);
