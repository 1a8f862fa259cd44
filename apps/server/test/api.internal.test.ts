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
        {
          metrics: {
            battery: 55,
            charging: true,
            signal: -85,
            carrier: 'Lab Mobile',
            network_type: 'LTE',
            temperature: 31.4,
          },
          public_ip: '198.18.9.1',
          agent_version: '1.2.3',
          uptime_s: 10,
          usage: [
            { connection_id: c.id, bytes_in: 1000, bytes_out: 500 },
            { connection_id: oc.id, bytes_in: 7, bytes_out: 7 },
          ],
        },
        dev(d.token),
      );
      assert.equal(hb.status, 200, hb.body);
      assert.deepEqual(hb.json.commands, []);
      assert.equal(hb.json.heartbeat_interval_s, ts().sys.ctx.config.heartbeatIntervalS);
      assert.equal(typeof hb.json.credentials_version, 'string');
      const got = (await ts().call('GET', `/api/devices/${d.id}`)).json;
      assert.equal(got.status, 'online');
      assert.deepEqual(got.metrics, {
        battery: 55,
        charging: true,
        signal: -85,
        carrier: 'Lab Mobile',
        network_type: 'LTE',
        temperature: 31.4,
      });
      assert.equal(got.agent_version, '1.2.3');
      assert.equal(got.current_ip, '198.18.9.1');
      assert.equal(got.last_seen_at, ts().clock.now().toISOString());
      // a partial report keeps what it does not mention
      await ts().call(
        'POST',
        `/api/devices/${d.id}/heartbeat`,
        { metrics: { battery: 54 }, public_ip: '198.18.9.2' },
        dev(d.token),
      );
      const got2 = (await ts().call('GET', `/api/devices/${d.id}`)).json;
      assert.equal(got2.metrics.battery, 54);
      assert.equal(got2.metrics.carrier, 'Lab Mobile');
      assert.equal(got2.metrics.temperature, 31.4);
      // A temperature outside -50..150 °C is refused and changes nothing.
      const hot = await ts().call(
        'POST',
        `/api/devices/${d.id}/heartbeat`,
        { metrics: { temperature: 900 } },
        dev(d.token),
      );
      assert.equal(hot.status, 400);
      assert.equal((await ts().call('GET', `/api/devices/${d.id}`)).json.metrics.temperature, 31.4);
      const hist = (await ts().call('GET', `/api/devices/${d.id}/ip-history`)).json.items;
      assert.deepEqual(
        hist.map((h: { old_ip: string | null; new_ip: string }) => [h.old_ip, h.new_ip]),
        [
          ['198.18.9.1', '198.18.9.2'],
          [null, '198.18.9.1'],
        ],
      );
      const ev = await ts().db.query<{ type: string }>(`SELECT type FROM events WHERE device_id = $1 ORDER BY id`, [
        d.id,
      ]);
      assert.deepEqual(
        ev.rows.map((e) => e.type),
        ['device_paired', 'device_connected', 'ip_changed', 'ip_changed'],
      );
      // usage: only this device's own connections are counted
      const u = await ts().db.query<{ connection_id: string; source: string; bytes_in: string; bytes_out: string }>(
        'SELECT connection_id, source, bytes_in, bytes_out FROM usage_hourly WHERE device_id = $1',
        [d.id],
      );
      assert.deepEqual(
        u.rows.map((r) => [r.connection_id, r.source, Number(r.bytes_in), Number(r.bytes_out)]),
        [[c.id, 'agent', 1000, 500]],
      );
      assert.equal(
        (await ts().db.query('SELECT 1 FROM usage_hourly WHERE connection_id = $1', [oc.id])).rows.length,
        0,
      );
      await ts().call(
        'POST',
        `/api/devices/${d.id}/heartbeat`,
        { usage: [{ connection_id: c.id, bytes_in: 1, bytes_out: 2 }] },
        dev(d.token),
      );
      assert.equal((await ts().call('GET', `/api/connections/${c.id}`)).json.bytes_used_month, 1503);
    });

    test('heartbeat 400 bad metrics, 401 no/bad token, 403 other device — nothing changes', async () => {
      const d = await pairDevice(ts());
      const o = await pairDevice(ts());
      const before = await snapshot(ts().db);
      for (const body of [
        { metrics: { battery: 101 } },
        { metrics: { battery: 'full' } },
        { usage: [{ connection_id: 'x', bytes_in: 1, bytes_out: 1 }] },
        { usage: [{ connection_id: UNKNOWN.con, bytes_in: -1, bytes_out: 1 }] },
        { public_ip: 'x'.repeat(65) },
        { uptime_s: -1 },
      ]) {
        assertProblem(
          await ts().call('POST', `/api/devices/${d.id}/heartbeat`, body, dev(d.token)),
          400,
          'PP_ERR_API_VALIDATION',
        );
      }
      assert.equal(await snapshot(ts().db), before);
      // unknown metric names from a newer agent are dropped, not refused (forward compatible)
      const hbNew = await ts().call(
        'POST',
        `/api/devices/${d.id}/heartbeat`,
        { metrics: { cpu_temp: 40 } },
        dev(d.token),
      );
      assert.equal(hbNew.status, 200, hbNew.body);
      const mid = await snapshot(ts().db);
      assertProblem(await ts().call('POST', `/api/devices/${d.id}/heartbeat`, {}, { authorization: '' }), 401);
      assertProblem(await ts().call('POST', `/api/devices/${d.id}/heartbeat`, {}, dev('nope')), 401);
      assertProblem(
        await ts().call('POST', `/api/devices/${d.id}/heartbeat`, {}, dev(o.token)),
        403,
        'PP_ERR_API_FORBIDDEN',
      );
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

    test("credentials: every connection of the device, each with state, allow-list, expiry, limits and the device's own usage", async () => {
      const d = await pairDevice(ts());
      const other = await pairDevice(ts());
      const t0 = ts().clock.now().getTime();
      const mk = async (body: Record<string, unknown>) => {
        const r = await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http', ...body });
        assert.equal(r.status, 201, r.body);
        return r.json;
      };
      const a = await mk({
        allow_from: ['203.0.113.0/24'],
        expires_at: new Date(t0 + 86400_000).toISOString(),
        max_connections: 7,
        rate_limit_down_kbps: 8000,
        rate_limit_up_kbps: 2000,
        bandwidth_limit_bytes: 1_000_000_000,
      });
      const off = await mk({ protocol: 'socks5', enabled: false });
      const soon = await mk({ expires_at: new Date(t0 + 1000).toISOString() });
      const bw = await mk({ bandwidth_limit_bytes: 1000 });
      await ts().call('POST', '/api/connections', { device_id: other.id, protocol: 'http' });
      await ts().call(
        'POST',
        `/api/devices/${d.id}/heartbeat`,
        {
          usage: [
            { connection_id: a.id, bytes_in: 300, bytes_out: 200 },
            { connection_id: bw.id, bytes_in: 0, bytes_out: 2000 },
          ],
        },
        dev(d.token),
      );
      await ts().call(
        'POST',
        '/api/internal/usage',
        { samples: [{ port: a.port, bytes_in: 9999, bytes_out: 9999 }] },
        internal(ts()),
      );
      const get = async () => {
        const r = await ts().call('GET', `/api/devices/${d.id}/credentials`, undefined, dev(d.token));
        assert.equal(r.status, 200, r.body);
        return r;
      };
      const res = await get();
      const items = res.json.items as Record<string, unknown>[];
      assert.deepEqual(
        items.map((i) => i.connection_id),
        [a, off, soon, bw].sort((x, y) => x.port - y.port).map((c) => c.id),
        'every connection of this device, by port',
      );
      const verifier = (
        await ts().db.query<{ password_verifier: string }>('SELECT password_verifier FROM connections WHERE id = $1', [
          a.id,
        ])
      ).rows[0]!.password_verifier;
      const itemA = items.find((i) => i.connection_id === a.id)!;
      assert.deepEqual(Object.keys(itemA), [
        'connection_id',
        'protocol',
        'port',
        'username',
        'verifier',
        'state',
        'allow_from',
        'expires_at',
        'max_connections',
        'rate_limit_down_kbps',
        'rate_limit_up_kbps',
        'bandwidth_limit_bytes',
        'bytes_used_month',
      ]);
      assert.deepEqual(itemA, {
        connection_id: a.id,
        protocol: 'http',
        port: a.port,
        username: a.username,
        verifier,
        state: 'active',
        allow_from: ['203.0.113.0/24'],
        expires_at: new Date(t0 + 86400_000).toISOString(),
        max_connections: 7,
        rate_limit_down_kbps: 8000,
        rate_limit_up_kbps: 2000,
        bandwidth_limit_bytes: 1_000_000_000,
        bytes_used_month: 500,
      });
      const state = (r: typeof res) =>
        Object.fromEntries(
          (r.json.items as { connection_id: string; state: string }[]).map((i) => [i.connection_id, i.state]),
        );
      assert.deepEqual(state(res), {
        [a.id]: 'active',
        [off.id]: 'disabled',
        [soon.id]: 'active',
        [bw.id]: 'bandwidth',
      });
      const offItem = items.find((i) => i.connection_id === off.id)!;
      assert.deepEqual(
        [
          offItem.protocol,
          offItem.allow_from,
          offItem.expires_at,
          offItem.max_connections,
          offItem.bandwidth_limit_bytes,
          offItem.bytes_used_month,
        ],
        ['socks5', [], null, null, null, 0],
      );
      for (const c of [a, off, soon, bw]) assert.ok(!res.body.includes(c.password), 'verifiers only, never passwords');
      // expiry passes: 'expired' at once, before any worker tick, and the version changes with it
      ts().clock.advance(2000);
      const later = await get();
      assert.equal(state(later)[soon.id], 'expired');
      assert.notEqual(later.json.version, res.json.version);
      // precedence: disabled > expired > bandwidth
      await ts().call('PATCH', `/api/connections/${off.id}`, { expires_at: new Date(t0 - 1000).toISOString() });
      await ts().db.query('UPDATE connections SET expires_at = $2 WHERE id = $1', [bw.id, new Date(t0 - 1000)]);
      assert.equal(
        (
          await ts().db.query<{ blocked_reason: string }>('SELECT blocked_reason FROM connections WHERE id = $1', [
            bw.id,
          ])
        ).rows[0]!.blocked_reason,
        'bandwidth',
      );
      const prec = state(await get());
      assert.deepEqual([prec[off.id], prec[bw.id]], ['disabled', 'expired']);
      // a device without connections
      const empty = await pairDevice(ts());
      const none = await ts().call('GET', `/api/devices/${empty.id}/credentials`, undefined, dev(empty.token));
      assert.deepEqual(none.json, { version: '0:0', items: [] });
    });

    test('credentials version: the heartbeat answers the same; it changes with every item field but bytes_used_month, whatever the clock', async () => {
      const d = await pairDevice(ts());
      const c = (
        await ts().call('POST', '/api/connections', {
          device_id: d.id,
          protocol: 'http',
          bandwidth_limit_bytes: 1_000_000,
        })
      ).json;
      const cus = (await ts().call('POST', '/api/customers', { name: 'version-cus' })).json;
      // The clock stands still: nothing here may rely on updated_at moving.
      const version = async () => {
        const creds = await ts().call('GET', `/api/devices/${d.id}/credentials`, undefined, dev(d.token));
        const hb = await ts().call('POST', `/api/devices/${d.id}/heartbeat`, {}, dev(d.token));
        assert.equal(hb.json.credentials_version, creds.json.version, 'heartbeat and credentials agree');
        return creds.json.version as string;
      };
      let last = await version();
      assert.equal(await version(), last, 'stable while nothing changes');
      const expect = async (what: string, changed: boolean) => {
        const now = await version();
        if (changed) assert.notEqual(now, last, `${what} changes the version`);
        else assert.equal(now, last, `${what} leaves the version`);
        last = now;
      };
      await ts().call(
        'POST',
        `/api/devices/${d.id}/heartbeat`,
        { usage: [{ connection_id: c.id, bytes_in: 10, bytes_out: 10 }] },
        dev(d.token),
      );
      await expect('usage (bytes_used_month)', false);
      await ts().call('PATCH', `/api/connections/${c.id}`, { customer_id: cus.id });
      await expect('the customer (not in the items)', false);
      for (const patch of [
        { username: 'version-user' },
        { password: 'Version-pass-2' },
        { enabled: false },
        { enabled: true },
        { allow_from: ['192.0.2.0/24'] },
        { allow_from: ['192.0.2.0/25'] },
        { expires_at: '2030-01-01T00:00:00Z' },
        { expires_at: null },
        { max_connections: 4 },
        { rate_limit_down_kbps: 100 },
        { rate_limit_up_kbps: 100 },
        { bandwidth_limit_bytes: 2_000_000 },
      ]) {
        assert.equal((await ts().call('PATCH', `/api/connections/${c.id}`, patch)).status, 200);
        await expect(JSON.stringify(patch), true);
      }
      const c2 = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'socks5' })).json;
      await expect('a new connection', true);
      await ts().call('DELETE', `/api/connections/${c2.id}`);
      await expect('a deleted connection', true);
      // another device's changes leave this one's version
      const o = await pairDevice(ts());
      await ts().call('POST', '/api/connections', { device_id: o.id, protocol: 'http' });
      await expect("another device's connection", false);
    });

    test('a heartbeat whose usage takes a connection to its limit blocks it at once, answers the new version and syncs the relay', async () => {
      const d = await pairDevice(ts());
      const lim = (
        await ts().call('POST', '/api/connections', {
          device_id: d.id,
          protocol: 'http',
          bandwidth_limit_bytes: 10_000,
        })
      ).json;
      const free = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' })).json;
      const big = (
        await ts().call('POST', '/api/connections', {
          device_id: d.id,
          protocol: 'socks5',
          bandwidth_limit_bytes: 1_000_000,
        })
      ).json;
      const blocked = async (id: string) =>
        (
          await ts().db.query<{ blocked_reason: string | null }>(
            'SELECT blocked_reason FROM connections WHERE id = $1',
            [id],
          )
        ).rows[0]!.blocked_reason;
      const hb = (usage: { connection_id: string; bytes_in: number; bytes_out: number }[]) =>
        ts().call('POST', `/api/devices/${d.id}/heartbeat`, { usage }, dev(d.token));
      ts().push.takeSynced();
      const first = await hb([
        { connection_id: lim.id, bytes_in: 6000, bytes_out: 3000 },
        { connection_id: free.id, bytes_in: 1e9, bytes_out: 1e9 },
      ]);
      assert.equal(first.status, 200, first.body);
      assert.equal(await blocked(lim.id), null, '9000 of 10000');
      assert.deepEqual(ts().push.takeSynced(), []);
      // the relay's count never blocks
      await ts().call(
        'POST',
        '/api/internal/usage',
        { samples: [{ port: big.port, bytes_in: 5_000_000, bytes_out: 0 }] },
        internal(ts()),
      );
      await hb([]);
      assert.equal(await blocked(big.id), null);
      const events: Record<string, unknown>[] = [];
      const unsub = ts().sys.ctx.bus.subscribe((e) => e.type === 'connection_updated' && events.push(e.data));
      const second = await hb([{ connection_id: lim.id, bytes_in: 1000, bytes_out: 0 }]);
      unsub();
      assert.equal(second.status, 200, second.body);
      assert.equal(await blocked(lim.id), 'bandwidth', 'at the limit: blocked by this heartbeat');
      assert.equal(await blocked(free.id), null);
      assert.equal(await blocked(big.id), null);
      const creds = (await ts().call('GET', `/api/devices/${d.id}/credentials`, undefined, dev(d.token))).json;
      assert.equal(second.json.credentials_version, creds.version, 'the answer carries the version after the block');
      assert.notEqual(second.json.credentials_version, first.json.credentials_version);
      assert.equal(creds.items.find((i: { connection_id: string }) => i.connection_id === lim.id).state, 'bandwidth');
      assert.deepEqual(ts().push.takeSynced(), [d.id]);
      assert.deepEqual(events, [{ id: lim.id, device_id: d.id, blocked: true }]);
      // the next report changes nothing more
      await hb([{ connection_id: lim.id, bytes_in: 1, bytes_out: 1 }]);
      assert.deepEqual(ts().push.takeSynced(), []);
    });

    test('internal routes need the internal token: 401 without, with an admin JWT or a device token', async () => {
      const d = await pairDevice(ts());
      const routes: [string, string, unknown][] = [
        ['POST', '/api/internal/vpn/connected', { device_id: d.id, vpn_ip: '192.168.255.2' }],
        ['POST', '/api/internal/vpn/disconnected', { device_id: d.id }],
        ['POST', '/api/internal/usage', { samples: [] }],
        ['POST', '/api/internal/openvpn/auth', { username: 'x', password: 'y' }],
        ['POST', '/api/internal/openvpn/connect', { username: 'x' }],
        ['GET', `/api/internal/devices/${d.id}/forwarding`, undefined],
        ['POST', '/api/internal/tunnel/forwarding', { device_ids: [] }],
        ['GET', `/api/internal/tunnel/peers?relay_id=${UNKNOWN.rly}`, undefined],
        [
          'POST',
          '/api/internal/relays/register',
          {
            name: 'x',
            host: 'h',
            tunnel_port: 1,
            push_url: 'http://h',
            public_key: Buffer.alloc(32).toString('base64'),
          },
        ],
      ];
      const before = await snapshot(ts().db);
      for (const [m, u, body] of routes) {
        for (const h of [
          { authorization: '' },
          {},
          dev(d.token),
          { authorization: `Bearer ${ts().sys.ctx.internalToken}x` },
        ]) {
          assertProblem(await ts().call(m, u, body, h), 401, 'PP_ERR_API_UNAUTHENTICATED');
        }
      }
      assert.equal(await snapshot(ts().db), before);
    });

    test('relays/register: the relay says how many lanes it holds per device; devices read it in /tunnel (1 for a relay that says nothing); a bad count changes nothing', async () => {
      const d = await pairDevice(ts());
      const reg = (max?: unknown) =>
        ts().call(
          'POST',
          '/api/internal/relays/register',
          {
            name: 'lanes-relay',
            host: 'lanes.example.net',
            tunnel_port: 1194,
            push_url: 'http://lanes.example.net:8090',
            public_key: Buffer.alloc(32, 7).toString('base64'),
            ...(max === undefined ? {} : { max_lanes: max }),
          },
          internal(ts()),
        );
      const r = await reg(16);
      assert.equal(r.status, 200, r.body);
      assert.equal((await ts().call('PATCH', `/api/devices/${d.id}`, { relay_id: r.json.relay_id })).status, 200);
      const lanes = async () =>
        (await ts().call('GET', `/api/devices/${d.id}/tunnel`, undefined, dev(d.token))).json.relay.max_lanes;
      assert.equal(await lanes(), 16);
      for (const bad of [0, 17, 2.5, '4']) assertProblem(await reg(bad), 400, 'PP_ERR_API_VALIDATION');
      assert.equal(await lanes(), 16, 'a refused registration changed nothing');
      assert.equal((await reg()).status, 200);
      assert.equal(await lanes(), 1, 'a relay from before lanes: one');
    });

    test('vpn/connected marks online, answers vpn_ip, connections and credentials (no base_port); vpn/disconnected → offline + event', async () => {
      const d = await pairDevice(ts());
      const c = (
        await ts().call('POST', '/api/connections', {
          device_id: d.id,
          protocol: 'http',
          allow_from: ['203.0.113.0/24'],
        })
      ).json;
      const vpnIp = (await ts().call('GET', `/api/devices/${d.id}`)).json.vpn_ip;
      const res = await ts().call(
        'POST',
        '/api/internal/vpn/connected',
        { device_id: d.id, vpn_ip: vpnIp, endpoint: '198.18.0.9:40000' },
        internal(ts()),
      );
      assert.equal(res.status, 200, res.body);
      assert.ok(!('base_port' in res.json), res.body);
      assert.equal(res.json.vpn_ip, vpnIp);
      // Its username and verifier too (the relay's front checks an HTTP CONNECT's Proxy-Authorization itself).
      assert.deepEqual(res.json.connections, [
        {
          connection_id: c.id,
          protocol: 'http',
          port: c.port,
          allow_from: ['203.0.113.0/24'],
          enabled: true,
          username: c.username,
          verifier: res.json.credentials[0].verifier,
          early_reply: true,
        },
      ]);
      assert.match(res.json.connections[0].verifier, /^v1\$/);
      assert.equal(res.json.credentials[0].username, c.username);
      const creds = (await ts().call('GET', `/api/devices/${d.id}/credentials`, undefined, dev(d.token))).json;
      assert.deepEqual(res.json.credentials, creds.items, 'the same items the device gets');
      assert.equal(res.json.credentials_version, creds.version);
      assert.equal((await ts().call('GET', `/api/devices/${d.id}`)).json.status, 'online');
      const fw = await ts().call('GET', `/api/internal/devices/${d.id}/forwarding`, undefined, internal(ts()));
      assert.deepEqual(fw.json.connections, res.json.connections);
      assert.deepEqual(fw.json.credentials, creds.items);
      assert.equal(fw.json.credentials_version, creds.version);
      const bulk = await ts().call(
        'POST',
        '/api/internal/tunnel/forwarding',
        { device_ids: [d.id, UNKNOWN.dev] },
        internal(ts()),
      );
      assert.deepEqual(Object.keys(bulk.json.devices), [d.id]);
      assert.deepEqual(bulk.json.devices[d.id], { vpn_ip: vpnIp, connections: res.json.connections });
      // A SOCKS5 connection carries its username and verifier as an HTTP one does (the relay's front checks
      // credentials itself).
      const sc = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'socks5' })).json;
      const fw2 = await ts().call('GET', `/api/internal/devices/${d.id}/forwarding`, undefined, internal(ts()));
      const s5 = fw2.json.connections.find((x: { connection_id: string }) => x.connection_id === sc.id);
      const item = fw2.json.credentials.find((x: { connection_id: string }) => x.connection_id === sc.id);
      assert.equal(s5.username, sc.username);
      assert.match(s5.verifier, /^v1\$/);
      assert.equal(s5.verifier, item.verifier, 'the verifier the device gets');
      // The relay may answer its CONNECTs early only while the device could refuse one for its destination
      // alone: a connection cap or a data limit takes it away (their refusals carry a reply code).
      assert.equal(s5.early_reply, true);
      const early = async (patch: Record<string, unknown>) => {
        assert.equal((await ts().call('PATCH', `/api/connections/${sc.id}`, patch)).status, 200);
        const fw = await ts().call('GET', `/api/internal/devices/${d.id}/forwarding`, undefined, internal(ts()));
        return fw.json.connections.find((x: { connection_id: string }) => x.connection_id === sc.id).early_reply;
      };
      assert.equal(await early({ max_connections: 5 }), false);
      assert.equal(await early({ max_connections: null, bandwidth_limit_bytes: 1_000_000 }), false);
      assert.equal(await early({ bandwidth_limit_bytes: null }), true);
      assert.equal(await early({ rate_limit_down_kbps: 1000 }), true, 'a rate limit refuses nothing');
      const off = await ts().call(
        'POST',
        '/api/internal/vpn/disconnected',
        { device_id: d.id, reason: 'timeout' },
        internal(ts()),
      );
      assert.equal(off.status, 200);
      assert.equal((await ts().call('GET', `/api/devices/${d.id}`)).json.status, 'offline');
      const ev = await ts().db.query<{ type: string; data: { reason: string } }>(
        `SELECT type, data FROM events WHERE device_id = $1 AND type LIKE 'device_%connected' ORDER BY id`,
        [d.id],
      );
      assert.deepEqual(
        ev.rows.map((e) => e.type),
        ['device_connected', 'device_disconnected'],
      );
      assert.equal(ev.rows[1]!.data.reason, 'timeout');
      // a second disconnect changes nothing and records nothing
      await ts().call('POST', '/api/internal/vpn/disconnected', { device_id: d.id }, internal(ts()));
      assert.equal(
        (await ts().db.query(`SELECT 1 FROM events WHERE device_id = $1 AND type = 'device_disconnected'`, [d.id])).rows
          .length,
        1,
      );
      assertProblem(
        await ts().call(
          'POST',
          '/api/internal/vpn/connected',
          { device_id: UNKNOWN.dev, vpn_ip: '192.168.255.9' },
          internal(ts()),
        ),
        404,
        'PP_ERR_API_NOT_FOUND',
      );
      assertProblem(
        await ts().call(
          'POST',
          '/api/internal/vpn/connected',
          { device_id: d.id, vpn_ip: '999.1.1.1' },
          internal(ts()),
        ),
        400,
        'PP_ERR_API_VALIDATION',
      );
    });

    test('usage ingestion by relay port adds nft bytes to the connection that owns the port (bytes_relay_month, not what limits apply to)', async () => {
      const d = await pairDevice(ts());
      const c = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' })).json;
      const res = await ts().call(
        'POST',
        '/api/internal/usage',
        {
          samples: [
            { port: c.port, bytes_in: 4000, bytes_out: 1000 },
            { port: 65000, bytes_in: 1, bytes_out: 1 },
          ],
        },
        internal(ts()),
      );
      assert.equal(res.status, 200, res.body);
      assert.equal(res.json.recorded, 1);
      await ts().call(
        'POST',
        '/api/internal/usage',
        { samples: [{ port: c.port, bytes_in: 1, bytes_out: 1 }] },
        internal(ts()),
      );
      const rows = await ts().db.query<{ source: string; bytes_in: string; bytes_out: string }>(
        'SELECT source, bytes_in, bytes_out FROM usage_hourly WHERE connection_id = $1',
        [c.id],
      );
      assert.deepEqual(
        rows.rows.map((r) => [r.source, Number(r.bytes_in), Number(r.bytes_out)]),
        [['nft', 4001, 1001]],
      );
      const got = (await ts().call('GET', `/api/connections/${c.id}`)).json;
      assert.equal(got.bytes_relay_month, 5002);
      assert.equal(got.bytes_used_month, 0, "the relay's count is not the device's");
      assertProblem(
        await ts().call(
          'POST',
          '/api/internal/usage',
          { samples: [{ port: c.port, bytes_in: -5, bytes_out: 0 }] },
          internal(ts()),
        ),
        400,
        'PP_ERR_API_VALIDATION',
      );
    });

    test('openvpn/auth: 200 for the right password, 403 wrong password, unknown user, disabled or expired connection', async () => {
      const d = await pairDevice(ts());
      const c = (
        await ts().call('POST', '/api/connections', {
          device_id: d.id,
          protocol: 'http',
          username: 'ovpn-user',
          password: 'ovpn-password-1',
        })
      ).json;
      const ok = await ts().call(
        'POST',
        '/api/internal/openvpn/auth',
        { username: 'ovpn-user', password: 'ovpn-password-1', untrusted_ip: '203.0.113.5' },
        internal(ts()),
      );
      assert.equal(ok.status, 200, ok.body);
      assert.deepEqual(ok.json, { ok: true, connection_id: c.id, device_id: d.id });
      assertProblem(
        await ts().call(
          'POST',
          '/api/internal/openvpn/auth',
          { username: 'ovpn-user', password: 'wrong-password' },
          internal(ts()),
        ),
        403,
        'PP_ERR_API_FORBIDDEN',
      );
      assertProblem(
        await ts().call('POST', '/api/internal/openvpn/auth', { username: 'ovpn-user' }, internal(ts())),
        403,
        'PP_ERR_API_FORBIDDEN',
      );
      assertProblem(
        await ts().call(
          'POST',
          '/api/internal/openvpn/auth',
          { username: 'nobody', password: 'ovpn-password-1' },
          internal(ts()),
        ),
        403,
        'PP_ERR_API_FORBIDDEN',
      );
      const conn = await ts().call(
        'POST',
        '/api/internal/openvpn/connect',
        { username: 'ovpn-user', vpn_ip: '10.9.0.6' },
        internal(ts()),
      );
      assert.equal(conn.status, 200);
      assert.equal(conn.json.device_vpn_ip, (await ts().call('GET', `/api/devices/${d.id}`)).json.vpn_ip);
      assert.equal(conn.json.client_ip, '10.9.0.6');
      await ts().call('PATCH', `/api/connections/${c.id}`, { enabled: false });
      assertProblem(
        await ts().call(
          'POST',
          '/api/internal/openvpn/auth',
          { username: 'ovpn-user', password: 'ovpn-password-1' },
          internal(ts()),
        ),
        403,
      );
      await ts().call('PATCH', `/api/connections/${c.id}`, {
        enabled: true,
        expires_at: new Date(ts().clock.now().getTime() - 1000).toISOString(),
      });
      assertProblem(
        await ts().call(
          'POST',
          '/api/internal/openvpn/auth',
          { username: 'ovpn-user', password: 'ovpn-password-1' },
          internal(ts()),
        ),
        403,
      );
      assertProblem(
        await ts().call(
          'POST',
          '/api/internal/openvpn/connect',
          { username: 'ovpn-user', vpn_ip: '10.9.0.6' },
          internal(ts()),
        ),
        403,
        'PP_ERR_API_FORBIDDEN',
      );
    });

    test("openvpn/auth checks the allow-list against untrusted_ip; connect answers the connection's own port and protocol", async () => {
      const d = await pairDevice(ts());
      const c = (
        await ts().call('POST', '/api/connections', {
          device_id: d.id,
          protocol: 'socks5',
          username: 'ovpn-allow',
          password: 'ovpn-password-2',
          allow_from: ['203.0.113.0/24', '198.51.100.7/32'],
        })
      ).json;
      const auth = (untrusted_ip?: string) =>
        ts().call(
          'POST',
          '/api/internal/openvpn/auth',
          {
            username: 'ovpn-allow',
            password: 'ovpn-password-2',
            ...(untrusted_ip === undefined ? {} : { untrusted_ip }),
          },
          internal(ts()),
        );
      for (const ip of ['203.0.113.77', '203.0.113.0', '198.51.100.7', '::ffff:203.0.113.5'])
        assert.equal((await auth(ip)).status, 200, ip);
      for (const ip of [undefined, '198.51.100.8', '203.0.114.1', '2001:db8::1', 'not-an-ip', '203.0.113.256', ''])
        assertProblem(await auth(ip), 403, 'PP_ERR_API_FORBIDDEN');
      const conn = await ts().call(
        'POST',
        '/api/internal/openvpn/connect',
        { username: 'ovpn-allow', vpn_ip: '10.9.0.7' },
        internal(ts()),
      );
      assert.equal(conn.status, 200, conn.body);
      assert.equal(conn.json.proxy_port, c.port, "the connection's own port: its listener on the device");
      assert.equal(conn.json.protocol, 'socks5');
      assert.equal(conn.json.password, 'ovpn-password-2');
      await ts().call('PATCH', `/api/connections/${c.id}`, { allow_from: [] });
      assert.equal((await auth()).status, 200, 'no allow-list: any address, even none');
      const h = (
        await ts().call('POST', '/api/connections', {
          device_id: d.id,
          protocol: 'http',
          username: 'ovpn-http',
          password: 'ovpn-password-3',
        })
      ).json;
      const hc = await ts().call(
        'POST',
        '/api/internal/openvpn/connect',
        { username: 'ovpn-http', vpn_ip: '10.9.0.8' },
        internal(ts()),
      );
      assert.deepEqual([hc.json.proxy_port, hc.json.protocol], [h.port, 'http']);
    });
  },
  { POCKETPROXY_PAIRING_RATE: '10000' },
);
