// Device-facing heartbeat and the internal routes the tunnel and the OpenVPN hooks call.
import assert from 'node:assert/strict';
import { pairDevice, snapshot } from './harness.js';
import { assertProblem, dev, internal, perBackend, UNKNOWN } from './api.assert.js';

perBackend(
  'heartbeat and internal routes',
  ({ ts, test }) => {
    test('heartbeat: device auth, metrics stored, online, public_ip change → IP history + event, usage rows', async () => {
      const d = await pairDevice(ts());
      const other = await pairDevice(ts());
      const c = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' })).json;
      const oc = (await ts().call('POST', '/api/connections', { device_id: other.id, protocol: 'http' })).json;
      const hb = await ts().call(
        'POST',
        `/api/devices/${d.id}/heartbeat`,
        { metrics: { battery: 55, charging: true, signal: -85, carrier: 'Lab Mobile', network_type: 'LTE' }, public_ip: '198.18.9.1', agent_version: '1.2.3', uptime_s: 10, usage: [{ connection_id: c.id, bytes_in: 1000, bytes_out: 500 }, { connection_id: oc.id, bytes_in: 7, bytes_out: 7 }] },
        dev(d.token),
      );
      assert.equal(hb.status, 200, hb.body);
      assert.deepEqual(hb.json.commands, []);
      assert.equal(hb.json.heartbeat_interval_s, ts().sys.ctx.config.heartbeatIntervalS);
      assert.equal(typeof hb.json.credentials_version, 'string');
      const got = (await ts().call('GET', `/api/devices/${d.id}`)).json;
      assert.equal(got.status, 'online');
      assert.deepEqual(got.metrics, { battery: 55, charging: true, signal: -85, carrier: 'Lab Mobile', network_type: 'LTE' });
      assert.equal(got.agent_version, '1.2.3');
      assert.equal(got.current_ip, '198.18.9.1');
      assert.equal(got.last_seen_at, ts().clock.now().toISOString());
      // a partial report keeps what it does not mention
      await ts().call('POST', `/api/devices/${d.id}/heartbeat`, { metrics: { battery: 54 }, public_ip: '198.18.9.2' }, dev(d.token));
      const got2 = (await ts().call('GET', `/api/devices/${d.id}`)).json;
      assert.equal(got2.metrics.battery, 54);
      assert.equal(got2.metrics.carrier, 'Lab Mobile');
      const hist = (await ts().call('GET', `/api/devices/${d.id}/ip-history`)).json.items;
      assert.deepEqual(hist.map((h: { old_ip: string | null; new_ip: string }) => [h.old_ip, h.new_ip]), [['198.18.9.1', '198.18.9.2'], [null, '198.18.9.1']]);
      const ev = await ts().db.query<{ type: string }>(`SELECT type FROM events WHERE device_id = $1 ORDER BY id`, [d.id]);
      assert.deepEqual(ev.rows.map((e) => e.type), ['device_paired', 'device_connected', 'ip_changed', 'ip_changed']);
      // usage: only this device's own connections are counted
      const u = await ts().db.query<{ connection_id: string; source: string; bytes_in: string; bytes_out: string }>('SELECT connection_id, source, bytes_in, bytes_out FROM usage_hourly WHERE device_id = $1', [d.id]);
      assert.deepEqual(u.rows.map((r) => [r.connection_id, r.source, Number(r.bytes_in), Number(r.bytes_out)]), [[c.id, 'agent', 1000, 500]]);
      assert.equal((await ts().db.query('SELECT 1 FROM usage_hourly WHERE connection_id = $1', [oc.id])).rows.length, 0);
      await ts().call('POST', `/api/devices/${d.id}/heartbeat`, { usage: [{ connection_id: c.id, bytes_in: 1, bytes_out: 2 }] }, dev(d.token));
      assert.equal((await ts().call('GET', `/api/connections/${c.id}`)).json.bytes_used_month, 1503);
    });

    test('heartbeat 400 bad metrics, 401 no/bad token, 403 other device — nothing changes', async () => {
      const d = await pairDevice(ts());
      const o = await pairDevice(ts());
      const before = await snapshot(ts().db);
      for (const body of [{ metrics: { battery: 101 } }, { metrics: { battery: 'full' } }, { usage: [{ connection_id: 'x', bytes_in: 1, bytes_out: 1 }] }, { usage: [{ connection_id: UNKNOWN.con, bytes_in: -1, bytes_out: 1 }] }, { public_ip: 'x'.repeat(65) }, { uptime_s: -1 }]) {
        assertProblem(await ts().call('POST', `/api/devices/${d.id}/heartbeat`, body, dev(d.token)), 400, 'PP_ERR_API_VALIDATION');
      }
      // unknown metric names from a newer agent are dropped, not refused (forward compatible)
      const hbNew = await ts().call('POST', `/api/devices/${d.id}/heartbeat`, { metrics: { cpu_temp: 40 } }, dev(d.token));
      assert.equal(hbNew.status, 200, hbNew.body);
      const mid = await snapshot(ts().db);
      assertProblem(await ts().call('POST', `/api/devices/${d.id}/heartbeat`, {}, { authorization: '' }), 401);
      assertProblem(await ts().call('POST', `/api/devices/${d.id}/heartbeat`, {}, dev('nope')), 401);
      assertProblem(await ts().call('POST', `/api/devices/${d.id}/heartbeat`, {}, dev(o.token)), 403, 'PP_ERR_API_FORBIDDEN');
      assert.equal(await snapshot(ts().db), mid);
    });

    test('device credentials and tunnel parameters: verifiers only, never passwords', async () => {
      const d = await pairDevice(ts());
      const c = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'socks5' })).json;
      const cr = await ts().call('GET', `/api/devices/${d.id}/credentials`, undefined, dev(d.token));
      assert.equal(cr.status, 200, cr.body);
      assert.equal(cr.json.items.length, 1);
      assert.equal(cr.json.items[0].username, c.username);
      assert.match(cr.json.items[0].verifier, /^v1\$/);
      assert.ok(!cr.body.includes(c.password));
      const tn = await ts().call('GET', `/api/devices/${d.id}/tunnel`, undefined, dev(d.token));
      assert.equal(tn.status, 200);
      assert.equal(tn.json.relay.host, 'relay.example.net');
      assert.match(tn.json.vpn_ip, /^192\.168\.255\.\d+$/);
    });

    test('internal routes need the internal token: 401 without, with an admin JWT or a device token', async () => {
      const d = await pairDevice(ts());
      const routes: [string, string, unknown][] = [
        ['POST', '/api/internal/vpn/connected', { device_id: d.id, vpn_ip: '192.168.255.2' }],
        ['POST', '/api/internal/vpn/disconnected', { device_id: d.id }],
        ['POST', '/api/internal/usage', { samples: [] }],
        ['POST', '/api/internal/openvpn/auth', { username: 'x', password: 'y' }],
        ['POST', '/api/internal/openvpn/connect', { username: 'x' }],
        ['POST', '/api/internal/openvpn/disconnect', { username: 'x' }],
        ['GET', `/api/internal/devices/${d.id}/forwarding`, undefined],
        ['POST', '/api/internal/tunnel/forwarding', { device_ids: [] }],
        ['GET', `/api/internal/tunnel/peers?relay_id=${UNKNOWN.rly}`, undefined],
        ['POST', '/api/internal/relays/register', { name: 'x', host: 'h', tunnel_port: 1, push_url: 'http://h', public_key: Buffer.alloc(32).toString('base64') }],
      ];
      const before = await snapshot(ts().db);
      for (const [m, u, body] of routes) {
        for (const h of [{ authorization: '' }, {}, dev(d.token), { authorization: `Bearer ${ts().sys.ctx.internalToken}x` }]) {
          assertProblem(await ts().call(m, u, body, h), 401, 'PP_ERR_API_UNAUTHENTICATED');
        }
      }
      assert.equal(await snapshot(ts().db), before);
    });

    test('vpn/connected marks online, answers base_port, connections and credentials; vpn/disconnected → offline + event', async () => {
      const d = await pairDevice(ts());
      const c = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http', allow_from: ['203.0.113.0/24'] })).json;
      const vpnIp = (await ts().call('GET', `/api/devices/${d.id}`)).json.vpn_ip;
      const res = await ts().call('POST', '/api/internal/vpn/connected', { device_id: d.id, vpn_ip: vpnIp, endpoint: '198.18.0.9:40000' }, internal(ts()));
      assert.equal(res.status, 200, res.body);
      assert.equal(res.json.base_port, d.basePort);
      assert.equal(res.json.vpn_ip, vpnIp);
      assert.deepEqual(res.json.connections, [{ connection_id: c.id, protocol: 'http', port: c.port, allow_from: ['203.0.113.0/24'], enabled: true }]);
      assert.equal(res.json.credentials[0].username, c.username);
      assert.equal((await ts().call('GET', `/api/devices/${d.id}`)).json.status, 'online');
      const fw = await ts().call('GET', `/api/internal/devices/${d.id}/forwarding`, undefined, internal(ts()));
      assert.deepEqual(fw.json.connections, res.json.connections);
      const bulk = await ts().call('POST', '/api/internal/tunnel/forwarding', { device_ids: [d.id, UNKNOWN.dev] }, internal(ts()));
      assert.deepEqual(Object.keys(bulk.json.devices), [d.id]);
      const off = await ts().call('POST', '/api/internal/vpn/disconnected', { device_id: d.id, reason: 'timeout' }, internal(ts()));
      assert.equal(off.status, 200);
      assert.equal((await ts().call('GET', `/api/devices/${d.id}`)).json.status, 'offline');
      const ev = await ts().db.query<{ type: string; data: { reason: string } }>(`SELECT type, data FROM events WHERE device_id = $1 AND type LIKE 'device_%connected' ORDER BY id`, [d.id]);
      assert.deepEqual(ev.rows.map((e) => e.type), ['device_connected', 'device_disconnected']);
      assert.equal(ev.rows[1]!.data.reason, 'timeout');
      // a second disconnect changes nothing and records nothing
      await ts().call('POST', '/api/internal/vpn/disconnected', { device_id: d.id }, internal(ts()));
      assert.equal((await ts().db.query(`SELECT 1 FROM events WHERE device_id = $1 AND type = 'device_disconnected'`, [d.id])).rows.length, 1);
      assertProblem(await ts().call('POST', '/api/internal/vpn/connected', { device_id: UNKNOWN.dev, vpn_ip: '192.168.255.9' }, internal(ts())), 404, 'PP_ERR_API_NOT_FOUND');
      assertProblem(await ts().call('POST', '/api/internal/vpn/connected', { device_id: d.id, vpn_ip: '999.1.1.1' }, internal(ts())), 400, 'PP_ERR_API_VALIDATION');
    });

    test('usage ingestion by relay port adds nft bytes to the connection that owns the port', async () => {
      const d = await pairDevice(ts());
      const c = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' })).json;
      const res = await ts().call('POST', '/api/internal/usage', { samples: [{ port: c.port, bytes_in: 4000, bytes_out: 1000 }, { port: 65000, bytes_in: 1, bytes_out: 1 }] }, internal(ts()));
      assert.equal(res.status, 200, res.body);
      assert.equal(res.json.recorded, 1);
      await ts().call('POST', '/api/internal/usage', { samples: [{ port: c.port, bytes_in: 1, bytes_out: 1 }] }, internal(ts()));
      const rows = await ts().db.query<{ source: string; bytes_in: string; bytes_out: string }>('SELECT source, bytes_in, bytes_out FROM usage_hourly WHERE connection_id = $1', [c.id]);
      assert.deepEqual(rows.rows.map((r) => [r.source, Number(r.bytes_in), Number(r.bytes_out)]), [['nft', 4001, 1001]]);
      assert.equal((await ts().call('GET', `/api/connections/${c.id}`)).json.bytes_used_month, 5002);
      assertProblem(await ts().call('POST', '/api/internal/usage', { samples: [{ port: c.port, bytes_in: -5, bytes_out: 0 }] }, internal(ts())), 400, 'PP_ERR_API_VALIDATION');
    });

    test('openvpn/auth: 200 for the right password, 403 wrong password, unknown user, disabled or expired connection', async () => {
      const d = await pairDevice(ts());
      const c = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http', username: 'ovpn-user', password: 'ovpn-password-1' })).json;
      const ok = await ts().call('POST', '/api/internal/openvpn/auth', { username: 'ovpn-user', password: 'ovpn-password-1', untrusted_ip: '203.0.113.5' }, internal(ts()));
      assert.equal(ok.status, 200, ok.body);
      assert.deepEqual(ok.json, { ok: true, connection_id: c.id, device_id: d.id });
      assertProblem(await ts().call('POST', '/api/internal/openvpn/auth', { username: 'ovpn-user', password: 'wrong-password' }, internal(ts())), 403, 'PP_ERR_API_FORBIDDEN');
      assertProblem(await ts().call('POST', '/api/internal/openvpn/auth', { username: 'ovpn-user' }, internal(ts())), 403, 'PP_ERR_API_FORBIDDEN');
      assertProblem(await ts().call('POST', '/api/internal/openvpn/auth', { username: 'nobody', password: 'ovpn-password-1' }, internal(ts())), 403, 'PP_ERR_API_FORBIDDEN');
      const conn = await ts().call('POST', '/api/internal/openvpn/connect', { username: 'ovpn-user', vpn_ip: '10.9.0.6' }, internal(ts()));
      assert.equal(conn.status, 200);
      assert.equal(conn.json.device_vpn_ip, (await ts().call('GET', `/api/devices/${d.id}`)).json.vpn_ip);
      assert.equal(conn.json.client_ip, '10.9.0.6');
      assert.equal((await ts().call('POST', '/api/internal/openvpn/disconnect', { username: 'ovpn-user' }, internal(ts()))).status, 200);
      await ts().call('PATCH', `/api/connections/${c.id}`, { enabled: false });
      assertProblem(await ts().call('POST', '/api/internal/openvpn/auth', { username: 'ovpn-user', password: 'ovpn-password-1' }, internal(ts())), 403);
      await ts().call('PATCH', `/api/connections/${c.id}`, { enabled: true, expires_at: new Date(ts().clock.now().getTime() - 1000).toISOString() });
      assertProblem(await ts().call('POST', '/api/internal/openvpn/auth', { username: 'ovpn-user', password: 'ovpn-password-1' }, internal(ts())), 403);
    });
  },
  { POCKETPROXY_PAIRING_RATE: '10000' },
);
