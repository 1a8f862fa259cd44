// Connections (what customers buy), the public rotation link, customers, relays and the overview.
import assert from 'node:assert/strict';
import { pairDevice, snapshot } from './harness.js';
import { assertProblem, perBackend, UNKNOWN } from './api.assert.js';
import { checkVerifier } from '../src/security/crypto.js';

perBackend(
  'connections',
  ({ ts, test }) => {
    test('201 with generated credentials, the lowest free port and a proxy_url; the password is not stored in plaintext', async () => {
      const d = await pairDevice(ts());
      const res = await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' });
      assert.equal(res.status, 201, res.body);
      const c = res.json;
      assert.match(c.id, /^con_/);
      assert.match(c.username, /^[A-Za-z0-9._-]{3,64}$/);
      assert.ok(c.password.length >= 16);
      assert.equal(c.host, 'relay.example.net');
      assert.ok(c.port >= 40000 && c.port <= 40199);
      assert.equal(c.proxy_url, `http://${c.username}:${c.password}@relay.example.net:${c.port}`);
      assert.equal(c.enabled, true);
      assert.deepEqual(c.allow_from, []);
      assert.match(c.rotation_url, /^http:\/\/relay\.example\.net:8080\/api\/public\/rotate\/[A-Za-z0-9_-]{16,}$/);
      const row = (await ts().db.query<Record<string, unknown>>('SELECT * FROM connections WHERE id = $1', [c.id]))
        .rows[0]!;
      const raw = JSON.stringify(row);
      assert.ok(!raw.includes(c.password), 'plaintext password in the row');
      assert.ok(!raw.includes(c.rotation_url.split('/').at(-1)), 'plaintext rotation token in the row');
      assert.ok(checkVerifier(c.password, row.password_verifier as string));
      assert.equal(ts().sys.ctx.box.open(row.password_enc as string), c.password);
      assert.equal(Number(row.port), c.port);
      const owner = await ts().db.query<{ owner_id: string }>('SELECT owner_id FROM ports WHERE port = $1', [c.port]);
      assert.equal(owner.rows[0]!.owner_id, c.id);
      // GET answers the same
      const got = await ts().call('GET', `/api/connections/${c.id}`);
      assert.equal(got.json.proxy_url, c.proxy_url);
    });

    test('201 with given credentials, socks5, customer, limits and allow-list', async () => {
      const d = await pairDevice(ts());
      const cus = (await ts().call('POST', '/api/customers', { name: 'Acme given' })).json;
      const res = await ts().call('POST', '/api/connections', {
        device_id: d.id,
        customer_id: cus.id,
        protocol: 'socks5',
        username: 'given.user',
        password: 'S3cret!pass',
        bandwidth_limit_bytes: 1_000_000,
        expires_at: '2027-01-01T00:00:00Z',
        allow_from: ['203.0.113.0/24'],
      });
      assert.equal(res.status, 201, res.body);
      assert.equal(res.json.username, 'given.user');
      assert.equal(res.json.password, 'S3cret!pass');
      assert.equal(res.json.proxy_url, `socks5://given.user:S3cret!pass@relay.example.net:${res.json.port}`);
      assert.equal(res.json.customer_id, cus.id);
      assert.equal(res.json.bandwidth_limit_bytes, 1_000_000);
      assert.equal(res.json.expires_at, '2027-01-01T00:00:00.000Z');
      assert.deepEqual(res.json.allow_from, ['203.0.113.0/24']);
      assert.equal((await ts().call('GET', `/api/customers/${cus.id}`)).json.connections, 1);
      const list = await ts().call('GET', `/api/connections?customer_id=${cus.id}`);
      assert.deepEqual(
        list.json.items.map((x: { id: string }) => x.id),
        [res.json.id],
      );
      const byDev = await ts().call('GET', `/api/connections?device_id=${d.id}`);
      assert.equal(byDev.json.total, 1);
    });

    test('409 duplicate username, 404 unknown device/customer, 400 bad CIDR/unknown field/weak password — nothing created', async () => {
      const d = await pairDevice(ts());
      await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http', username: 'taken-name' });
      const before = await snapshot(ts().db);
      assertProblem(
        await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http', username: 'taken-name' }),
        409,
        'PP_ERR_API_CONFLICT',
      );
      assertProblem(
        await ts().call('POST', '/api/connections', { device_id: UNKNOWN.dev, protocol: 'http' }),
        404,
        'PP_ERR_API_NOT_FOUND',
      );
      assertProblem(
        await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http', customer_id: UNKNOWN.cus }),
        404,
        'PP_ERR_API_NOT_FOUND',
      );
      for (const body of [
        { device_id: d.id, protocol: 'http', allow_from: ['10.0.0.0/33'] },
        { device_id: d.id, protocol: 'http', allow_from: ['not-a-cidr'] },
        { device_id: d.id, protocol: 'http', allow_from: '10.0.0.0/8' },
        { device_id: d.id, protocol: 'http', port: 40001 },
        { device_id: d.id, protocol: 'ftp' },
        { device_id: d.id },
        { device_id: d.id, protocol: 'http', password: 'short' },
        { device_id: d.id, protocol: 'http', password: 'has space in it' },
        { device_id: d.id, protocol: 'http', username: 'a b' },
        { device_id: d.id, protocol: 'http', bandwidth_limit_bytes: -1 },
        { device_id: d.id, protocol: 'http', expires_at: 'tomorrow' },
        { device_id: 'dev_x', protocol: 'http' },
      ]) {
        assertProblem(await ts().call('POST', '/api/connections', body), 400, 'PP_ERR_API_VALIDATION');
      }
      assert.equal(await snapshot(ts().db), before);
    });

    test('PATCH changes credentials and limits; 409 taken username; 404 unknown; GET 404', async () => {
      const d = await pairDevice(ts());
      const c = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' })).json;
      await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http', username: 'other-user' });
      const res = await ts().call('PATCH', `/api/connections/${c.id}`, {
        username: 'renamed',
        password: 'N3w-password',
        enabled: false,
        allow_from: ['198.51.100.7/32'],
        bandwidth_limit_bytes: null,
        regenerate_rotation_token: true,
      });
      assert.equal(res.status, 200, res.body);
      assert.equal(res.json.username, 'renamed');
      assert.equal(res.json.password, 'N3w-password');
      assert.equal(res.json.enabled, false);
      assert.deepEqual(res.json.allow_from, ['198.51.100.7/32']);
      assert.equal(res.json.port, c.port);
      assert.notEqual(res.json.rotation_url, c.rotation_url);
      const row = (
        await ts().db.query<{ password_verifier: string }>('SELECT password_verifier FROM connections WHERE id = $1', [
          c.id,
        ])
      ).rows[0]!;
      assert.ok(checkVerifier('N3w-password', row.password_verifier));
      assert.ok(!checkVerifier(c.password, row.password_verifier));
      const before = await snapshot(ts().db);
      assertProblem(
        await ts().call('PATCH', `/api/connections/${c.id}`, { username: 'other-user' }),
        409,
        'PP_ERR_API_CONFLICT',
      );
      assertProblem(await ts().call('PATCH', `/api/connections/${c.id}`, { port: 1 }), 400, 'PP_ERR_API_VALIDATION');
      assertProblem(
        await ts().call('PATCH', `/api/connections/${c.id}`, { device_id: d.id }),
        400,
        'PP_ERR_API_VALIDATION',
      );
      assertProblem(
        await ts().call('PATCH', `/api/connections/${c.id}`, { customer_id: UNKNOWN.cus }),
        404,
        'PP_ERR_API_NOT_FOUND',
      );
      assertProblem(
        await ts().call('PATCH', `/api/connections/${UNKNOWN.con}`, { enabled: true }),
        404,
        'PP_ERR_API_NOT_FOUND',
      );
      assertProblem(await ts().call('GET', `/api/connections/${UNKNOWN.con}`), 404, 'PP_ERR_API_NOT_FOUND');
      assertProblem(await ts().call('GET', '/api/connections/nope'), 404);
      assert.equal(await snapshot(ts().db), before);
    });

    test('limits an operator sells: max_connections and rate limits stored, answered, changed and cleared', async () => {
      const d = await pairDevice(ts());
      const res = await ts().call('POST', '/api/connections', {
        device_id: d.id,
        protocol: 'socks5',
        max_connections: 50,
        rate_limit_down_kbps: 20_000,
        rate_limit_up_kbps: 5_000,
      });
      assert.equal(res.status, 201, res.body);
      assert.deepEqual(
        [res.json.max_connections, res.json.rate_limit_down_kbps, res.json.rate_limit_up_kbps],
        [50, 20_000, 5_000],
      );
      const row = (
        await ts().db.query<Record<string, unknown>>(
          'SELECT max_connections, rate_limit_down_kbps, rate_limit_up_kbps FROM connections WHERE id = $1',
          [res.json.id],
        )
      ).rows[0]!;
      assert.deepEqual(
        [row.max_connections, row.rate_limit_down_kbps, row.rate_limit_up_kbps].map(Number),
        [50, 20_000, 5_000],
      );
      // the bounds themselves are valid
      const edge = await ts().call('PATCH', `/api/connections/${res.json.id}`, {
        max_connections: 100_000,
        rate_limit_down_kbps: 1,
        rate_limit_up_kbps: 10_000_000,
      });
      assert.equal(edge.status, 200, edge.body);
      assert.deepEqual(
        [edge.json.max_connections, edge.json.rate_limit_down_kbps, edge.json.rate_limit_up_kbps],
        [100_000, 1, 10_000_000],
      );
      // a PATCH that does not name a limit keeps it; null clears it
      const kept = await ts().call('PATCH', `/api/connections/${res.json.id}`, { rate_limit_up_kbps: null });
      assert.deepEqual(
        [kept.json.max_connections, kept.json.rate_limit_down_kbps, kept.json.rate_limit_up_kbps],
        [100_000, 1, null],
      );
      const got = (await ts().call('GET', `/api/connections/${res.json.id}`)).json;
      assert.deepEqual([got.max_connections, got.rate_limit_down_kbps, got.rate_limit_up_kbps], [100_000, 1, null]);
      const listed = (await ts().call('GET', `/api/connections?device_id=${d.id}`)).json.items[0];
      assert.equal(listed.max_connections, 100_000);
      // without limits: null, not 0
      const plain = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' })).json;
      assert.deepEqual(
        [
          plain.max_connections,
          plain.rate_limit_down_kbps,
          plain.rate_limit_up_kbps,
          plain.bytes_used_month,
          plain.bytes_relay_month,
        ],
        [null, null, null, 0, 0],
      );
    });

    test('400 for out-of-range or mistyped limits, on create and on PATCH, naming the field; nothing changes', async () => {
      const d = await pairDevice(ts());
      ts().push.takeSynced(); // the pairing's own sync (its relay learns the new device)
      const c = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http', max_connections: 5 }))
        .json;
      const before = await snapshot(ts().db);
      const bad: [string, unknown][] = [
        ['max_connections', 0],
        ['max_connections', -1],
        ['max_connections', 100_001],
        ['max_connections', 1.5],
        ['max_connections', '10'],
        ['max_connections', true],
        ['rate_limit_down_kbps', 0],
        ['rate_limit_down_kbps', 10_000_001],
        ['rate_limit_down_kbps', 0.5],
        ['rate_limit_down_kbps', '1000'],
        ['rate_limit_down_kbps', 1e308],
        ['rate_limit_up_kbps', 0],
        ['rate_limit_up_kbps', -5],
        ['rate_limit_up_kbps', 10_000_001],
        ['rate_limit_up_kbps', [1]],
        ['rate_limit_up_kbps', { kbps: 1 }],
      ];
      for (const [field, value] of bad) {
        for (const [m, u, body] of [
          ['POST', '/api/connections', { device_id: d.id, protocol: 'http', [field]: value }],
          ['PATCH', `/api/connections/${c.id}`, { [field]: value }],
        ] as const) {
          const res = await ts().call(m, u, body);
          assertProblem(res, 400, 'PP_ERR_API_VALIDATION');
          assert.ok(
            res.json.errors.some((e: { path: string }) => e.path === field),
            `${m} ${field}=${JSON.stringify(value)}: ${res.body}`,
          );
        }
      }
      const msg = (
        await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http', rate_limit_down_kbps: 0 })
      ).json;
      assert.match(msg.detail, /rate_limit_down_kbps/);
      assert.equal(await snapshot(ts().db), before);
      assert.deepEqual(
        ts().push.synced.filter((s) => s.deviceId === d.id).length,
        1,
        'only the valid create was pushed',
      );
    });

    test('every change of a connection asks its relay to sync the device (create, PATCH, password, DELETE), after commit; a relay that is down fails nothing', async () => {
      const d = await pairDevice(ts());
      const localRelay = (
        await ts().db.query<{ push_url: string }>(
          'SELECT r.push_url FROM devices d JOIN relays r ON r.id = d.relay_id WHERE d.id = $1',
          [d.id],
        )
      ).rows[0]!.push_url;
      ts().push.takeSynced();
      const c = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' })).json;
      assert.deepEqual(ts().push.synced, [{ pushUrl: localRelay, deviceId: d.id }]);
      ts().push.takeSynced();
      for (const patch of [
        { enabled: false },
        { password: 'Another-pass-1' },
        { allow_from: ['198.51.100.0/24'] },
        { max_connections: 3 },
        { expires_at: null },
        { customer_id: null },
      ]) {
        assert.equal((await ts().call('PATCH', `/api/connections/${c.id}`, patch)).status, 200);
        assert.deepEqual(ts().push.takeSynced(), [d.id], JSON.stringify(patch));
      }
      // refused changes are not pushed
      await ts().call('PATCH', `/api/connections/${c.id}`, { max_connections: 0 });
      await ts().call('PATCH', `/api/connections/${UNKNOWN.con}`, { enabled: true });
      assert.deepEqual(ts().push.takeSynced(), []);
      // the relay down or refusing: the API answers as usual
      for (const answer of [new Error('connect ECONNREFUSED'), false]) {
        ts().push.syncAnswer = answer;
        const r = await ts().call('PATCH', `/api/connections/${c.id}`, { enabled: true });
        assert.equal(r.status, 200, r.body);
        assert.deepEqual(ts().push.takeSynced(), [d.id]);
      }
      ts().push.syncAnswer = true;
      // the sync comes after commit: what the relay then reads is already the new state
      let seen: string | undefined;
      const orig = ts().push.sync.bind(ts().push);
      ts().push.sync = async (url, id) => {
        seen = (await ts().db.query<{ username: string }>('SELECT username FROM connections WHERE id = $1', [c.id]))
          .rows[0]?.username;
        return orig(url, id);
      };
      try {
        await ts().call('PATCH', `/api/connections/${c.id}`, { username: 'synced-after-commit' });
        assert.equal(seen, 'synced-after-commit');
      } finally {
        ts().push.sync = orig;
      }
      ts().push.takeSynced();
      assert.equal((await ts().call('DELETE', `/api/connections/${c.id}`)).status, 204);
      assert.deepEqual(ts().push.takeSynced(), [d.id]);
      // deleting the device: its relay is still found (looked up before the row goes)
      await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' });
      ts().push.takeSynced();
      assert.equal((await ts().call('DELETE', `/api/devices/${d.id}`)).status, 204);
      assert.deepEqual(ts().push.synced, [{ pushUrl: localRelay, deviceId: d.id }]);
    });

    test('DELETE frees the port; the next create reuses it (lowest first)', async () => {
      const d = await pairDevice(ts());
      const a = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' })).json;
      const b = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' })).json;
      assert.ok(b.port > a.port);
      const del = await ts().call('DELETE', `/api/connections/${a.id}`);
      assert.equal(del.status, 204);
      assertProblem(await ts().call('GET', `/api/connections/${a.id}`), 404);
      assertProblem(await ts().call('DELETE', `/api/connections/${a.id}`), 404, 'PP_ERR_API_NOT_FOUND');
      const c = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'socks5' })).json;
      assert.equal(c.port, a.port);
    });

    test('GET /api/connections/:id/ovpn is 404 PP_ERR_API_OPENVPN_DISABLED when OpenVPN is off; 404 unknown connection', async () => {
      const d = await pairDevice(ts());
      const c = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' })).json;
      assert.equal(c.ovpn_url, null, 'no profile to offer');
      assert.equal((await ts().call('GET', `/api/connections/${c.id}`)).json.ovpn_url, null);
      assertProblem(await ts().call('GET', `/api/connections/${c.id}/ovpn`), 404, 'PP_ERR_API_OPENVPN_DISABLED');
      assertProblem(await ts().call('GET', `/api/connections/${UNKNOWN.con}/ovpn`), 404, 'PP_ERR_API_NOT_FOUND');
    });

    test('rotation link: 202 queues rotate_ip, a second call is already_queued, 429 past the limit, 404 unknown token', async () => {
      const d = await pairDevice(ts());
      const c = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' })).json;
      const path = new URL(c.rotation_url).pathname;
      const pub = { authorization: '' };
      const first = await ts().call('GET', path, undefined, pub);
      assert.equal(first.status, 202, first.body);
      assert.equal(first.json.already_queued, false);
      assert.equal(first.json.status, 'pending');
      const cmds = (await ts().call('GET', `/api/devices/${d.id}/commands`)).json.items;
      assert.deepEqual(
        cmds.map((x: { id: string; type: string; source: string }) => [x.id, x.type, x.source]),
        [[first.json.command_id, 'rotate_ip', 'rotation_link']],
      );
      const second = await ts().call('GET', path, undefined, pub);
      assert.equal(second.status, 202);
      assert.equal(second.json.already_queued, true);
      assert.equal(second.json.command_id, first.json.command_id);
      const limit = ts().sys.ctx.config.rotateLinkRatePerMin;
      for (let i = 2; i < limit; i++) assert.equal((await ts().call('GET', path, undefined, pub)).status, 202);
      const limited = await ts().call('GET', path, undefined, pub);
      assertProblem(limited, 429, 'PP_ERR_API_RATE_LIMITED');
      assert.equal((await ts().call('GET', `/api/devices/${d.id}/commands`)).json.total, 1);
      assertProblem(
        await ts().call('GET', `/api/public/rotate/${'A'.repeat(32)}`, undefined, pub),
        404,
        'PP_ERR_API_NOT_FOUND',
      );
      assertProblem(await ts().call('GET', '/api/public/rotate/short', undefined, pub), 404);
      ts().clock.advance(60_000);
      assert.equal((await ts().call('GET', path, undefined, pub)).status, 202);
    });

    test('401 without a session on connection routes', async () => {
      for (const [m, u] of [
        ['GET', '/api/connections'],
        ['POST', '/api/connections'],
        ['GET', `/api/connections/${UNKNOWN.con}`],
        ['PATCH', `/api/connections/${UNKNOWN.con}`],
        ['DELETE', `/api/connections/${UNKNOWN.con}`],
        ['GET', `/api/connections/${UNKNOWN.con}/ovpn`],
      ] as const) {
        assertProblem(
          await ts().call(m, u, m === 'POST' || m === 'PATCH' ? {} : undefined, { authorization: '' }),
          401,
        );
      }
    });
  },
  { POCKETPROXY_PAIRING_RATE: '10000' },
);

perBackend('customers, relays, overview', ({ ts, test }) => {
  test('customers CRUD: 201, get, list, PUT, DELETE 204; 409 case-insensitive duplicate; 404; 400', async () => {
    const res = await ts().call('POST', '/api/customers', {
      name: 'Acme Ltd',
      email: 'ops@acme.example',
      notes: 'pays on time',
    });
    assert.equal(res.status, 201, res.body);
    assert.match(res.json.id, /^cus_/);
    assert.deepEqual(
      [res.json.name, res.json.email, res.json.notes, res.json.connections],
      ['Acme Ltd', 'ops@acme.example', 'pays on time', 0],
    );
    const id = res.json.id;
    assert.equal((await ts().call('GET', `/api/customers/${id}`)).json.name, 'Acme Ltd');
    assert.ok((await ts().call('GET', '/api/customers')).json.items.some((c: { id: string }) => c.id === id));
    const before = await snapshot(ts().db);
    assertProblem(await ts().call('POST', '/api/customers', { name: 'ACME ltd' }), 409, 'PP_ERR_API_CONFLICT');
    assertProblem(
      await ts().call('POST', '/api/customers', { name: 'x', email: 'nope' }),
      400,
      'PP_ERR_API_VALIDATION',
    );
    assertProblem(await ts().call('POST', '/api/customers', { name: 'x', vip: true }), 400, 'PP_ERR_API_VALIDATION');
    assertProblem(await ts().call('POST', '/api/customers', { notes: 'no name' }), 400, 'PP_ERR_API_VALIDATION');
    assert.equal(await snapshot(ts().db), before);
    const put = await ts().call('PUT', `/api/customers/${id}`, { name: 'Acme Group' });
    assert.equal(put.status, 200, put.body);
    assert.deepEqual([put.json.name, put.json.email, put.json.notes], ['Acme Group', null, '']);
    // renaming to its own name in another case is not a conflict
    assert.equal((await ts().call('PUT', `/api/customers/${id}`, { name: 'ACME GROUP' })).status, 200);
    const other = (await ts().call('POST', '/api/customers', { name: 'Beta' })).json;
    assertProblem(
      await ts().call('PUT', `/api/customers/${other.id}`, { name: 'acme group' }),
      409,
      'PP_ERR_API_CONFLICT',
    );
    assertProblem(
      await ts().call('PUT', `/api/customers/${UNKNOWN.cus}`, { name: 'Gamma' }),
      404,
      'PP_ERR_API_NOT_FOUND',
    );
    assertProblem(await ts().call('GET', `/api/customers/${UNKNOWN.cus}`), 404, 'PP_ERR_API_NOT_FOUND');
    assert.equal((await ts().call('DELETE', `/api/customers/${other.id}`)).status, 204);
    assertProblem(await ts().call('DELETE', `/api/customers/${other.id}`), 404, 'PP_ERR_API_NOT_FOUND');
    assertProblem(await ts().call('GET', '/api/customers', undefined, { authorization: '' }), 401);
  });

  test('deleting a customer keeps its connections, unassigned', async () => {
    const d = await pairDevice(ts());
    const cus = (await ts().call('POST', '/api/customers', { name: 'Leaving' })).json;
    const c = (await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http', customer_id: cus.id }))
      .json;
    assert.equal((await ts().call('DELETE', `/api/customers/${cus.id}`)).status, 204);
    const after = await ts().call('GET', `/api/connections/${c.id}`);
    assert.equal(after.status, 200);
    assert.equal(after.json.customer_id, null);
  });

  test('relays: list has local; create 201; get; patch; duplicate 409; 404; 400', async () => {
    const list = await ts().call('GET', '/api/relays');
    assert.equal(list.status, 200);
    const local = list.json.items.find((r: { name: string }) => r.name === 'local');
    assert.ok(local, list.body);
    assert.equal(local.host, 'relay.example.net');
    const res = await ts().call('POST', '/api/relays', { name: 'eu-2', host: 'eu2.example.net' });
    assert.equal(res.status, 201, res.body);
    assert.match(res.json.id, /^rly_/);
    assert.deepEqual(
      [res.json.tunnel_port, res.json.push_url, res.json.enabled, res.json.devices_online],
      [1194, 'http://127.0.0.1:8081', true, 0],
    );
    assert.equal((await ts().call('GET', `/api/relays/${res.json.id}`)).json.name, 'eu-2');
    const p = await ts().call('PATCH', `/api/relays/${res.json.id}`, { host: '203.0.113.9', enabled: false });
    assert.equal(p.status, 200, p.body);
    assert.deepEqual([p.json.name, p.json.host, p.json.enabled], ['eu-2', '203.0.113.9', false]);
    const before = await snapshot(ts().db);
    assertProblem(
      await ts().call('POST', '/api/relays', { name: 'eu-2', host: 'x.example.net' }),
      409,
      'PP_ERR_API_CONFLICT',
    );
    assertProblem(
      await ts().call('PATCH', `/api/relays/${res.json.id}`, { name: 'local' }),
      409,
      'PP_ERR_API_CONFLICT',
    );
    assertProblem(await ts().call('PATCH', `/api/relays/${UNKNOWN.rly}`, { host: 'x' }), 404, 'PP_ERR_API_NOT_FOUND');
    assertProblem(await ts().call('GET', `/api/relays/${UNKNOWN.rly}`), 404, 'PP_ERR_API_NOT_FOUND');
    for (const body of [
      { name: 'x' },
      { name: 'x', host: 'bad host!' },
      { name: 'x', host: 'h', tunnel_port: 70000 },
      { name: 'x', host: 'h', push_url: 'not a url' },
    ]) {
      assertProblem(await ts().call('POST', '/api/relays', body), 400, 'PP_ERR_API_VALIDATION');
    }
    assert.equal(await snapshot(ts().db), before);
    // a device can be paired onto a named relay
    const code = await ts().call('POST', '/api/pairing-codes', { relay_id: res.json.id });
    const paired = await ts().call('POST', '/api/public/pair', { code: code.json.code }, { authorization: '' });
    assert.equal(paired.json.relay.id, res.json.id);
    assert.equal(paired.json.relay.host, '203.0.113.9');
  });

  test('GET /api/overview counts devices, connections, customers, traffic and recent events', async () => {
    const o = await ts().call('GET', '/api/overview');
    assert.equal(o.status, 200, o.body);
    const devices = (await ts().db.query<{ n: number }>('SELECT count(*)::int AS n FROM devices')).rows[0]!.n;
    assert.equal(o.json.devices.total, devices);
    assert.equal(o.json.devices.online + o.json.devices.offline, devices);
    assert.equal(
      o.json.customers,
      (await ts().db.query<{ n: number }>('SELECT count(*)::int AS n FROM customers')).rows[0]!.n,
    );
    const conns = (
      await ts().db.query<{ enabled: number; blocked: number }>(
        `SELECT (count(*) FILTER (WHERE enabled))::int AS enabled,
                (count(*) FILTER (WHERE enabled AND blocked_reason IS NOT NULL))::int AS blocked FROM connections`,
      )
    ).rows[0]!;
    // Blocked (bandwidth, expired) is not disabled: the operator ticked it on, the server holds it.
    assert.deepEqual([o.json.connections.enabled, o.json.connections.blocked], [conns.enabled, conns.blocked]);
    assert.equal(typeof o.json.traffic.today_bytes, 'number');
    assert.ok(o.json.recent_events.some((e: { type: string }) => e.type === 'device_paired'));
    assertProblem(await ts().call('GET', '/api/overview', undefined, { authorization: '' }), 401);
  });
});
