// Fleet tools (issue 12): POST /api/connections/bulk (enable / disable / delete in one transaction, an
// unknown id changing nothing; rotate once per device), GET /api/devices/stats (traffic, uptime from
// known online/offline transitions, rotation success rate from known command outcomes) and GET /api/usage.
import assert from 'node:assert/strict';
import { pairDevice, snapshot, type TestSystem } from './harness.js';
import { assertProblem, dev, freshToken, internal, perBackend, UNKNOWN } from './api.assert.js';

const HOUR = 3_600_000;

async function connection(ts: TestSystem, deviceId: string) {
  const c = await ts.call('POST', '/api/connections', { device_id: deviceId, protocol: 'http' });
  assert.equal(c.status, 201, c.body);
  return c.json as { id: string; port: number; enabled: boolean };
}

const credentialState = async (ts: TestSystem, d: { id: string; token: string }) =>
  new Map(
    (await ts.call('GET', `/api/devices/${d.id}/credentials`, undefined, dev(d.token))).json.items.map(
      (i: { connection_id: string; state: string }) => [i.connection_id, i.state],
    ),
  );

perBackend('fleet tools', ({ ts, test }) => {
  test('bulk disable / enable: every connection in one call, the device told once, live events per connection', async () => {
    const d = await pairDevice(ts());
    const [a, b, c] = [await connection(ts(), d.id), await connection(ts(), d.id), await connection(ts(), d.id)];
    ts().push.takeSynced();
    const events: string[] = [];
    const off = ts().sys.ctx.bus.subscribe((e) => {
      if (e.type === 'connection_updated') events.push(String(e.data.id));
    });
    const res = await ts().call('POST', '/api/connections/bulk', { ids: [a.id, b.id, a.id], action: 'disable' });
    off();
    assert.equal(res.status, 200, res.body);
    assert.equal(res.json.action, 'disable');
    assert.equal(res.json.count, 2);
    assert.deepEqual(
      res.json.items.map((x: { id: string; enabled: boolean }) => [x.id, x.enabled]),
      [
        [a.id, false],
        [b.id, false],
      ],
    );
    assert.deepEqual(res.json.deleted, []);
    assert.deepEqual(res.json.rotations, []);
    assert.deepEqual(events.sort(), [a.id, b.id].sort());
    assert.deepEqual(ts().push.takeSynced(), [d.id], 'one sync for the device of both');
    const states = await credentialState(ts(), d);
    assert.equal(states.get(a.id), 'disabled');
    assert.equal(states.get(b.id), 'disabled');
    assert.equal(states.get(c.id), 'active');
    const audit = await ts().db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_log WHERE action = 'connection.update' AND target_id = ANY($1::text[])`,
      [[a.id, b.id]],
    );
    assert.equal(audit.rows[0]!.n, 2);

    const back = await ts().call('POST', '/api/connections/bulk', { ids: [a.id, b.id], action: 'enable' });
    assert.equal(back.status, 200, back.body);
    assert.deepEqual(
      back.json.items.map((x: { enabled: boolean }) => x.enabled),
      [true, true],
    );
    assert.equal((await credentialState(ts(), d)).get(a.id), 'active');
  });

  test('an unknown or malformed id: 400 naming it, and nothing changes', async () => {
    const d = await pairDevice(ts());
    const a = await connection(ts(), d.id);
    const b = await connection(ts(), d.id);
    for (const action of ['disable', 'delete', 'rotate']) {
      const before = await snapshot(ts().db);
      const res = await ts().call('POST', '/api/connections/bulk', { ids: [a.id, UNKNOWN.con, b.id], action });
      assertProblem(res, 400, 'PP_ERR_API_VALIDATION');
      assert.deepEqual(res.json.errors, [{ path: 'ids.1', message: `no connection ${UNKNOWN.con}` }]);
      assert.equal(await snapshot(ts().db), before, `${action}: nothing changed`);
    }
    const before = await snapshot(ts().db);
    for (const body of [
      { ids: [a.id, 'con_x'], action: 'disable' },
      { ids: [], action: 'disable' },
      { ids: [a.id], action: 'explode' },
      { ids: [a.id], action: 'disable', extra: 1 },
      { ids: Array.from({ length: 1001 }, () => a.id), action: 'disable' },
    ]) {
      const res = await ts().call('POST', '/api/connections/bulk', body);
      assertProblem(res, 400, 'PP_ERR_API_VALIDATION');
      assert.ok(res.json.errors?.length, res.body);
    }
    assert.equal(await snapshot(ts().db), before);
    assert.equal(
      (await ts().call('POST', '/api/connections/bulk', { ids: [a.id], action: 'disable' }, { authorization: '' }))
        .status,
      401,
    );
  });

  test('bulk delete: all gone with their ports freed, one sync per device', async () => {
    const d1 = await pairDevice(ts());
    const d2 = await pairDevice(ts());
    const a = await connection(ts(), d1.id);
    const b = await connection(ts(), d2.id);
    const keep = await connection(ts(), d2.id);
    ts().push.takeSynced();
    const res = await ts().call('POST', '/api/connections/bulk', { ids: [a.id, b.id], action: 'delete' });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(res.json.deleted, [a.id, b.id]);
    assert.deepEqual(res.json.items, []);
    assert.equal((await ts().call('GET', `/api/connections/${a.id}`)).status, 404);
    assert.equal((await ts().call('GET', `/api/connections/${b.id}`)).status, 404);
    assert.equal((await ts().call('GET', `/api/connections/${keep.id}`)).status, 200);
    const ports = await ts().db.query('SELECT 1 FROM ports WHERE owner_id = ANY($1::text[])', [[a.id, b.id]]);
    assert.equal(ports.rows.length, 0);
    assert.deepEqual(ts().push.takeSynced().sort(), [d1.id, d2.id].sort());
  });

  test('bulk rotate: one rotation per device of the connections, joined when one is running', async () => {
    const d1 = await pairDevice(ts());
    const d2 = await pairDevice(ts());
    const a = await connection(ts(), d1.id);
    const a2 = await connection(ts(), d1.id);
    const b = await connection(ts(), d2.id);
    const res = await ts().call('POST', '/api/connections/bulk', { ids: [a.id, a2.id, b.id], action: 'rotate' });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.json.count, 3);
    assert.deepEqual(
      res.json.rotations.map((r: { device_id: string; outcome: string }) => [r.device_id, r.outcome]),
      [
        [d1.id, 'queued'],
        [d2.id, 'queued'],
      ],
    );
    const cmds = await ts().db.query<{ device_id: string; source: string }>(
      `SELECT device_id, source FROM commands WHERE type = 'rotate_ip' AND device_id = ANY($1::text[])`,
      [[d1.id, d2.id]],
    );
    assert.equal(cmds.rows.length, 2);
    assert.ok(cmds.rows.every((c) => c.source === 'bulk'));
    const again = await ts().call('POST', '/api/connections/bulk', { ids: [b.id], action: 'rotate' });
    assert.equal(again.json.rotations[0].outcome, 'joined');
  });

  test('rotation success rate from known outcomes over 7 days; traffic today and this month', async () => {
    const auth = { authorization: `Bearer ${await freshToken(ts())}` };
    const d = await pairDevice(ts());
    const con = await connection(ts(), d.id);
    const rotate = async (status: 'succeeded' | 'failed') => {
      const cmd = await ts().call('POST', `/api/devices/${d.id}/commands`, { type: 'rotate_ip' }, auth);
      assert.equal(cmd.status, 201, cmd.body);
      const result = status === 'succeeded' ? { old_ip: '198.51.100.1', new_ip: '198.51.100.2' } : { error: 'no' };
      const r = await ts().call(
        'POST',
        `/api/devices/${d.id}/commands/${cmd.json.id}/result`,
        { status, result },
        dev(d.token),
      );
      assert.equal(r.status, 200, r.body);
      return cmd.json.id as string;
    };
    await rotate('succeeded');
    await rotate('succeeded');
    await rotate('succeeded');
    await rotate('failed');
    const expired = await rotate('failed');
    await ts().db.query(`UPDATE commands SET status = 'expired' WHERE id = $1`, [expired]);
    // finished 8 days ago: outside the window
    const old = await rotate('failed');
    await ts().db.query(`UPDATE commands SET finished_at = $2::timestamptz - interval '8 days' WHERE id = $1`, [
      old,
      ts().clock.now(),
    ]);
    const beats: Record<string, unknown>[] = [];
    const off = ts().sys.ctx.bus.subscribe((e) => {
      if (e.type === 'heartbeat' && e.data.device_id === d.id) beats.push(e.data);
    });
    await ts().call(
      'POST',
      `/api/devices/${d.id}/heartbeat`,
      { usage: [{ connection_id: con.id, bytes_in: 1000, bytes_out: 20_000 }] },
      dev(d.token),
    );
    off();
    // the live event carries what this heartbeat reported (the dashboard's throughput)
    assert.equal(beats.length, 1);
    assert.equal(beats[0]!.bytes_in, 1000);
    assert.equal(beats[0]!.bytes_out, 20_000);
    const s = await ts().call('GET', `/api/devices/stats?device_id=${d.id}`, undefined, auth);
    const x = s.json.items[0];
    assert.deepEqual(x.rotations_7d, { succeeded: 3, failed: 1, expired: 1 });
    assert.ok(Math.abs(x.rotation_success_rate_7d - 3 / 5) < 1e-9);
    assert.equal(x.traffic_today_bytes, 21_000);
    assert.equal(x.traffic_month_bytes, 21_000);
    const fresh = await pairDevice(ts());
    const f = (await ts().call('GET', `/api/devices/stats?device_id=${fresh.id}`, undefined, auth)).json.items[0];
    assert.equal(f.rotation_success_rate_7d, null);
    assert.equal(f.traffic_today_bytes, 0);

    const u = await ts().call('GET', '/api/usage?granularity=hour', undefined, auth);
    assert.equal(u.status, 200, u.body);
    assert.equal(u.json.items.length, 24);
    const last = u.json.items.at(-1);
    assert.ok(last.bytes_in >= 1000 && last.bytes_out >= 20_000, u.body);
    const day = await ts().call('GET', '/api/usage?granularity=day', undefined, auth);
    assert.equal(day.json.items.length, 30);
    assertProblem(await ts().call('GET', '/api/usage?granularity=week', undefined, auth), 400, 'PP_ERR_API_VALIDATION');
  });
  test('uptime from known transitions: 8 h of 12, then 21 h of the last 24 and 26 h of 30 since pairing', async () => {
    const c = ts().clock;
    const d = await pairDevice(ts()); // T0, offline
    const other = await pairDevice(ts()); // never connects
    const vpnIp = (await ts().call('GET', `/api/devices/${d.id}`)).json.vpn_ip as string;
    const connected = () =>
      ts().call('POST', '/api/internal/vpn/connected', { device_id: d.id, vpn_ip: vpnIp }, internal(ts()));
    const disconnected = () =>
      ts().call('POST', '/api/internal/vpn/disconnected', { device_id: d.id, reason: 'test' }, internal(ts()));
    c.advance(1 * HOUR);
    assert.equal((await connected()).status, 200); // T0+1h online
    c.advance(6 * HOUR);
    assert.equal((await disconnected()).status, 200); // T0+7h offline
    c.advance(3 * HOUR);
    await connected(); // T0+10h online
    c.advance(1 * HOUR);
    await connected(); // T0+11h: a repeat changes nothing
    c.advance(1 * HOUR); // now T0+12h
    const token = await freshToken(ts());
    const auth = { authorization: `Bearer ${token}` };
    let s = await ts().call('GET', `/api/devices/stats?device_id=${d.id}`, undefined, auth);
    assert.equal(s.status, 200, s.body);
    assert.equal(s.json.items.length, 1);
    assert.ok(Math.abs(s.json.items[0].uptime_24h - 8 / 12) < 1e-6, s.body);
    assert.ok(Math.abs(s.json.items[0].uptime_7d - 8 / 12) < 1e-6, s.body);
    c.advance(18 * HOUR); // T0+30h, online since T0+10h
    const auth2 = { authorization: `Bearer ${await freshToken(ts())}` };
    s = await ts().call('GET', '/api/devices/stats', undefined, auth2);
    const mine = s.json.items.find((x: { device_id: string }) => x.device_id === d.id);
    assert.ok(Math.abs(mine.uptime_24h - 21 / 24) < 1e-6, JSON.stringify(mine));
    assert.ok(Math.abs(mine.uptime_7d - 26 / 30) < 1e-6, JSON.stringify(mine));
    const never = s.json.items.find((x: { device_id: string }) => x.device_id === other.id);
    assert.equal(never.uptime_24h, 0);
    assert.equal(never.uptime_7d, 0);
    assert.equal((await ts().call('GET', `/api/devices/stats?device_id=${UNKNOWN.dev}`, undefined, auth2)).status, 404);
    assertProblem(await ts().call('GET', '/api/devices/stats?device_id=nope', undefined, auth2), 400);
  });
});
