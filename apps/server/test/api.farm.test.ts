// Farm hosts and enrollment (issue 14, docs/design.md §2.11), end to end through the API on PGlite and
// PostgreSQL: enrollment tokens (create, list, revoke, expiry, max_devices), POST /api/public/enroll (one
// farm host per host key, the device named after its model and serial, 409 on a duplicate hardware id,
// hostile input changing nothing, two enrolls racing for the last slot), the farm hosts (list, one with
// its devices, rename, the devices list filtered by host) and the bulk rotation of a host's devices.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import type { Db } from '@pocketproxy/db';
import { pairDevice, type TestSystem } from './harness.js';
import { assertProblem, dev, perBackend } from './api.assert.js';

const pub = { authorization: '' };
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
let keyN = 0;
/** A distinct X25519 public key per call (the API takes any 32 bytes). */
const keyOf = (n: number) => {
  const b = Buffer.alloc(32, 0xa5);
  b.writeUInt32BE(n);
  return b.toString('base64');
};
const pubKey = () => keyOf(++keyN);
const hostKey = (c: string) => c.repeat(43);

interface Phone {
  hardware_id: string;
  kind: 'phone' | 'modem';
  model?: string;
  name?: string;
}

const enroll = (ts: TestSystem, token: string, key: string, device: Phone, extra: Record<string, unknown> = {}) =>
  ts.call(
    'POST',
    '/api/public/enroll',
    { token, host: { key, name: 'rack-a' }, device, public_key: pubKey(), agent_version: '0.1.0', ...extra },
    pub,
  );

async function newToken(ts: TestSystem, body: Record<string, unknown> = {}) {
  const r = await ts.call('POST', '/api/enrollment-tokens', body);
  assert.equal(r.status, 201, r.body);
  return r.json as { id: string; token: string; devices_enrolled: number; state: string };
}

/** Every row a refused enrollment must leave alone, farm tables included. */
async function farmSnapshot(db: Db): Promise<string> {
  const out: Record<string, unknown> = {};
  for (const t of ['devices', 'enrollment_tokens', 'farm_hosts', 'audit_log', 'events', 'ip_history'])
    out[t] = (await db.query(`SELECT * FROM ${t} ORDER BY 1`)).rows;
  return JSON.stringify(out);
}

const tokenRow = async (ts: TestSystem, id: string) =>
  (
    await ts.db.query<{ devices_enrolled: number; revoked_at: Date | null }>(
      'SELECT devices_enrolled, revoked_at FROM enrollment_tokens WHERE id = $1',
      [id],
    )
  ).rows[0]!;

perBackend('farm hosts and enrollment', ({ ts, test }) => {
  let rack: { id: string; token: string };
  let farmHostId: string;
  const devices: Record<string, { id: string; token: string }> = {};

  test('an enrollment token is shown once with the command that uses it, and stored only as its SHA-256', async () => {
    const r = await ts().call('POST', '/api/enrollment-tokens', { name: 'rack A', max_devices: 10, ttl_s: 86400 });
    assert.equal(r.status, 201, r.body);
    const t = r.json;
    rack = { id: t.id, token: t.token };
    assert.match(t.id, /^enr_/);
    assert.match(t.token, /^ppe_[A-Za-z0-9_-]{43}$/);
    assert.equal(t.token_prefix, t.token.slice(0, 10));
    assert.deepEqual(
      [t.name, t.max_devices, t.devices_enrolled, t.state, t.revoked_at],
      ['rack A', 10, 0, 'active', null],
    );
    assert.equal(new Date(t.expires_at).getTime(), ts().clock.now().getTime() + 86400_000);
    const fp = ts().sys.ctx.serverKey.fingerprint;
    assert.equal(
      t.enroll_command,
      `pocketproxy-agent farm --server ${ts().sys.ctx.config.publicUrl} --enroll ${t.token} --fingerprint ${fp}`,
    );
    const row = (await ts().db.query<{ token_hash: string }>('SELECT * FROM enrollment_tokens WHERE id = $1', [t.id]))
      .rows[0]!;
    assert.equal(row.token_hash, sha256(t.token));
    // the token itself is nowhere in the database, nor in the list
    for (const table of ['enrollment_tokens', 'audit_log']) {
      const dump = JSON.stringify((await ts().db.query(`SELECT * FROM ${table}`)).rows);
      assert.ok(!dump.includes(t.token.slice(4)), `${table} holds the token`);
    }
    const list = await ts().call('GET', '/api/enrollment-tokens');
    assert.equal(list.status, 200);
    const item = list.json.items.find((x: { id: string }) => x.id === t.id);
    assert.equal(item.token, undefined);
    assert.equal(item.enroll_command, undefined);
    const audit = await ts().db.query<{ action: string }>(
      `SELECT action FROM audit_log WHERE action = 'enrollment_token.create' AND target_id = $1`,
      [t.id],
    );
    assert.equal(audit.rows.length, 1);
  });

  test('three phones and a modem enroll with one token: one farm host, four devices named after model and serial', async () => {
    const key = hostKey('a');
    const hw: Phone[] = [
      { hardware_id: 'R58M11111', kind: 'phone', model: 'Pixel 6' },
      { hardware_id: 'R58M22222', kind: 'phone', model: 'Galaxy A52' },
      { hardware_id: 'emulator-5554', kind: 'phone' },
      { hardware_id: '356938035643809', kind: 'modem', model: 'EM7455' },
    ];
    for (const d of hw) {
      const r = await enroll(ts(), rack.token, key, d);
      assert.equal(r.status, 201, r.body);
      assert.match(r.json.farm_host_id, /^farm_/);
      farmHostId ??= r.json.farm_host_id;
      assert.equal(r.json.farm_host_id, farmHostId, 'the same host key is the same host');
      // what pairing answers: the device's token works, the tunnel parameters and the server key are there
      assert.match(r.json.device_id, /^dev_/);
      assert.equal(r.json.server_key.fingerprint, ts().sys.ctx.serverKey.fingerprint);
      assert.ok(r.json.tunnel.vpn_ip);
      assert.equal(r.json.tunnel.private_key, undefined, 'the farm sent its own key');
      devices[d.hardware_id] = { id: r.json.device_id, token: r.json.auth_token };
    }
    const one = await ts().call('GET', `/api/devices/${devices.R58M11111!.id}`);
    assert.equal(one.status, 200);
    assert.deepEqual(
      [
        one.json.name,
        one.json.kind,
        one.json.hardware_id,
        one.json.model,
        one.json.farm_host_id,
        one.json.farm_host_name,
      ],
      ['Pixel 6 R58M11111', 'phone', 'R58M11111', 'Pixel 6', farmHostId, 'rack-a'],
    );
    const modem = await ts().call('GET', `/api/devices/${devices['356938035643809']!.id}`);
    assert.deepEqual([modem.json.name, modem.json.kind], ['EM7455 356938035643809', 'modem']);
    const noModel = await ts().call('GET', `/api/devices/${devices['emulator-5554']!.id}`);
    assert.deepEqual([noModel.json.name, noModel.json.model], ['phone emulator-5554', null]);
    // the device's own token works (a heartbeat)
    const hb = await ts().call(
      'POST',
      `/api/devices/${devices.R58M11111!.id}/heartbeat`,
      {},
      dev(devices.R58M11111!.token),
    );
    assert.equal(hb.status, 200, hb.body);
    // the slots used, the host key only as its hash, an audit row per enrollment
    assert.equal((await tokenRow(ts(), rack.id)).devices_enrolled, 4);
    const host = (await ts().db.query<{ host_key_hash: string }>('SELECT * FROM farm_hosts')).rows;
    assert.equal(host.length, 1);
    assert.equal(host[0]!.host_key_hash, sha256(key));
    assert.ok(!JSON.stringify(await ts().db.query('SELECT * FROM audit_log')).includes(key));
    const audits = await ts().db.query(`SELECT 1 FROM audit_log WHERE action = 'enrollment.enroll'`);
    assert.equal(audits.rows.length, 4);
  });

  test('a long model gives a name cut to 64 characters with the hardware id whole; a blank model is none', async () => {
    const t = await newToken(ts());
    const model = `${'Very Long Model Name '.repeat(5)}`.slice(0, 100);
    const r = await enroll(ts(), t.token, hostKey('n'), { hardware_id: 'SERIAL-0123456789', kind: 'phone', model });
    assert.equal(r.status, 201, r.body);
    const d = (await ts().call('GET', `/api/devices/${r.json.device_id}`)).json;
    assert.equal(d.name.length, 64);
    assert.ok(d.name.endsWith(' SERIAL-0123456789'), d.name);
    assert.equal(d.model, model.trim());
    const blank = await enroll(ts(), t.token, hostKey('n'), { hardware_id: 'S2', kind: 'modem', model: '   ' });
    assert.equal(blank.status, 201, blank.body);
    const b = (await ts().call('GET', `/api/devices/${blank.json.device_id}`)).json;
    assert.deepEqual([b.name, b.model], ['modem S2', null]);
  });

  test('farm hosts: the list with counts, one host with its devices, the devices list filtered by host, rename', async () => {
    const plain = await pairDevice(ts(), 'plain-phone');
    const list = await ts().call('GET', '/api/farm-hosts');
    assert.equal(list.status, 200);
    assert.equal(list.json.items.length, 2, 'rack-a and the long-model host');
    const h = list.json.items.find((x: { id: string }) => x.id === farmHostId);
    assert.deepEqual(
      [h.id, h.name, h.devices, h.online, h.enrollment_token_id],
      [farmHostId, 'rack-a', 4, 1, rack.id],
      'one device has heartbeated',
    );
    assert.ok(h.last_seen_at);
    const one = await ts().call('GET', `/api/farm-hosts/${farmHostId}`);
    assert.equal(one.status, 200);
    assert.deepEqual(
      one.json.devices.map((d: { name: string }) => d.name),
      ['EM7455 356938035643809', 'Galaxy A52 R58M22222', 'Pixel 6 R58M11111', 'phone emulator-5554'],
    );
    const filtered = await ts().call('GET', `/api/devices?farm_host_id=${farmHostId}`);
    assert.equal(filtered.json.total, 4);
    assert.ok(filtered.json.items.every((d: { farm_host_id: string }) => d.farm_host_id === farmHostId));
    const all = await ts().call('GET', '/api/devices?limit=1000');
    const p = all.json.items.find((d: { id: string }) => d.id === plain.id);
    assert.deepEqual(
      [p.kind, p.farm_host_id, p.farm_host_name, p.hardware_id, p.model],
      ['device', null, null, null, null],
    );
    // filters combine; a malformed host id is a 400, an unknown one an empty list
    const online = await ts().call('GET', `/api/devices?farm_host_id=${farmHostId}&status=online`);
    assert.equal(online.json.total, 1);
    assertProblem(await ts().call('GET', '/api/devices?farm_host_id=nope'), 400, 'PP_ERR_API_VALIDATION');
    const none = await ts().call('GET', '/api/devices?farm_host_id=farm_0000000000000000');
    assert.equal(none.json.total, 0);

    const renamed = await ts().call('PATCH', `/api/farm-hosts/${farmHostId}`, { name: 'rack A (top shelf)' });
    assert.equal(renamed.status, 200, renamed.body);
    assert.equal(renamed.json.name, 'rack A (top shelf)');
    assert.equal(renamed.json.devices, 4);
    const d = await ts().call('GET', `/api/devices/${devices.R58M22222!.id}`);
    assert.equal(d.json.farm_host_name, 'rack A (top shelf)');
    // a renamed device keeps its farm fields
    const dr = await ts().call('PATCH', `/api/devices/${devices.R58M22222!.id}`, { name: 'shelf-2' });
    assert.deepEqual(
      [dr.json.name, dr.json.farm_host_name, dr.json.hardware_id],
      ['shelf-2', 'rack A (top shelf)', 'R58M22222'],
    );
    // the search finds a renamed farm device by its serial, and devices by their model
    const bySerial = await ts().call('GET', '/api/devices?q=r58m22222');
    assert.deepEqual(
      bySerial.json.items.map((x: { name: string }) => x.name),
      ['shelf-2'],
    );
    const byModel = await ts().call('GET', `/api/devices?q=em7455&farm_host_id=${farmHostId}`);
    assert.equal(byModel.json.total, 1);
    assertProblem(
      await ts().call('PATCH', `/api/farm-hosts/${farmHostId}`, { name: '' }),
      400,
      'PP_ERR_API_VALIDATION',
    );
    assertProblem(
      await ts().call('PATCH', '/api/farm-hosts/farm_0000000000000000', { name: 'x' }),
      404,
      'PP_ERR_API_NOT_FOUND',
    );
    assertProblem(await ts().call('GET', '/api/farm-hosts/farm_0000000000000000'), 404, 'PP_ERR_API_NOT_FOUND');
    // Delete: refused while the host has devices (nothing changes), unknown is 404, admin only.
    assertProblem(await ts().call('DELETE', `/api/farm-hosts/${farmHostId}`), 409, 'PP_ERR_API_CONFLICT');
    assert.equal((await ts().call('GET', `/api/farm-hosts/${farmHostId}`)).json.devices.length, 4);
    assertProblem(await ts().call('DELETE', '/api/farm-hosts/farm_0000000000000000'), 404, 'PP_ERR_API_NOT_FOUND');
    assertProblem(await ts().call('DELETE', `/api/farm-hosts/${farmHostId}`, undefined, pub), 401);
    assertProblem(await ts().call('GET', '/api/farm-hosts/dev_0000000000000000'), 404, 'PP_ERR_API_NOT_FOUND');
    // admin routes need the admin
    assertProblem(await ts().call('GET', '/api/farm-hosts', undefined, pub), 401);
    assertProblem(await ts().call('GET', '/api/enrollment-tokens', undefined, pub), 401);
    assertProblem(await ts().call('POST', '/api/enrollment-tokens', {}, pub), 401);
    assertProblem(await ts().call('GET', '/api/farm-hosts', undefined, dev(devices.R58M11111!.token)), 401);
  });

  test('the same hardware id on the same host again: 409, no slot taken, nothing stored', async () => {
    const before = await farmSnapshot(ts().db);
    const r = await enroll(ts(), rack.token, hostKey('a'), {
      hardware_id: 'R58M11111',
      kind: 'phone',
      model: 'Pixel 6',
    });
    assertProblem(r, 409, 'PP_ERR_API_DEVICE_ALREADY_ENROLLED');
    assert.equal(await farmSnapshot(ts().db), before);
    // the same serial on another host is another device
    const other = await enroll(ts(), rack.token, hostKey('b'), { hardware_id: 'R58M11111', kind: 'phone' });
    assert.equal(other.status, 201, other.body);
    assert.notEqual(other.json.farm_host_id, farmHostId);
    // a public key already paired: 409, nothing stored
    const snap = await farmSnapshot(ts().db);
    const dupKey = await ts().call(
      'POST',
      '/api/public/enroll',
      {
        token: rack.token,
        host: { key: hostKey('a'), name: 'rack-a' },
        device: { hardware_id: 'NEW1', kind: 'phone' },
        public_key: keyOf(keyN),
      },
      pub,
    );
    assertProblem(dupKey, 409, 'PP_ERR_API_CONFLICT');
    assert.equal(await farmSnapshot(ts().db), snap);
    // once its device is deleted, the hardware id enrolls again (a new device on the same host)
    assert.equal((await ts().call('DELETE', `/api/devices/${other.json.device_id}`)).status, 204);
    const back = await enroll(ts(), rack.token, hostKey('b'), { hardware_id: 'R58M11111', kind: 'phone' });
    assert.equal(back.status, 201, back.body);
    assert.deepEqual(
      [back.json.farm_host_id === other.json.farm_host_id, back.json.device_id === other.json.device_id],
      [true, false],
    );
  });

  test('a host key that comes with another token is still the same host; the slot is charged to the token used', async () => {
    const second = await newToken(ts(), { name: 'second' });
    const r = await enroll(ts(), second.token, hostKey('a'), {
      hardware_id: 'R58M33333',
      kind: 'phone',
      model: 'Moto G',
    });
    assert.equal(r.status, 201, r.body);
    assert.equal(r.json.farm_host_id, farmHostId);
    assert.equal((await tokenRow(ts(), second.id)).devices_enrolled, 1);
    assert.equal(
      (await tokenRow(ts(), rack.id)).devices_enrolled,
      6,
      'four of rack A, and two of the other host (one deleted)',
    );
    const h = (
      await ts().db.query<{ enrollment_token_id: string }>('SELECT * FROM farm_hosts WHERE id = $1', [farmHostId])
    ).rows[0]!;
    assert.equal(h.enrollment_token_id, rack.id, 'the host remembers the token that created it');
  });

  test('max_devices: the token enrolls that many devices, then 403 exhausted, and a new host is not even created', async () => {
    const two = await newToken(ts(), { max_devices: 2 });
    for (const hw of ['M1', 'M2'])
      assert.equal((await enroll(ts(), two.token, hostKey('c'), { hardware_id: hw, kind: 'modem' })).status, 201);
    const before = await farmSnapshot(ts().db);
    assertProblem(
      await enroll(ts(), two.token, hostKey('c'), { hardware_id: 'M3', kind: 'modem' }),
      403,
      'PP_ERR_API_ENROLLMENT_TOKEN_EXHAUSTED',
    );
    assertProblem(
      await enroll(ts(), two.token, hostKey('d'), { hardware_id: 'M3', kind: 'modem' }),
      403,
      'PP_ERR_API_ENROLLMENT_TOKEN_EXHAUSTED',
    );
    assert.equal(await farmSnapshot(ts().db), before);
    const list = await ts().call('GET', '/api/enrollment-tokens');
    const t = list.json.items.find((x: { id: string }) => x.id === two.id);
    assert.deepEqual([t.state, t.devices_enrolled, t.max_devices], ['exhausted', 2, 2]);
  });

  test('two enrolls racing for the last slot: exactly one wins', async () => {
    const one = await newToken(ts(), { max_devices: 3 });
    assert.equal((await enroll(ts(), one.token, hostKey('e'), { hardware_id: 'R1', kind: 'phone' })).status, 201);
    assert.equal((await enroll(ts(), one.token, hostKey('e'), { hardware_id: 'R2', kind: 'phone' })).status, 201);
    // two devices of a new host (its first enroll creates it: two creations meet too)
    const [a, b] = await Promise.all([
      enroll(ts(), one.token, hostKey('f'), { hardware_id: 'X1', kind: 'phone' }),
      enroll(ts(), one.token, hostKey('f'), { hardware_id: 'X2', kind: 'phone' }),
    ]);
    const statuses = [a.status, b.status].sort();
    assert.deepEqual(statuses, [201, 403], `${a.body} ${b.body}`);
    assertProblem(a.status === 403 ? a : b, 403, 'PP_ERR_API_ENROLLMENT_TOKEN_EXHAUSTED');
    assert.equal((await tokenRow(ts(), one.id)).devices_enrolled, 3);
    const hosts = await ts().db.query('SELECT id FROM farm_hosts WHERE host_key_hash = $1', [sha256(hostKey('f'))]);
    assert.equal(hosts.rows.length, 1);
    const devs = await ts().db.query('SELECT id FROM devices WHERE farm_host_id = $1', [
      (hosts.rows[0] as { id: string }).id,
    ]);
    assert.equal(devs.rows.length, 1);
    // and a new host's first two devices enrolling at once (no limit): one host, two devices
    const open = await newToken(ts());
    const [c, d] = await Promise.all([
      enroll(ts(), open.token, hostKey('g'), { hardware_id: 'Y1', kind: 'phone' }),
      enroll(ts(), open.token, hostKey('g'), { hardware_id: 'Y2', kind: 'phone' }),
    ]);
    assert.deepEqual([c.status, d.status], [201, 201], `${c.body} ${d.body}`);
    assert.equal(c.json.farm_host_id, d.json.farm_host_id);
    // the same device twice at once: one 201, one 409
    const [e, f] = await Promise.all([
      enroll(ts(), open.token, hostKey('g'), { hardware_id: 'Y3', kind: 'phone' }),
      enroll(ts(), open.token, hostKey('g'), { hardware_id: 'Y3', kind: 'phone' }),
    ]);
    assert.deepEqual([e.status, f.status].sort(), [201, 409], `${e.body} ${f.body}`);
    assertProblem(e.status === 409 ? e : f, 409, 'PP_ERR_API_DEVICE_ALREADY_ENROLLED');
    assert.equal((await tokenRow(ts(), open.id)).devices_enrolled, 3, 'the refused one took no slot');
    // the same device twice at once with two different tokens (not serialised on a token row): one 201, one 409
    const other = await newToken(ts());
    const [g, h] = await Promise.all([
      enroll(ts(), open.token, hostKey('g'), { hardware_id: 'Y4', kind: 'phone' }),
      enroll(ts(), other.token, hostKey('g'), { hardware_id: 'Y4', kind: 'phone' }),
    ]);
    assert.deepEqual([g.status, h.status].sort(), [201, 409], `${g.body} ${h.body}`);
    assertProblem(g.status === 409 ? g : h, 409, 'PP_ERR_API_DEVICE_ALREADY_ENROLLED');
    // serialised on the host's row: the loser's check saw the winner's device (not the unique-index backstop)
    assert.match((g.status === 409 ? g : h).json.detail, new RegExp((g.status === 201 ? g : h).json.device_id));
    assert.equal(
      (await tokenRow(ts(), open.id)).devices_enrolled + (await tokenRow(ts(), other.id)).devices_enrolled,
      4,
      'one slot taken between the two tokens (3 before)',
    );
  });

  test('revoke: the token enrolls nothing more, its devices stay; an unknown token changes nothing either', async () => {
    const t = await newToken(ts(), { name: 'to revoke' });
    assert.equal((await enroll(ts(), t.token, hostKey('h'), { hardware_id: 'Z1', kind: 'phone' })).status, 201);
    const del = await ts().call('DELETE', `/api/enrollment-tokens/${t.id}`);
    assert.equal(del.status, 200, del.body);
    assert.equal(del.json.state, 'revoked');
    assert.ok(del.json.revoked_at);
    assert.equal(del.json.devices_enrolled, 1);
    const again = await ts().call('DELETE', `/api/enrollment-tokens/${t.id}`);
    assert.equal(again.json.revoked_at, del.json.revoked_at, 'revoking twice keeps the first time');
    const before = await farmSnapshot(ts().db);
    assertProblem(
      await enroll(ts(), t.token, hostKey('h'), { hardware_id: 'Z2', kind: 'phone' }),
      403,
      'PP_ERR_API_ENROLLMENT_TOKEN_REVOKED',
    );
    assertProblem(
      await enroll(ts(), `ppe_${'x'.repeat(43)}`, hostKey('i'), { hardware_id: 'Z2', kind: 'phone' }),
      401,
      'PP_ERR_API_ENROLLMENT_TOKEN_INVALID',
    );
    assert.equal(await farmSnapshot(ts().db), before, 'no device, no farm host, no slot');
    const hosts = await ts().call('GET', '/api/farm-hosts');
    const h = hosts.json.items.find((x: { enrollment_token_id: string }) => x.enrollment_token_id === t.id);
    assert.equal(h.devices, 1, 'the enrolled device stays');
    assertProblem(
      await ts().call('DELETE', '/api/enrollment-tokens/enr_0000000000000000'),
      404,
      'PP_ERR_API_NOT_FOUND',
    );
    const audit = await ts().db.query(
      `SELECT 1 FROM audit_log WHERE action = 'enrollment_token.revoke' AND target_id = $1`,
      [t.id],
    );
    assert.equal(audit.rows.length, 2);
  });

  test('hostile input: oversized or malformed fields get 400 and change nothing', async () => {
    const t = await newToken(ts());
    const good = {
      token: t.token,
      host: { key: hostKey('j'), name: 'rack-j' },
      device: { hardware_id: 'OK1', kind: 'phone' as const },
      public_key: pubKey(),
    };
    const bad: [string, unknown][] = [
      ['no token', { ...good, token: undefined }],
      ['short token', { ...good, token: 'ppe_x' }],
      ['huge token', { ...good, token: 'a'.repeat(10_000) }],
      ['token with a quote', { ...good, token: `${t.token}'` }],
      ['short host key', { ...good, host: { ...good.host, key: 'k'.repeat(31) } }],
      ['long host key', { ...good, host: { ...good.host, key: 'k'.repeat(129) } }],
      ['host key not base64url', { ...good, host: { ...good.host, key: `${'k'.repeat(40)}/+=` } }],
      ['host name with a newline', { ...good, host: { ...good.host, name: 'a\nb' } }],
      ['host name too long', { ...good, host: { ...good.host, name: 'n'.repeat(65) } }],
      ['unknown host field', { ...good, host: { ...good.host, admin: true } }],
      ['hardware id with a slash', { ...good, device: { ...good.device, hardware_id: '../../etc' } }],
      ['hardware id with a space', { ...good, device: { ...good.device, hardware_id: 'a b' } }],
      ['hardware id too long', { ...good, device: { ...good.device, hardware_id: '1'.repeat(65) } }],
      ['empty hardware id', { ...good, device: { ...good.device, hardware_id: '' } }],
      ['kind device', { ...good, device: { ...good.device, kind: 'device' } }],
      ['model too long', { ...good, device: { ...good.device, model: 'm'.repeat(101) } }],
      ['model with a control character', { ...good, device: { ...good.device, model: 'Pixel\u0007' } }],
      ['unknown device field', { ...good, device: { ...good.device, farm_host_id: 'farm_0000000000000000' } }],
      ['no public key', { ...good, public_key: undefined }],
      ['bad public key', { ...good, public_key: 'AAAA' }],
      ['agent version too long', { ...good, agent_version: 'v'.repeat(65) }],
      ['unknown top-level field', { ...good, relay_id: 'rly_0000000000000000' }],
      ['an array', [good]],
      ['deep nesting', { ...good, device: JSON.parse(`${'{"a":'.repeat(200)}1${'}'.repeat(200)}`) }],
    ];
    const before = await farmSnapshot(ts().db);
    for (const [what, body] of bad) {
      const r = await ts().call('POST', '/api/public/enroll', JSON.stringify(body), pub);
      assertProblem(r, 400);
      assert.ok(['PP_ERR_API_VALIDATION', 'PP_ERR_API_BAD_JSON'].includes(r.json.code), `${what}: ${r.body}`);
    }
    assertProblem(await ts().call('POST', '/api/public/enroll', '{"token": ', pub), 400, 'PP_ERR_API_BAD_JSON');
    assert.equal(await farmSnapshot(ts().db), before);
    // token creation refuses bad limits
    for (const body of [{ max_devices: 0 }, { ttl_s: 5 }, { max_devices: 1.5 }, { relay_id: 'x' }, { extra: 1 }])
      assertProblem(await ts().call('POST', '/api/enrollment-tokens', body), 400, 'PP_ERR_API_VALIDATION');
    assertProblem(
      await ts().call('POST', '/api/enrollment-tokens', { relay_id: 'rly_0000000000000000' }),
      404,
      'PP_ERR_API_NOT_FOUND',
    );
    assert.equal((await enroll(ts(), t.token, hostKey('j'), good.device)).status, 201, 'the good body is good');
  });

  test('fuzz: any body, or a good body with any field replaced by anything, gets 201 or a 4xx problem; refused ones store nothing', async () => {
    const t = await newToken(ts());
    const good = () => ({
      token: t.token,
      host: { key: hostKey('z'), name: 'fuzz-rack' },
      device: { hardware_id: `F${++keyN}`, kind: 'phone', model: 'Fuzz 1' },
      public_key: pubKey(),
    });
    const counts = async () =>
      JSON.stringify(
        (
          await ts().db.query(
            'SELECT (SELECT count(*) FROM devices) AS d, (SELECT count(*) FROM farm_hosts) AS h, (SELECT sum(devices_enrolled) FROM enrollment_tokens) AS s',
          )
        ).rows,
      );
    const paths = [
      'token',
      'host',
      'host.key',
      'host.name',
      'device',
      'device.hardware_id',
      'device.kind',
      'device.model',
      'public_key',
      'agent_version',
      'extra',
    ];
    const mutated = fc
      .tuple(
        fc.constantFrom(...paths),
        fc.oneof(fc.anything(), fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 100 })),
      )
      .map(([path, v]) => {
        const body = good() as Record<string, unknown>;
        const [a, b] = path.split('.') as [string, string | undefined];
        if (b) (body[a] as Record<string, unknown>)[b] = v;
        else body[a] = v;
        return body;
      });
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated, fc.anything()), async (body) => {
        ts().clock.advance(61_000); // a fresh rate-limit window: the bodies reach the parser, not the limiter
        const before = await counts();
        let payload: string;
        try {
          payload = JSON.stringify(body) ?? 'null';
        } catch {
          return; // not representable as JSON (e.g. a BigInt): nothing to send
        }
        const r = await ts().call('POST', '/api/public/enroll', payload, pub);
        assert.ok(
          r.status === 201 || (r.status >= 400 && r.status < 500),
          `${r.status} for ${payload.slice(0, 300)}: ${r.body.slice(0, 300)}`,
        );
        assert.notEqual(r.status, 429);
        if (r.status !== 201) {
          assertProblem(r, r.status);
          assert.equal(await counts(), before, payload.slice(0, 300));
        }
      }),
      {
        numRuns: 150,
        // Found by this property in CI (seed 1924259951): a NUL in agent_version was a 500 on PostgreSQL,
        // whose text holds no NUL; it is a 400 now. Always tried first.
        examples: [[{ ...good(), agent_version: '\u0000' }], [{ ...good(), agent_version: 'v1\u0000x' }]],
      },
    );
  });

  test('bulk rotation of a farm host: rotate_ip only for its online devices that report rotate_ip; the others skipped with the reason', async () => {
    // R58M11111 heartbeated earlier without capabilities; now: two phones can rotate, the modem reports
    // only config_update, emulator-5554 stays offline
    const hb = (hw: string, capabilities: string[]) =>
      ts().call('POST', `/api/devices/${devices[hw]!.id}/heartbeat`, { capabilities }, dev(devices[hw]!.token));
    assert.equal((await hb('R58M11111', ['rotate_ip', 'config_update'])).status, 200);
    assert.equal((await hb('R58M22222', ['rotate_ip'])).status, 200);
    assert.equal((await hb('356938035643809', ['config_update'])).status, 200);
    const plain = await pairDevice(ts(), 'not-on-the-farm');
    await ts().call('POST', `/api/devices/${plain.id}/heartbeat`, { capabilities: ['rotate_ip'] }, dev(plain.token));
    const r = await ts().call('POST', `/api/farm-hosts/${farmHostId}/rotate`, {});
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(
      r.json.items.map((i: { device_id: string; outcome: string }) => [i.device_id, i.outcome]).sort(),
      [
        [devices.R58M11111!.id, 'queued'],
        [devices.R58M22222!.id, 'queued'],
      ].sort(),
    );
    const skipped = Object.fromEntries(
      r.json.skipped.map((s: { device_id: string; reason: string }) => [s.device_id, s.reason]),
    );
    assert.equal(skipped[devices['356938035643809']!.id], 'no_rotate_capability');
    assert.equal(skipped[devices['emulator-5554']!.id], 'offline');
    // R58M33333 (enrolled with the second token) never heartbeated: offline
    assert.equal(Object.keys(skipped).length, 3);
    const cmds = await ts().db.query<{ device_id: string; source: string }>(
      `SELECT device_id, source FROM commands WHERE type = 'rotate_ip' ORDER BY device_id`,
    );
    assert.deepEqual(
      cmds.rows.map((c) => [c.device_id, c.source]).sort(),
      [
        [devices.R58M11111!.id, 'bulk'],
        [devices.R58M22222!.id, 'bulk'],
      ].sort(),
      'only the two capable online phones got rotate_ip, the plain device none',
    );
    // again: the running rotations are joined, not stacked
    const again = await ts().call('POST', `/api/farm-hosts/${farmHostId}/rotate`, { ttl_s: 60 });
    assert.deepEqual(
      again.json.items.map((i: { outcome: string }) => i.outcome),
      ['joined', 'joined'],
    );
    assertProblem(
      await ts().call('POST', '/api/farm-hosts/farm_0000000000000000/rotate', {}),
      404,
      'PP_ERR_API_NOT_FOUND',
    );
    assertProblem(await ts().call('POST', `/api/farm-hosts/${farmHostId}/rotate`, { ttl_s: 1 }), 400);
  });

  test('expiry: a token past its ttl enrolls nothing (the test clock)', async () => {
    const t = await newToken(ts(), { ttl_s: 60 });
    assert.equal((await enroll(ts(), t.token, hostKey('k'), { hardware_id: 'E1', kind: 'phone' })).status, 201);
    ts().clock.advance(61_000);
    const before = await farmSnapshot(ts().db);
    assertProblem(
      await enroll(ts(), t.token, hostKey('k'), { hardware_id: 'E2', kind: 'phone' }),
      403,
      'PP_ERR_API_ENROLLMENT_TOKEN_EXPIRED',
    );
    assert.equal(await farmSnapshot(ts().db), before);
    const list = await ts().call('GET', '/api/enrollment-tokens');
    assert.equal(list.json.items.find((x: { id: string }) => x.id === t.id).state, 'expired');
  });

  test('rate limit per address: refused tokens at the pairing rate, enrollments at ten times it', async () => {
    ts().clock.advance(61_000); // a fresh window
    const rate = ts().sys.ctx.config.pairingRatePerMin;
    const wrong = `ppe_${'w'.repeat(43)}`;
    for (let i = 0; i < rate; i++)
      assertProblem(
        await enroll(ts(), wrong, hostKey('l'), { hardware_id: `L${i}`, kind: 'phone' }),
        401,
        'PP_ERR_API_ENROLLMENT_TOKEN_INVALID',
      );
    const limited = await enroll(ts(), wrong, hostKey('l'), { hardware_id: 'L', kind: 'phone' });
    assertProblem(limited, 429, 'PP_ERR_API_RATE_LIMITED');
    // good enrollments go on past the refused limit, up to ten times the pairing rate in all, also when
    // many run at once (a farm's devices enrolling together)
    ts().clock.advance(61_000);
    const t = await newToken(ts());
    const together = await Promise.all(
      Array.from({ length: rate * 3 }, (_, i) =>
        enroll(ts(), t.token, hostKey('o'), { hardware_id: `P${i}`, kind: 'phone' }),
      ),
    );
    assert.deepEqual(
      together.map((r) => r.status).filter((s) => s !== 201),
      [],
      'parallel enrollments with a good token',
    );
    ts().clock.advance(61_000);
    let ok = 0;
    let last = 0;
    for (let i = 0; i < rate * 10 + 1; i++) {
      const r = await enroll(ts(), t.token, hostKey('m'), { hardware_id: `N${i}`, kind: 'phone' });
      last = r.status;
      if (r.status === 201) ok++;
      else if (i < rate * 10) assert.fail(`enrollment ${i}: ${r.status} ${r.body}`);
    }
    assert.deepEqual([ok, last], [rate * 10, 429]);
  });
});
