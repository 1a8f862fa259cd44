// Every route, a real successful request through the whole system (inject() on PGlite and PostgreSQL),
// its status and body checked against what /api/openapi.json publishes for it (JSON Schema, Ajv). The
// routes come from the document: one without a case here fails, so does a case for a route that is gone.
// The harness also checks every answer of every API test the same way (response-check.ts); this file
// makes sure each route is reached at least once, with the set-up it needs (device token, internal
// token, rotation link, pairing, OpenVPN on for the .ovpn profile).
import assert from 'node:assert/strict';
import { test as unit } from 'node:test';
import { z } from 'zod';
import * as S from '@pocketproxy/api-schema';
import { ADMIN, type TestSystem } from './harness.js';
import { dev, internal, perBackend, UNKNOWN, type Res } from './api.assert.js';
import { checkAnswer, oaPath, operation, violations, type OpenApiDoc } from './response-check.js';
import { buildOpenApi } from '../src/api/openapi.js';
import type { RouteDoc, Router } from '../src/api/route.js';

/** What the cases share: the objects earlier cases created. */
interface State {
  ts: TestSystem;
  device: { id: string; token: string };
  box: string;
  relay: string;
  customer: string;
  connection: { id: string; username: string; password: string; port: number; token: string };
  command: string;
  rotation: string;
  webhook: string;
  version: string;
  enrollment: { id: string; token: string };
  farmHost: string;
  farmDevice: { id: string; token: string };
}

const PASSWORD = 'Sup3r-secret!';
const RELAY_KEY = `${'A'.repeat(42)}E=`;
const noAuth = { authorization: '' };
/** A farm device's X25519 public key (any 32 bytes will do for the API). */
const farmKey = (n: number) => Buffer.alloc(32, n).toString('base64');

/**
 * One case per documented route ("METHOD /openapi/path"), run in this order; each makes real requests
 * that must succeed (several when the route answers more than one documented status).
 */
const CASES: [string, (s: State) => Promise<Res | Res[]>][] = [
  ['POST /api/auth/login', (s) => s.ts.call('POST', '/api/auth/login', ADMIN, noAuth)],
  ['GET /healthz', (s) => s.ts.call('GET', '/healthz', undefined, noAuth)],
  ['GET /metrics', (s) => s.ts.call('GET', '/metrics', undefined, noAuth)],
  ['GET /api/openapi.json', (s) => s.ts.call('GET', '/api/openapi.json', undefined, noAuth)],
  ['GET /api/public/ip', (s) => s.ts.call('GET', '/api/public/ip', undefined, noAuth)],
  [
    'POST /api/relays',
    async (s) => {
      const r = await s.ts.call('POST', '/api/relays', { name: 'relay-two', host: 'relay2.example.net' });
      s.relay = r.json?.id;
      return r;
    },
  ],
  ['GET /api/relays', (s) => s.ts.call('GET', '/api/relays')],
  ['GET /api/relays/{id}', (s) => s.ts.call('GET', `/api/relays/${s.relay}`)],
  ['PATCH /api/relays/{id}', (s) => s.ts.call('PATCH', `/api/relays/${s.relay}`, { public_key: RELAY_KEY })],
  ['POST /api/pairing-codes', (s) => s.ts.call('POST', '/api/pairing-codes', { device_name: 'phone-a' })],
  [
    'POST /api/public/pair',
    async (s) => {
      // without public_key: the answer carries the generated private key too
      const code = (await s.ts.call('POST', '/api/pairing-codes', {})).json.code;
      const r = await s.ts.call('POST', '/api/public/pair', { code, name: 'phone-b' }, noAuth);
      s.device = { id: r.json?.device_id, token: r.json?.auth_token };
      return r;
    },
  ],
  [
    'POST /api/devices',
    async (s) => {
      const r = await s.ts.call('POST', '/api/devices', { name: 'box-1', relay_id: s.relay });
      s.box = r.json?.device?.id;
      return r;
    },
  ],
  // Farm hosts (issue 14): a token, a phone enrolled with it, the host, its devices, a rename, its rotation.
  [
    'POST /api/enrollment-tokens',
    async (s) => {
      const r = await s.ts.call('POST', '/api/enrollment-tokens', { name: 'rack 1', max_devices: 5, ttl_s: 3600 });
      s.enrollment = { id: r.json?.id, token: r.json?.token };
      return r;
    },
  ],
  ['GET /api/enrollment-tokens', (s) => s.ts.call('GET', '/api/enrollment-tokens')],
  [
    'POST /api/public/enroll',
    async (s) => {
      const r = await s.ts.call(
        'POST',
        '/api/public/enroll',
        {
          token: s.enrollment.token,
          host: { key: 'k'.repeat(43), name: 'farm-1' },
          device: { hardware_id: 'R58M123ABC', kind: 'phone', model: 'Pixel 6' },
          public_key: farmKey(1),
          agent_version: '0.1.0',
        },
        noAuth,
      );
      s.farmHost = r.json?.farm_host_id;
      s.farmDevice = { id: r.json?.device_id, token: r.json?.auth_token };
      return r;
    },
  ],
  ['GET /api/farm-hosts', (s) => s.ts.call('GET', '/api/farm-hosts')],
  ['GET /api/farm-hosts/{id}', (s) => s.ts.call('GET', `/api/farm-hosts/${s.farmHost}`)],
  ['PATCH /api/farm-hosts/{id}', (s) => s.ts.call('PATCH', `/api/farm-hosts/${s.farmHost}`, { name: 'farm-one' })],
  [
    'POST /api/farm-hosts/{id}/rotate',
    async (s) => {
      const skipped = await s.ts.call('POST', `/api/farm-hosts/${s.farmHost}/rotate`, {});
      // online and able to rotate: queued
      const hb = await s.ts.call(
        'POST',
        `/api/devices/${s.farmDevice.id}/heartbeat`,
        { capabilities: ['rotate_ip'] },
        dev(s.farmDevice.token),
      );
      assert.equal(hb.status, 200, hb.body);
      const queued = await s.ts.call('POST', `/api/farm-hosts/${s.farmHost}/rotate`, { ttl_s: 60 });
      assert.deepEqual(
        [skipped.json.skipped.length, queued.json.items.map((i: { outcome: string }) => i.outcome)],
        [1, ['queued']],
      );
      return [skipped, queued];
    },
  ],
  ['DELETE /api/enrollment-tokens/{id}', (s) => s.ts.call('DELETE', `/api/enrollment-tokens/${s.enrollment.id}`)],
  [
    'POST /api/internal/relays/register',
    (s) =>
      s.ts.call(
        'POST',
        '/api/internal/relays/register',
        {
          name: 'relay-three',
          host: 'relay3.example.net',
          tunnel_port: 1194,
          push_url: 'http://127.0.0.1:8081',
          public_key: RELAY_KEY,
        },
        internal(s.ts),
      ),
  ],
  [
    'POST /api/internal/vpn/connected',
    async (s) => {
      const d = (await s.ts.call('GET', `/api/devices/${s.device.id}`)).json;
      const body = { device_id: s.device.id, vpn_ip: d.vpn_ip, relay_id: d.relay_id, endpoint: '198.18.0.1:51820' };
      return s.ts.call('POST', '/api/internal/vpn/connected', body, internal(s.ts));
    },
  ],
  [
    'GET /api/internal/tunnel/peers',
    async (s) => {
      const relay = (await s.ts.call('GET', `/api/devices/${s.device.id}`)).json.relay_id;
      return s.ts.call('GET', `/api/internal/tunnel/peers?relay_id=${relay}`, undefined, internal(s.ts));
    },
  ],
  [
    'POST /api/customers',
    async (s) => {
      const r = await s.ts.call('POST', '/api/customers', { name: 'Acme', email: 'ops@example.com' });
      s.customer = r.json?.id;
      return r;
    },
  ],
  ['GET /api/customers', (s) => s.ts.call('GET', '/api/customers')],
  ['GET /api/customers/{id}', (s) => s.ts.call('GET', `/api/customers/${s.customer}`)],
  [
    'PUT /api/customers/{id}',
    (s) => s.ts.call('PUT', `/api/customers/${s.customer}`, { name: 'Acme Ltd', notes: 'n' }),
  ],
  [
    'POST /api/connections',
    async (s) => {
      const body = {
        device_id: s.device.id,
        customer_id: s.customer,
        protocol: 'http',
        password: PASSWORD,
        max_connections: 10,
        allow_from: ['198.51.100.0/24'],
        bandwidth_limit_bytes: 1_000_000_000,
      };
      const r = await s.ts.call('POST', '/api/connections', body);
      const j = r.json ?? {};
      s.connection = {
        id: j.id,
        username: j.username,
        password: PASSWORD,
        port: j.port,
        token: String(j.rotation_url).split('/').pop()!,
      };
      return r;
    },
  ],
  ['GET /api/connections', (s) => s.ts.call('GET', '/api/connections')],
  ['GET /api/connections/{id}', (s) => s.ts.call('GET', `/api/connections/${s.connection.id}`)],
  [
    'PATCH /api/connections/{id}',
    (s) => s.ts.call('PATCH', `/api/connections/${s.connection.id}`, { rate_limit_down_kbps: 5000 }),
  ],
  ['GET /api/connections/{id}/ovpn', (s) => s.ts.call('GET', `/api/connections/${s.connection.id}/ovpn`)],
  [
    'POST /api/devices/{id}/heartbeat',
    (s) =>
      s.ts.call(
        'POST',
        `/api/devices/${s.device.id}/heartbeat`,
        {
          metrics: { battery: 80, charging: true, signal: -70, carrier: 'Test', network_type: 'LTE' },
          public_ip: '198.18.0.1',
          agent_version: '0.1.0',
          uptime_s: 10,
          usage: [{ connection_id: s.connection.id, bytes_in: 100, bytes_out: 2000 }],
          proxy: Object.fromEntries(Object.keys(S.ProxyStats.shape).map((k) => [k, 1])),
          tunnel_transport: 'udp',
          capabilities: [...S.CommandType.options],
        },
        dev(s.device.token),
      ),
  ],
  ['GET /api/devices', (s) => s.ts.call('GET', '/api/devices')],
  ['GET /api/devices/{id}', (s) => s.ts.call('GET', `/api/devices/${s.device.id}`)],
  ['PATCH /api/devices/{id}', (s) => s.ts.call('PATCH', `/api/devices/${s.box}`, { description: 'by hand' })],
  [
    'GET /api/devices/{id}/credentials',
    async (s) => {
      const r = await s.ts.call('GET', `/api/devices/${s.device.id}/credentials`, undefined, dev(s.device.token));
      s.version = r.json?.version;
      return r;
    },
  ],
  [
    'POST /api/devices/{id}/credentials/applied',
    (s) =>
      s.ts.call('POST', `/api/devices/${s.device.id}/credentials/applied`, { version: s.version }, dev(s.device.token)),
  ],
  [
    'GET /api/devices/{id}/tunnel',
    (s) => s.ts.call('GET', `/api/devices/${s.device.id}/tunnel`, undefined, dev(s.device.token)),
  ],
  [
    'GET /api/internal/devices/{id}/forwarding',
    (s) => s.ts.call('GET', `/api/internal/devices/${s.device.id}/forwarding`, undefined, internal(s.ts)),
  ],
  [
    'POST /api/internal/tunnel/forwarding',
    (s) => s.ts.call('POST', '/api/internal/tunnel/forwarding', { device_ids: [s.device.id, s.box] }, internal(s.ts)),
  ],
  [
    'POST /api/internal/usage',
    (s) =>
      s.ts.call(
        'POST',
        '/api/internal/usage',
        { samples: [{ port: s.connection.port, bytes_in: 10, bytes_out: 20 }] },
        internal(s.ts),
      ),
  ],
  [
    'POST /api/internal/openvpn/auth',
    (s) =>
      s.ts.call(
        'POST',
        '/api/internal/openvpn/auth',
        { username: s.connection.username, password: PASSWORD, untrusted_ip: '198.51.100.7' },
        internal(s.ts),
      ),
  ],
  [
    'POST /api/internal/openvpn/connect',
    (s) =>
      s.ts.call(
        'POST',
        '/api/internal/openvpn/connect',
        { username: s.connection.username, vpn_ip: '10.8.0.6' },
        internal(s.ts),
      ),
  ],
  [
    'POST /api/devices/{id}/commands',
    async (s) => {
      const r = await s.ts.call('POST', `/api/devices/${s.device.id}/commands`, { type: 'reboot', payload: {} });
      s.command = r.json?.id;
      return r;
    },
  ],
  ['GET /api/devices/{id}/commands', (s) => s.ts.call('GET', `/api/devices/${s.device.id}/commands`)],
  [
    'POST /api/devices/{id}/commands/{cmd}/result',
    (s) =>
      s.ts.call(
        'POST',
        `/api/devices/${s.device.id}/commands/${s.command}/result`,
        { status: 'failed', result: { error: 'not allowed' } },
        dev(s.device.token),
      ),
  ],
  // A rotation through each route that starts or joins one: bulk (queued, and not_found), the link
  // (joins it, 202), its status URL (202 while running, 200 once the device has reported).
  [
    'POST /api/devices/rotate',
    (s) => s.ts.call('POST', '/api/devices/rotate', { device_ids: [s.device.id, UNKNOWN.dev] }),
  ],
  [
    'GET /api/public/rotate/{token}',
    async (s) => {
      const r = await s.ts.call('GET', `/api/public/rotate/${s.connection.token}`, undefined, noAuth);
      s.rotation = r.json?.command_id;
      return r;
    },
  ],
  [
    'GET /api/public/rotate/{token}/status',
    async (s) => {
      const url = `/api/public/rotate/${s.connection.token}/status`;
      const running = await s.ts.call('GET', url, undefined, noAuth);
      const done = await s.ts.call(
        'POST',
        `/api/devices/${s.device.id}/commands/${s.rotation}/result`,
        { status: 'succeeded', result: { old_ip: '198.18.0.1', new_ip: '198.18.0.2' } },
        dev(s.device.token),
      );
      assert.equal(done.status, 200, done.body);
      const finished = await s.ts.call('GET', url, undefined, noAuth);
      assert.deepEqual([running.status, finished.status], [202, 200]);
      return [running, finished];
    },
  ],
  ['GET /api/devices/{id}/ip-history', (s) => s.ts.call('GET', `/api/devices/${s.device.id}/ip-history`)],
  [
    'GET /api/devices/{id}/usage',
    async (s) => [
      await s.ts.call('GET', `/api/devices/${s.device.id}/usage`),
      await s.ts.call('GET', `/api/devices/${s.device.id}/usage?granularity=day`),
    ],
  ],
  ['GET /api/devices/stats', (s) => s.ts.call('GET', '/api/devices/stats')],
  ['GET /api/usage', (s) => s.ts.call('GET', '/api/usage?granularity=day')],
  ['GET /api/overview', (s) => s.ts.call('GET', '/api/overview')],
  [
    'POST /api/connections/bulk',
    async (s) => [
      await s.ts.call('POST', '/api/connections/bulk', { ids: [s.connection.id], action: 'disable' }),
      await s.ts.call('POST', '/api/connections/bulk', { ids: [s.connection.id], action: 'rotate' }),
    ],
  ],
  [
    'POST /api/webhooks',
    async (s) => {
      const r = await s.ts.call('POST', '/api/webhooks', { url: 'http://127.0.0.1:9/hook' });
      s.webhook = r.json?.id;
      return r;
    },
  ],
  ['GET /api/webhooks', (s) => s.ts.call('GET', '/api/webhooks')],
  ['DELETE /api/webhooks/{id}', (s) => s.ts.call('DELETE', `/api/webhooks/${s.webhook}`)],
  [
    'POST /api/internal/vpn/disconnected',
    (s) => s.ts.call('POST', '/api/internal/vpn/disconnected', { device_id: s.device.id }, internal(s.ts)),
  ],
  ['DELETE /api/connections/{id}', (s) => s.ts.call('DELETE', `/api/connections/${s.connection.id}`)],
  ['DELETE /api/customers/{id}', (s) => s.ts.call('DELETE', `/api/customers/${s.customer}`)],
  ['DELETE /api/devices/{id}', (s) => s.ts.call('DELETE', `/api/devices/${s.box}`)],
  [
    'DELETE /api/farm-hosts/{id}',
    async (s) => {
      // 409 while it has a device; 204 once its device is deleted.
      const busy = await s.ts.call('DELETE', `/api/farm-hosts/${s.farmHost}`);
      assert.equal(busy.status, 409, busy.body);
      assert.equal((await s.ts.call('DELETE', `/api/devices/${s.farmDevice.id}`)).status, 204);
      return s.ts.call('DELETE', `/api/farm-hosts/${s.farmHost}`);
    },
  ],
];

/** "METHOD /path" of every operation in the document. */
const operations = (doc: OpenApiDoc) =>
  Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));

perBackend(
  'every route answers what /api/openapi.json says',
  ({ ts, test }) => {
    let doc: OpenApiDoc;
    const state = {} as State;
    const reached = new Set<string>();

    test('every documented route has a case here, and every case a documented route', async () => {
      const res = await ts().call('GET', '/api/openapi.json', undefined, noAuth);
      assert.equal(res.status, 200);
      doc = res.json;
      state.ts = ts();
      const cases = CASES.map(([k]) => k);
      assert.equal(new Set(cases).size, cases.length, 'a route with two cases');
      const documented = operations(doc);
      assert.deepEqual(
        documented.filter((o) => !cases.includes(o)),
        [],
        'routes without a case: add one to CASES in responses.test.ts',
      );
      assert.deepEqual(
        cases.filter((c) => !documented.includes(c)),
        [],
        'cases for routes the document does not have',
      );
    });

    for (const [key, run] of CASES)
      test(key, async () => {
        assert.ok(doc, 'the document was read');
        const [method, path] = key.split(' ') as [string, string];
        const answers = [await run(state)].flat();
        for (const res of answers) {
          assert.ok(res.status >= 200 && res.status < 300, `${key}: ${res.status} ${res.body.slice(0, 500)}`);
          const json = operation(doc, method, path)?.responses[String(res.status)]?.content?.['application/json'];
          const body = json ? res.json : res.body;
          const bad = violations(doc, method, path, res.status, body, res.headers['content-type'] as string);
          assert.deepEqual(bad, [], `${key} ${res.status}: ${res.body.slice(0, 300)}`);
        }
        reached.add(key);
      });

    test('every case ran', () => {
      assert.deepEqual(
        CASES.map(([k]) => k).filter((k) => !reached.has(k)),
        [],
      );
      return Promise.resolve();
    });
  },
  { POCKETPROXY_OPENVPN: 'on' },
);

// ---- the check itself: it refuses what the contract does not allow ----

const route = (over: Partial<RouteDoc>): RouteDoc => ({
  method: 'GET',
  url: '/api/devices/:id',
  auth: 'admin',
  summary: 'Get a device',
  tag: 'devices',
  status: 200,
  response: S.Device,
  ...over,
});
const device = {
  id: 'dev_0123456789',
  name: 'phone',
  description: '',
  status: 'online',
  tunnel_connected: true,
  relay_id: null,
  vpn_ip: '192.168.255.2',
  current_ip: null,
  last_seen_at: null,
  paired_at: '2026-11-25T12:00:00.000Z',
  agent_version: null,
  rotation_interval_s: null,
  next_rotation_at: null,
  metrics: { battery: null, charging: null, signal: null, carrier: null, network_type: null },
  proxy_stats: null,
  tunnel_transport: null,
  capabilities: null,
  farm_host_id: null,
  farm_host_name: null,
  kind: 'device',
  hardware_id: null,
  model: null,
  created_at: '2026-11-25T12:00:00.000Z',
  updated_at: '2026-11-25T12:00:00.000Z',
};

unit('the published schema is the zod schema, and the check refuses what it does not allow', () => {
  const doc = buildOpenApi([route({})], 'test');
  const published = operation(doc, 'GET', '/api/devices/{id}')!.responses['200']!.content!['application/json']!.schema;
  assert.deepEqual(published, z.toJSONSchema(S.Device, { io: 'output', unrepresentable: 'any' }));
  const check = (body: unknown, status = 200) => violations(doc, 'GET', '/api/devices/{id}', status, body);
  assert.deepEqual(check(device), []);

  const { name: _, ...noName } = device;
  assert.match(check(noName).join('\n'), /must have required property 'name'/);
  assert.match(check({ ...device, secret: 'x' }).join('\n'), /must NOT have additional properties: 'secret'/);
  assert.match(check({ ...device, metrics: { ...device.metrics, battery: '80' } }).join('\n'), /\/metrics\/battery/);
  assert.match(check({ ...device, status: 'sleeping' }).join('\n'), /\/status must be equal to one of/);
  assert.match(check(device, 202).join('\n'), /status 202 is not documented/);

  // a 204 route with a body, a raw route with the wrong content type
  const empty = buildOpenApi([route({ method: 'DELETE', status: 204, response: undefined })], 'test');
  assert.deepEqual(violations(empty, 'DELETE', '/api/devices/{id}', 204, ''), []);
  assert.match(violations(empty, 'DELETE', '/api/devices/{id}', 204, '{}').join(), /documents no body/);
  const raw = buildOpenApi([route({ url: '/metrics', response: undefined, produces: 'text/plain' })], 'test');
  assert.deepEqual(violations(raw, 'GET', '/metrics', 200, 'x 1', 'text/plain; charset=utf-8'), []);
  assert.match(violations(raw, 'GET', '/metrics', 200, '{}', 'application/json').join(), /content type/);

  // the harness's check (every answer of every API test) throws on the same answers
  const r = route({});
  assert.doesNotThrow(() => checkAnswer(r, 200, device));
  const quiet = console.error;
  console.error = () => {};
  try {
    assert.throws(() => checkAnswer(r, 200, noName), /must have required property 'name'/);
    assert.throws(() => checkAnswer(r, 200, { ...device, private_key: 'k' }), /additional properties: 'private_key'/);
  } finally {
    console.error = quiet;
  }
  assert.equal(oaPath('/api/devices/:id/commands/:cmd/result'), '/api/devices/{id}/commands/{cmd}/result');
});

// ---- and the compiler refuses handlers that do not return their response schema's type ----
// (never run: `tsc` checks that each of these is an error)
export function typeLevel(r: Router) {
  const R = z.object({ a: z.string(), n: z.object({ b: z.number() }).nullable() });
  const base = { method: 'GET', url: '/x', auth: 'public', summary: 'x', tag: 'x', response: R } as const;
  const extra = { a: 'x', n: { b: 1, leaked: 'secret' } };
  // @ts-expect-error a field the schema does not declare (n.leaked), from a value that is not a fresh literal
  r.add({ ...base, handler: async () => extra });
  // @ts-expect-error a field of the wrong type
  r.add({ ...base, handler: async () => ({ a: 1, n: null }) });
  // @ts-expect-error a required field missing
  r.add({ ...base, handler: async () => ({ n: null }) });
  // @ts-expect-error a route without a response schema answers nothing (204)
  r.add({ ...base, response: undefined, status: 204, handler: async () => ({ a: 'x' }) });
  // @ts-expect-error a raw route answers text
  r.add({ ...base, response: undefined, produces: 'text/plain', handler: async () => ({ a: 'x' }) });
  // and these are fine
  r.add({ ...base, handler: async () => ({ a: 'x', n: { b: 1 } }) });
  r.add({ ...base, handler: async ({ req }) => ({ a: req.ip, n: null }) });
  r.add({ ...base, response: undefined, status: 204, handler: async () => {} });
}
