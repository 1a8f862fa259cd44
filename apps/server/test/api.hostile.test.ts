// Hostile input against the write routes: every rejected request answers problem+json with a stable
// code and no internals, and leaves every stored row exactly as it was (snapshot before == after).
import assert from 'node:assert/strict';
import { pairDevice, snapshot, type TestSystem } from './harness.js';
import { assertProblem, dev, perBackend } from './api.assert.js';

interface Target {
  name: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  /** A valid body; hostile variants are derived from it. */
  valid: Record<string, unknown>;
  /** The operator-visible string field, if any. */
  text?: string;
  /** A numeric field and its valid range. */
  num?: string;
}

async function targets(ts: TestSystem): Promise<Target[]> {
  const d = await pairDevice(ts, 'hostile-dev');
  const cus = (await ts.call('POST', '/api/customers', { name: 'hostile-cus' })).json;
  const con = (await ts.call('POST', '/api/connections', { device_id: d.id, protocol: 'http' })).json;
  const cmd = (await ts.call('POST', `/api/devices/${d.id}/commands`, { type: 'reboot' })).json;
  const admin = {};
  return [
    {
      name: 'create customer',
      method: 'POST',
      url: '/api/customers',
      headers: admin,
      valid: { name: 'Cus X', notes: 'n' },
      text: 'name',
    },
    {
      name: 'replace customer',
      method: 'PUT',
      url: `/api/customers/${cus.id}`,
      headers: admin,
      valid: { name: 'Cus Y' },
      text: 'name',
    },
    {
      name: 'create device',
      method: 'POST',
      url: '/api/devices',
      headers: admin,
      valid: { name: 'dev-x' },
      text: 'name',
    },
    {
      name: 'patch device',
      method: 'PATCH',
      url: `/api/devices/${d.id}`,
      headers: admin,
      valid: { name: 'dev-y', rotation_interval_s: 600 },
      text: 'name',
      num: 'rotation_interval_s',
    },
    {
      name: 'create connection',
      method: 'POST',
      url: '/api/connections',
      headers: admin,
      valid: { device_id: d.id, protocol: 'http', bandwidth_limit_bytes: 1000 },
      num: 'bandwidth_limit_bytes',
    },
    {
      name: 'patch connection',
      method: 'PATCH',
      url: `/api/connections/${con.id}`,
      headers: admin,
      valid: { enabled: false, bandwidth_limit_bytes: 5 },
      num: 'bandwidth_limit_bytes',
    },
    {
      name: 'create connection with limits',
      method: 'POST',
      url: '/api/connections',
      headers: admin,
      valid: { device_id: d.id, protocol: 'socks5', max_connections: 10, rate_limit_down_kbps: 1000 },
      num: 'max_connections',
    },
    {
      name: 'patch connection rates',
      method: 'PATCH',
      url: `/api/connections/${con.id}`,
      headers: admin,
      valid: { rate_limit_down_kbps: 1000, rate_limit_up_kbps: 500 },
      num: 'rate_limit_up_kbps',
    },
    {
      name: 'queue command',
      method: 'POST',
      url: `/api/devices/${d.id}/commands`,
      headers: admin,
      valid: { type: 'reboot', ttl_s: 60 },
      num: 'ttl_s',
    },
    {
      name: 'create relay',
      method: 'POST',
      url: '/api/relays',
      headers: admin,
      valid: { name: 'rly-x', host: 'r.example.net', tunnel_port: 1194 },
      text: 'name',
      num: 'tunnel_port',
    },
    {
      name: 'pairing code',
      method: 'POST',
      url: '/api/pairing-codes',
      headers: admin,
      valid: { device_name: 'pc-x', ttl_s: 600 },
      text: 'device_name',
      num: 'ttl_s',
    },
    {
      name: 'webhook',
      method: 'POST',
      url: '/api/webhooks',
      headers: admin,
      valid: { url: 'https://h.example.com/x' },
    },
    {
      name: 'heartbeat',
      method: 'POST',
      url: `/api/devices/${d.id}/heartbeat`,
      headers: dev(d.token),
      valid: { metrics: { battery: 50 }, uptime_s: 5 },
      num: 'uptime_s',
    },
    {
      name: 'command result',
      method: 'POST',
      url: `/api/devices/${d.id}/commands/${cmd.id}/result`,
      headers: dev(d.token),
      valid: { status: 'acked' },
    },
    {
      name: 'pair',
      method: 'POST',
      url: '/api/public/pair',
      headers: { authorization: '' },
      valid: { code: 'AAAAA-AAAAA' },
    },
    {
      name: 'login',
      method: 'POST',
      url: '/api/auth/login',
      headers: { authorization: '' },
      valid: { email: 'a@example.com', password: 'x' },
    },
    {
      name: 'internal usage',
      method: 'POST',
      url: '/api/internal/usage',
      headers: { authorization: `Bearer ${ts.sys.ctx.internalToken}` },
      valid: { samples: [] },
    },
  ];
}

const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);

perBackend(
  'hostile input',
  ({ ts, test }) => {
    let all: Target[] = [];
    const get = async () => {
      if (!all.length) all = await targets(ts());
      return all;
    };

    /** Sends, expects a problem of `status` (and `code`), and that nothing stored changed. */
    async function rejected(
      t: Target,
      body: unknown,
      status: number,
      code?: string,
      headers: Record<string, string> = {},
    ) {
      const before = await snapshot(ts().db);
      const res = await ts().call(t.method, t.url, body, { ...t.headers, ...headers });
      const label = `${t.name}: ${typeof body === 'string' ? body.slice(0, 60) : JSON.stringify(body)?.slice(0, 60)}`;
      try {
        assertProblem(res, status, code);
      } catch (e) {
        (e as Error).message = `${label}\n${(e as Error).message}`;
        throw e;
      }
      assert.equal(await snapshot(ts().db), before, `${label}: stored rows changed`);
      return res;
    }

    test('unknown fields, wrong types, arrays, null, scalars → 400 and nothing changes', async () => {
      for (const t of await get()) {
        await rejected(t, { ...t.valid, is_admin: true }, 400, 'PP_ERR_API_VALIDATION');
        await rejected(t, [t.valid], 400, 'PP_ERR_API_VALIDATION');
        await rejected(t, [], 400, 'PP_ERR_API_VALIDATION');
        await rejected(t, 'null', 400, 'PP_ERR_API_VALIDATION');
        await rejected(t, '42', 400, 'PP_ERR_API_VALIDATION');
        await rejected(t, '"a string"', 400, 'PP_ERR_API_VALIDATION');
        for (const k of Object.keys(t.valid)) {
          // metrics tolerate unknown names (a newer agent), so an object there is not wrong
          for (const wrong of [
            ...(k === 'metrics' ? [] : [{ nested: true }]),
            [1, 2],
            k === 'enabled' ? 'yes' : true,
          ]) {
            await rejected(t, { ...t.valid, [k]: wrong }, 400, 'PP_ERR_API_VALIDATION');
          }
        }
      }
    });

    test('invalid JSON, empty body → 400 PP_ERR_API_BAD_JSON; deep nesting → 400', async () => {
      for (const t of await get()) {
        for (const raw of ['{"name":', '{name: 1}', "{'a':1}", '{"a":1}}', '\u0000', '{"a":1,}'])
          await rejected(t, raw, 400, 'PP_ERR_API_BAD_JSON');
        await rejected(t, '', 400, 'PP_ERR_API_BAD_JSON');
        await rejected(t, `{"x": ${deep(20_000)}}`, 400);
      }
    });

    test('a 1 MiB body → 413; wrong content type → 415', async () => {
      for (const t of await get()) {
        const big = JSON.stringify({ ...t.valid, pad: 'x'.repeat(1 << 20) });
        await rejected(t, big, 413, 'PP_ERR_API_BODY_TOO_LARGE');
        await rejected(t, JSON.stringify(t.valid), 415, 'PP_ERR_API_UNSUPPORTED_MEDIA', {
          'content-type': 'text/plain',
        });
        await rejected(t, 'name=x', 415, 'PP_ERR_API_UNSUPPORTED_MEDIA', {
          'content-type': 'application/x-www-form-urlencoded',
        });
        await rejected(t, '<a/>', 415, 'PP_ERR_API_UNSUPPORTED_MEDIA', { 'content-type': 'application/xml' });
      }
    });

    test('__proto__ and constructor.prototype keys → 400, nothing polluted', async () => {
      for (const t of await get()) {
        const v = JSON.stringify(t.valid).slice(1, -1);
        await rejected(t, `{${v}${v ? ',' : ''}"__proto__":{"polluted":1}}`, 400);
        await rejected(t, `{${v}${v ? ',' : ''}"constructor":{"prototype":{"polluted":1}}}`, 400);
        await rejected(t, `{"__proto__":{"is_admin":true}}`, 400);
      }
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    });

    test('control characters and 10k-character strings → 400', async () => {
      for (const t of await get()) {
        if (!t.text) continue;
        for (const s of [
          'bad\u0000name',
          'bad\nname',
          'tab\tname',
          'esc\u001b[31m',
          'del\u007f',
          'x'.repeat(10_000),
          '',
        ]) {
          await rejected(t, { ...t.valid, [t.text]: s }, 400, 'PP_ERR_API_VALIDATION');
        }
      }
    });

    test('negative, fractional, huge and non-finite numbers → 400', async () => {
      for (const t of await get()) {
        if (!t.num) continue;
        for (const n of ['-1', '-1e308', '1e308', '1.5', '9007199254740993', '1e400']) {
          const raw = JSON.stringify(t.valid).replace(new RegExp(`"${t.num}":[^,}]+`), `"${t.num}":${n}`);
          await rejected(t, raw, 400);
        }
      }
    });

    test('deep or large free-form JSON (command payload, result) → 400, never a database error', async () => {
      const ts_ = await get();
      const q = ts_.find((x) => x.name === 'queue command')!;
      const r = ts_.find((x) => x.name === 'command result')!;
      await rejected(q, `{"type":"reboot","payload":{"a":${deep(5_000)}}}`, 400, 'PP_ERR_API_VALIDATION');
      await rejected(q, `{"type":"reboot","payload":{"a":${deep(17)}}}`, 400, 'PP_ERR_API_VALIDATION');
      await rejected(
        q,
        JSON.stringify({ type: 'reboot', payload: { a: 'x'.repeat(20_000) } }),
        400,
        'PP_ERR_API_VALIDATION',
      );
      await rejected(r, `{"status":"succeeded","result":{"a":${deep(5_000)}}}`, 400, 'PP_ERR_API_VALIDATION');
      const ok = await ts().call(q.method, q.url, {
        type: 'config_update',
        payload: { a: { b: { c: [1, 2, { d: null }] } } },
      });
      assert.equal(ok.status, 201, ok.body);
      assert.deepEqual(ok.json.payload, { a: { b: { c: [1, 2, { d: null }] } } });
    });

    test('SQL-looking strings are stored verbatim as data, never executed', async () => {
      const evil = `'; DROP TABLE devices; --`;
      const res = await ts().call('POST', '/api/customers', { name: evil, notes: `" OR 1=1; DELETE FROM admins; --` });
      assert.equal(res.status, 201, res.body);
      assert.equal(res.json.name, evil);
      assert.equal((await ts().call('GET', `/api/customers/${res.json.id}`)).json.name, evil);
      const d = await ts().call('POST', '/api/devices', { name: `x'); DELETE FROM devices; --` });
      assert.equal(d.status, 201, d.body);
      assert.equal(d.json.device.name, `x'); DELETE FROM devices; --`);
      const search = await ts().call('GET', `/api/devices?q=${encodeURIComponent("' OR '1'='1")}`);
      assert.equal(search.status, 200);
      assert.equal(search.json.items.length, 0);
      assert.ok((await ts().db.query('SELECT count(*) FROM devices')).rows.length === 1);
      assert.ok(Number((await ts().db.query<{ n: number }>('SELECT count(*)::int AS n FROM admins')).rows[0]!.n) >= 1);
      // unicode that is not a control character is fine
      const u = await ts().call('POST', '/api/customers', { name: 'Ünïcødé 客户 🚀' });
      assert.equal(u.status, 201, u.body);
      assert.equal(u.json.name, 'Ünïcødé 客户 🚀');
    });

    test('duplicate names → 409 and nothing changes', async () => {
      await ts().call('POST', '/api/customers', { name: 'Dup Co' });
      await ts().call('POST', '/api/relays', { name: 'dup-relay', host: 'd.example.net' });
      const t = { name: 'dup', method: 'POST', headers: {}, valid: {} };
      await rejected({ ...t, url: '/api/customers' }, { name: 'dup co' }, 409, 'PP_ERR_API_CONFLICT');
      await rejected({ ...t, url: '/api/customers' }, { name: '  Dup Co  ' }, 409, 'PP_ERR_API_CONFLICT');
      await rejected(
        { ...t, url: '/api/relays' },
        { name: 'dup-relay', host: 'e.example.net' },
        409,
        'PP_ERR_API_CONFLICT',
      );
      await rejected({ ...t, url: '/api/devices' }, { name: 'hostile-dev' }, 409, 'PP_ERR_API_CONFLICT');
    });
  },
  { POCKETPROXY_PAIRING_RATE: '10000' },
);
