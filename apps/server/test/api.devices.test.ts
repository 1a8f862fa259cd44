// Devices (admin side): list/filter/search/get/patch/delete, manual registration, IP history, usage,
// pairing codes and pairing (single use, expiry, rate limit).
import assert from 'node:assert/strict';
import QRCode from 'qrcode';
import {
  checkRelayKeyEndorsement,
  encodeKey,
  generateKeyPair,
  serverKeyFingerprint,
  serverKeyFromSeed,
} from '@pocketproxy/protocol';
import { loadSecrets } from '../src/secrets.js';
import { pairDevice, snapshot } from './harness.js';
import { assertProblem, dev, perBackend, UNKNOWN } from './api.assert.js';

perBackend(
  'devices',
  ({ ts, test }) => {
    test('GET /api/devices lists, filters by status, searches and pages', async () => {
      const a = await pairDevice(ts(), 'list-alpha');
      const b = await pairDevice(ts(), 'list-beta');
      await ts().call(
        'POST',
        `/api/devices/${a.id}/heartbeat`,
        { public_ip: '198.18.7.7', metrics: { carrier: 'CarrierX' } },
        dev(a.token),
      );
      const all = await ts().call('GET', '/api/devices?limit=1000');
      assert.equal(all.status, 200);
      assert.ok(all.json.total >= 2);
      const names = all.json.items.map((d: { name: string }) => d.name);
      assert.deepEqual(names, [...names].sort());
      const online = await ts().call('GET', '/api/devices?status=online&limit=1000');
      assert.ok(online.json.items.every((d: { status: string }) => d.status === 'online'));
      assert.ok(online.json.items.some((d: { id: string }) => d.id === a.id));
      assert.ok(!online.json.items.some((d: { id: string }) => d.id === b.id));
      const offline = await ts().call('GET', '/api/devices?status=offline&limit=1000');
      assert.ok(offline.json.items.some((d: { id: string }) => d.id === b.id));
      assert.deepEqual(
        (await ts().call('GET', '/api/devices?q=list-be')).json.items.map((d: { id: string }) => d.id),
        [b.id],
      );
      assert.deepEqual(
        (await ts().call('GET', '/api/devices?q=198.18.7')).json.items.map((d: { id: string }) => d.id),
        [a.id],
      );
      assert.deepEqual(
        (await ts().call('GET', '/api/devices?q=carrierx')).json.items.map((d: { id: string }) => d.id),
        [a.id],
      );
      // LIKE wildcards are literal
      assert.equal((await ts().call('GET', '/api/devices?q=%25')).json.items.length, 0);
      assert.equal((await ts().call('GET', '/api/devices?q=a_b')).json.items.length, 0);
      const page = await ts().call('GET', '/api/devices?limit=1&offset=1');
      assert.equal(page.json.items.length, 1);
      assert.equal(page.json.items[0].id, all.json.items[1].id);
    });

    test('400: bad list queries', async () => {
      for (const q of ['status=dead', 'limit=0', 'limit=1001', 'offset=-1', 'limit=abc', `q=${'x'.repeat(101)}`]) {
        assertProblem(await ts().call('GET', `/api/devices?${q}`), 400, 'PP_ERR_API_VALIDATION');
      }
    });

    test('GET /api/devices/:id answers the device without secrets; 404 unknown and malformed ids', async () => {
      const d = await pairDevice(ts(), 'get-me');
      const res = await ts().call('GET', `/api/devices/${d.id}`);
      assert.equal(res.status, 200);
      assert.equal(res.json.id, d.id);
      assert.equal(res.json.name, 'get-me');
      // no device-level ports any more: a device is reached only through its connections' ports
      assert.ok(!('ports' in res.json) && !('base_port' in res.json), res.body);
      assert.ok(!('token_hash' in res.json) && !('psk_enc' in res.json));
      assert.ok(!res.body.includes(d.token));
      assertProblem(await ts().call('GET', `/api/devices/${UNKNOWN.dev}`), 404, 'PP_ERR_API_NOT_FOUND');
      for (const bad of ['123', 'con_0000000000000000', 'dev_', "dev_'%20OR%201=1", 'dev_../../etc']) {
        assertProblem(await ts().call('GET', `/api/devices/${bad}`), 404, 'PP_ERR_API_NOT_FOUND');
      }
    });

    test('401 without a session on every device route', async () => {
      const noAuth = { authorization: '' };
      for (const [m, u] of [
        ['GET', '/api/devices'],
        ['POST', '/api/devices'],
        ['GET', `/api/devices/${UNKNOWN.dev}`],
        ['PATCH', `/api/devices/${UNKNOWN.dev}`],
        ['DELETE', `/api/devices/${UNKNOWN.dev}`],
        ['POST', `/api/devices/${UNKNOWN.dev}/commands`],
        ['GET', `/api/devices/${UNKNOWN.dev}/commands`],
        ['GET', `/api/devices/${UNKNOWN.dev}/ip-history`],
        ['GET', `/api/devices/${UNKNOWN.dev}/usage`],
        ['POST', '/api/pairing-codes'],
      ] as const) {
        assertProblem(
          await ts().call(m, u, m === 'GET' || m === 'DELETE' ? undefined : {}, noAuth),
          401,
          'PP_ERR_API_UNAUTHENTICATED',
        );
      }
    });

    test('PATCH /api/devices/:id renames, describes and sets auto-rotation', async () => {
      const d = await pairDevice(ts(), 'patch-me');
      const res = await ts().call('PATCH', `/api/devices/${d.id}`, {
        name: 'patched',
        description: 'on the shelf',
        rotation_interval_s: 600,
      });
      assert.equal(res.status, 200, res.body);
      assert.equal(res.json.name, 'patched');
      assert.equal(res.json.description, 'on the shelf');
      assert.equal(res.json.rotation_interval_s, 600);
      assert.equal(Date.parse(res.json.next_rotation_at), ts().clock.now().getTime() + 600_000);
      const off = await ts().call('PATCH', `/api/devices/${d.id}`, { rotation_interval_s: null });
      assert.equal(off.json.rotation_interval_s, null);
      assert.equal(off.json.next_rotation_at, null);
      assert.equal(off.json.name, 'patched');
      for (const n of [60, 7 * 86400])
        assert.equal((await ts().call('PATCH', `/api/devices/${d.id}`, { rotation_interval_s: n })).status, 200);
    });

    test('PATCH 400 (bounds, unknown fields, empty name), 404, 409 name conflict — nothing changes', async () => {
      const d = await pairDevice(ts(), 'conflict-a');
      await pairDevice(ts(), 'conflict-b');
      const before = await snapshot(ts().db);
      for (const body of [
        { rotation_interval_s: 59 },
        { rotation_interval_s: 7 * 86400 + 1 },
        { rotation_interval_s: 1.5 },
        { rotation_interval_s: '600' },
        { name: '' },
        { name: '   ' },
        { status: 'online' },
        { token_hash: 'x' },
        { name: 'x'.repeat(65) },
      ]) {
        assertProblem(await ts().call('PATCH', `/api/devices/${d.id}`, body), 400, 'PP_ERR_API_VALIDATION');
      }
      assertProblem(
        await ts().call('PATCH', `/api/devices/${d.id}`, { name: 'conflict-b' }),
        409,
        'PP_ERR_API_CONFLICT',
      );
      assertProblem(
        await ts().call('PATCH', `/api/devices/${UNKNOWN.dev}`, { name: 'zzz' }),
        404,
        'PP_ERR_API_NOT_FOUND',
      );
      assertProblem(
        await ts().call('PATCH', `/api/devices/${d.id}`, { relay_id: UNKNOWN.rly }),
        404,
        'PP_ERR_API_NOT_FOUND',
      );
      assertProblem(await ts().call('PATCH', '/api/devices/bogus', { name: 'zzz' }), 404);
      assert.equal(await snapshot(ts().db), before);
    });

    test('heartbeat proxy counters are kept per device (proxy_stats); a heartbeat without them keeps the last; bad ones are refused and change nothing', async () => {
      const d = await pairDevice(ts(), 'proxy-stats');
      assert.equal((await ts().call('GET', `/api/devices/${d.id}`)).json.proxy_stats, null);
      const stats = {
        listeners: 3,
        open: 2,
        admitted: 1,
        handshake_timeouts: 64,
        idle_closed: 0,
        auth_failures: 5,
        denied: 2,
        unauth_refused_per_address: 936,
        unauth_refused_total: 0,
        unauth_active: 0,
        listen_failures: 0,
      };
      assert.equal(
        (await ts().call('POST', `/api/devices/${d.id}/heartbeat`, { proxy: stats }, dev(d.token))).status,
        200,
      );
      assert.deepEqual((await ts().call('GET', `/api/devices/${d.id}`)).json.proxy_stats, stats);
      assert.equal((await ts().call('POST', `/api/devices/${d.id}/heartbeat`, {}, dev(d.token))).status, 200);
      assert.deepEqual((await ts().call('GET', `/api/devices/${d.id}`)).json.proxy_stats, stats);
      const before = await snapshot(ts().db);
      for (const bad of [
        { ...stats, denied: -1 },
        { ...stats, extra: 1 },
        { listeners: 1 },
        { ...stats, open: 'many' },
      ]) {
        assertProblem(
          await ts().call('POST', `/api/devices/${d.id}/heartbeat`, { proxy: bad }, dev(d.token)),
          400,
          'PP_ERR_API_VALIDATION',
        );
      }
      assert.equal(await snapshot(ts().db), before);
    });

    test('POST /api/devices registers by hand (201, credentials once); duplicate name 409; unknown relay 404', async () => {
      const res = await ts().call('POST', '/api/devices', { name: 'manual-1', description: 'by hand' });
      assert.equal(res.status, 201, res.body);
      assert.match(res.json.device.id, /^dev_/);
      assert.equal(res.json.device.name, 'manual-1');
      assert.ok(res.json.auth_token.length >= 32);
      assert.equal(typeof res.json.tunnel.psk, 'string');
      assert.ok(!('base_port' in res.json) && !('base_port' in res.json.device), 'no device-level ports');
      // the token works for the device routes
      const hb = await ts().call('POST', `/api/devices/${res.json.device.id}/heartbeat`, {}, dev(res.json.auth_token));
      assert.equal(hb.status, 200, hb.body);
      // and is stored only hashed
      const row = (
        await ts().db.query<Record<string, unknown>>('SELECT * FROM devices WHERE id = $1', [res.json.device.id])
      ).rows[0]!;
      assert.ok(!JSON.stringify(row).includes(res.json.auth_token));
      assert.ok(!JSON.stringify(row).includes(res.json.tunnel.psk));
      const before = await snapshot(ts().db);
      assertProblem(await ts().call('POST', '/api/devices', { name: 'manual-1' }), 409, 'PP_ERR_API_CONFLICT');
      assertProblem(
        await ts().call('POST', '/api/devices', { name: 'manual-2', relay_id: UNKNOWN.rly }),
        404,
        'PP_ERR_API_NOT_FOUND',
      );
      assertProblem(await ts().call('POST', '/api/devices', {}), 400, 'PP_ERR_API_VALIDATION');
      assertProblem(
        await ts().call('POST', '/api/devices', { name: 'manual-3', base_port: 1 }),
        400,
        'PP_ERR_API_VALIDATION',
      );
      assert.equal(await snapshot(ts().db), before);
    });

    test('DELETE /api/devices/:id removes the device, its connections and ports; its token stops working', async () => {
      const d = await pairDevice(ts(), 'delete-me');
      const c = await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' });
      assert.equal(c.status, 201, c.body);
      const del = await ts().call('DELETE', `/api/devices/${d.id}`);
      assert.equal(del.status, 204);
      assert.equal(del.body, '');
      assertProblem(await ts().call('GET', `/api/devices/${d.id}`), 404);
      assertProblem(await ts().call('GET', `/api/connections/${c.json.id}`), 404);
      const owned = await ts().db.query('SELECT port FROM ports WHERE owner_id = ANY($1::text[])', [[d.id, c.json.id]]);
      assert.equal(owned.rows.length, 0);
      assertProblem(await ts().call('POST', `/api/devices/${d.id}/heartbeat`, {}, dev(d.token)), 401);
      assertProblem(await ts().call('DELETE', `/api/devices/${d.id}`), 404, 'PP_ERR_API_NOT_FOUND');
      assertProblem(await ts().call('DELETE', '/api/devices/nonsense'), 404);
    });

    test('GET /api/devices/:id/ip-history: newest first, paged; 404 for unknown', async () => {
      const d = await pairDevice(ts(), 'history');
      for (const ip of ['198.18.0.1', '198.18.0.2', '198.18.0.3']) {
        await ts().call('POST', `/api/devices/${d.id}/heartbeat`, { public_ip: ip }, dev(d.token));
      }
      const h = await ts().call('GET', `/api/devices/${d.id}/ip-history`);
      assert.equal(h.status, 200);
      assert.deepEqual(
        h.json.items.map((x: { new_ip: string; old_ip: string | null }) => [x.old_ip, x.new_ip]),
        [
          ['198.18.0.2', '198.18.0.3'],
          ['198.18.0.1', '198.18.0.2'],
          [null, '198.18.0.1'],
        ],
      );
      assert.equal(h.json.items[0].reason, 'observed');
      assert.equal(
        (await ts().call('GET', `/api/devices/${d.id}/ip-history?limit=1&offset=1`)).json.items[0].new_ip,
        '198.18.0.2',
      );
      assertProblem(await ts().call('GET', `/api/devices/${UNKNOWN.dev}/ip-history`), 404, 'PP_ERR_API_NOT_FOUND');
    });

    test('GET /api/devices/:id/usage: 24 hourly or 30 daily points, zero-filled, with traffic counted', async () => {
      const d = await pairDevice(ts(), 'usage');
      const c = await ts().call('POST', '/api/connections', { device_id: d.id, protocol: 'http' });
      await ts().call(
        'POST',
        `/api/devices/${d.id}/heartbeat`,
        { usage: [{ connection_id: c.json.id, bytes_in: 100, bytes_out: 50 }] },
        dev(d.token),
      );
      const hour = await ts().call('GET', `/api/devices/${d.id}/usage`);
      assert.equal(hour.status, 200, hour.body);
      assert.equal(hour.json.items.length, 24);
      const last = hour.json.items.at(-1);
      assert.equal(Date.parse(last.t), Math.floor(ts().clock.now().getTime() / 3_600_000) * 3_600_000);
      assert.deepEqual([last.bytes_in, last.bytes_out], [100, 50]);
      assert.ok(
        hour.json.items
          .slice(0, -1)
          .every((p: { bytes_in: number; bytes_out: number }) => p.bytes_in === 0 && p.bytes_out === 0),
      );
      const day = await ts().call('GET', `/api/devices/${d.id}/usage?granularity=day`);
      assert.equal(day.json.items.length, 30);
      assert.equal(day.json.items.at(-1).bytes_in, 100);
      assertProblem(
        await ts().call('GET', `/api/devices/${d.id}/usage?granularity=minute`),
        400,
        'PP_ERR_API_VALIDATION',
      );
      assertProblem(await ts().call('GET', `/api/devices/${UNKNOWN.dev}/usage`), 404, 'PP_ERR_API_NOT_FOUND');
    });

    test('POST /api/pairing-codes: 201 with a QR SVG; the code pairs once; the second use is 404', async () => {
      const code = await ts().call('POST', '/api/pairing-codes', { device_name: 'qr-phone' });
      assert.equal(code.status, 201, code.body);
      assert.match(code.json.code, /^[0-9A-Z]{5}-[0-9A-Z]{5}$/);
      assert.ok(
        code.json.qr_svg.startsWith('<svg') || code.json.qr_svg.startsWith('<?xml'),
        code.json.qr_svg.slice(0, 40),
      );
      assert.equal(Date.parse(code.json.expires_at), ts().clock.now().getTime() + 600_000);
      assert.ok(code.json.pair_url.includes(code.json.code));
      // the code is stored only hashed
      assert.ok(!(await snapshot(ts().db)).includes(code.json.code));
      const pub = { authorization: '' };
      // typed by a human: lower case, no dash
      const first = await ts().call(
        'POST',
        '/api/public/pair',
        { code: code.json.code.toLowerCase().replace('-', '') },
        pub,
      );
      assert.equal(first.status, 201, first.body);
      assert.match(first.json.device_id, /^dev_/);
      assert.equal(first.json.relay.host, 'relay.example.net');
      assert.equal((await ts().call('GET', `/api/devices/${first.json.device_id}`)).json.name, 'qr-phone');
      const before = await snapshot(ts().db);
      assertProblem(
        await ts().call('POST', '/api/public/pair', { code: code.json.code }, pub),
        404,
        'PP_ERR_API_PAIRING_CODE_INVALID',
      );
      assertProblem(
        await ts().call('POST', '/api/public/pair', { code: 'ZZZZZ-ZZZZZ' }, pub),
        404,
        'PP_ERR_API_PAIRING_CODE_INVALID',
      );
      assertProblem(await ts().call('POST', '/api/public/pair', {}, pub), 400, 'PP_ERR_API_VALIDATION');
      assert.equal(await snapshot(ts().db), before);
    });

    test('the pairing URI carries the server fingerprint (QR too); pair and /tunnel endorse the relay key per device, also after a move', async () => {
      const keyA = encodeKey(generateKeyPair().publicKey);
      const keyB = encodeKey(generateKeyPair().publicKey);
      const relayA = (
        await ts().call('POST', '/api/relays', { name: 'fp-relay-a', host: 'a.example.net', public_key: keyA })
      ).json;
      const relayB = (
        await ts().call('POST', '/api/relays', { name: 'fp-relay-b', host: 'b.example.net', public_key: keyB })
      ).json;
      const code = await ts().call('POST', '/api/pairing-codes', { relay_id: relayA.id });
      assert.equal(code.status, 201, code.body);
      const fp = code.json.server_fingerprint;
      assert.match(fp, /^[A-Za-z0-9_-]{22}$/);
      assert.equal(fp, ts().sys.ctx.serverKey.fingerprint);
      assert.equal(
        code.json.pair_url,
        `pocketproxy://pair?server=${encodeURIComponent(ts().sys.ctx.config.publicUrl)}&code=${code.json.code}&fp=${fp}`,
      );
      const uri = new URL(code.json.pair_url);
      assert.deepEqual(
        [
          uri.protocol,
          uri.host,
          uri.searchParams.get('server'),
          uri.searchParams.get('code'),
          uri.searchParams.get('fp'),
        ],
        ['pocketproxy:', 'pair', ts().sys.ctx.config.publicUrl, code.json.code, fp],
      );
      assert.equal(
        code.json.qr_svg,
        await QRCode.toString(code.json.pair_url, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 }),
        'the QR code is the URI',
      );
      // The server key is derived from the secret key: the same after a restart.
      assert.equal(serverKeyFromSeed(loadSecrets(ts().sys.ctx.config).serverKeySeed).fingerprint, fp);

      const p = await ts().call('POST', '/api/public/pair', { code: code.json.code }, { authorization: '' });
      assert.equal(p.status, 201, p.body);
      const id = p.json.device_id;
      assert.equal(p.json.server_key.fingerprint, fp);
      assert.equal(serverKeyFingerprint(p.json.server_key.public_key), fp);
      assert.equal(p.json.tunnel.server_public_key, keyA);
      assert.ok(
        checkRelayKeyEndorsement(p.json.server_key.public_key, id, keyA, p.json.tunnel.server_public_key_endorsement),
      );
      assert.ok(
        !checkRelayKeyEndorsement(p.json.server_key.public_key, id, keyB, p.json.tunnel.server_public_key_endorsement),
      );

      const t1 = await ts().call('GET', `/api/devices/${id}/tunnel`, undefined, dev(p.json.auth_token));
      assert.equal(t1.status, 200, t1.body);
      assert.deepEqual([t1.json.relay.host, t1.json.relay.public_key], ['a.example.net', keyA]);
      assert.ok(checkRelayKeyEndorsement(p.json.server_key.public_key, id, keyA, t1.json.relay.public_key_endorsement));
      // Moved to another relay: that relay's key, endorsed for this device.
      assert.equal((await ts().call('PATCH', `/api/devices/${id}`, { relay_id: relayB.id })).status, 200);
      const t2 = await ts().call('GET', `/api/devices/${id}/tunnel`, undefined, dev(p.json.auth_token));
      assert.deepEqual([t2.json.relay.host, t2.json.relay.public_key], ['b.example.net', keyB]);
      assert.ok(checkRelayKeyEndorsement(p.json.server_key.public_key, id, keyB, t2.json.relay.public_key_endorsement));
      // Another device's endorsement of the same key does not transfer.
      const other = await pairDevice(ts(), 'fp-other');
      await ts().call('PATCH', `/api/devices/${other.id}`, { relay_id: relayB.id });
      const t3 = await ts().call('GET', `/api/devices/${other.id}/tunnel`, undefined, dev(other.token));
      assert.ok(
        !checkRelayKeyEndorsement(p.json.server_key.public_key, id, keyB, t3.json.relay.public_key_endorsement),
      );
    });

    test('a relay without a key yet: pairing answers null key and null endorsement, and still the server key', async () => {
      const relay = (await ts().call('POST', '/api/relays', { name: 'fp-relay-nokey', host: 'n.example.net' })).json;
      const code = await ts().call('POST', '/api/pairing-codes', { relay_id: relay.id });
      const p = await ts().call('POST', '/api/public/pair', { code: code.json.code }, { authorization: '' });
      assert.equal(p.status, 201, p.body);
      assert.equal(p.json.tunnel.server_public_key, null);
      assert.equal(p.json.tunnel.server_public_key_endorsement, null);
      assert.equal(p.json.server_key.fingerprint, code.json.server_fingerprint);
      const t = await ts().call('GET', `/api/devices/${p.json.device_id}/tunnel`, undefined, dev(p.json.auth_token));
      assert.deepEqual([t.json.relay.public_key, t.json.relay.public_key_endorsement], [null, null]);
    });

    test('a pairing code expires (FakeClock +11 min) → 404; bad ttl 400; unknown relay 404', async () => {
      const code = await ts().call('POST', '/api/pairing-codes', {});
      ts().clock.advance(11 * 60_000);
      assertProblem(
        await ts().call('POST', '/api/public/pair', { code: code.json.code }, { authorization: '' }),
        404,
        'PP_ERR_API_PAIRING_CODE_INVALID',
      );
      assertProblem(await ts().call('POST', '/api/pairing-codes', { ttl_s: 10 }), 400, 'PP_ERR_API_VALIDATION');
      assertProblem(
        await ts().call('POST', '/api/pairing-codes', { relay_id: UNKNOWN.rly }),
        404,
        'PP_ERR_API_NOT_FOUND',
      );
    });

    test('pairing with a public key keeps it; the same key twice is 409', async () => {
      const key = Buffer.alloc(32, 9).toString('base64');
      const c1 = await ts().call('POST', '/api/pairing-codes', {});
      const p1 = await ts().call(
        'POST',
        '/api/public/pair',
        { code: c1.json.code, public_key: key },
        { authorization: '' },
      );
      assert.equal(p1.status, 201, p1.body);
      assert.equal(p1.json.tunnel.private_key, undefined);
      const c2 = await ts().call('POST', '/api/pairing-codes', {});
      const before = await snapshot(ts().db);
      assertProblem(
        await ts().call('POST', '/api/public/pair', { code: c2.json.code, public_key: key }, { authorization: '' }),
        409,
        'PP_ERR_API_CONFLICT',
      );
      assert.equal(await snapshot(ts().db), before, 'a refused pairing does not burn the code');
    });

    test('GET /api/public/ip answers the caller address', async () => {
      const res = await ts().call('GET', '/api/public/ip', undefined, { authorization: '' });
      assert.equal(res.status, 200);
      assert.equal(res.json.ip, '127.0.0.1');
    });
  },
  { POCKETPROXY_PAIRING_RATE: '10000' },
);

perBackend(
  'pairing rate limit',
  ({ ts, test }) => {
    test('429 after POCKETPROXY_PAIRING_RATE pair attempts per minute from one address', async () => {
      for (let i = 0; i < 3; i++)
        assertProblem(await ts().call('POST', '/api/public/pair', { code: 'AAAAA-AAAAA' }, { authorization: '' }), 404);
      const code = await ts().call('POST', '/api/pairing-codes', {});
      const res = await ts().call('POST', '/api/public/pair', { code: code.json.code }, { authorization: '' });
      assertProblem(res, 429, 'PP_ERR_API_RATE_LIMITED');
      assert.ok(Number(res.headers['retry-after']) > 0);
      ts().clock.advance(60_000);
      assert.equal(
        (await ts().call('POST', '/api/public/pair', { code: code.json.code }, { authorization: '' })).status,
        201,
      );
    });
  },
  { POCKETPROXY_PAIRING_RATE: '3' },
);
