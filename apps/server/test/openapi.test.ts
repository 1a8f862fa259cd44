// /api/openapi.json: every route of docs/design.md §3 exists and is documented; the document lists exactly the
// routes the server answers, and looks like valid OpenAPI 3.1 (paths, parameters, security, schemas).
import assert from 'node:assert/strict';
import { perBackend } from './api.assert.js';

/** docs/design.md §3: fixed names outside tools rely on. */
const CONTRACT: [string, string][] = [
  ['POST', '/api/auth/login'],
  ['GET', '/api/devices'],
  ['POST', '/api/devices'],
  ['GET', '/api/devices/:id'],
  ['PATCH', '/api/devices/:id'],
  ['DELETE', '/api/devices/:id'],
  ['POST', '/api/devices/:id/commands'],
  ['GET', '/api/devices/:id/commands'],
  ['GET', '/api/devices/:id/ip-history'],
  ['POST', '/api/pairing-codes'],
  ['GET', '/api/connections'],
  ['POST', '/api/connections'],
  ['GET', '/api/connections/:id'],
  ['PATCH', '/api/connections/:id'],
  ['DELETE', '/api/connections/:id'],
  ['GET', '/api/connections/:id/ovpn'],
  ['GET', '/api/customers'],
  ['POST', '/api/customers'],
  ['GET', '/api/customers/:id'],
  ['PUT', '/api/customers/:id'],
  ['DELETE', '/api/customers/:id'],
  ['GET', '/api/relays'],
  ['POST', '/api/relays'],
  ['GET', '/api/overview'],
  ['GET', '/api/public/rotate/:token'],
  ['GET', '/api/openapi.json'],
  ['GET', '/healthz'],
  ['GET', '/metrics'],
  ['POST', '/api/public/pair'],
  ['POST', '/api/public/enroll'],
  ['GET', '/api/public/ip'],
  ['POST', '/api/devices/:id/heartbeat'],
  ['POST', '/api/devices/:id/commands/:cmd/result'],
  ['POST', '/api/internal/vpn/connected'],
  ['POST', '/api/internal/vpn/disconnected'],
  ['POST', '/api/internal/openvpn/auth'],
  ['POST', '/api/internal/openvpn/connect'],
];

/** Beyond those fixed names: what the code adds (webhooks, usage, device sync, relay registration, ...). */
const EXTRA: [string, string][] = [
  ['GET', '/api/devices/:id/usage'],
  ['GET', '/api/devices/:id/credentials'],
  ['GET', '/api/devices/:id/tunnel'],
  ['GET', '/api/relays/:id'],
  ['PATCH', '/api/relays/:id'],
  ['GET', '/api/webhooks'],
  ['POST', '/api/webhooks'],
  ['DELETE', '/api/webhooks/:id'],
  ['GET', '/api/internal/devices/:id/forwarding'],
  ['GET', '/api/internal/tunnel/peers'],
  ['POST', '/api/internal/tunnel/forwarding'],
  ['POST', '/api/internal/relays/register'],
  ['POST', '/api/internal/usage'],
  ['POST', '/api/devices/rotate'],
  ['GET', '/api/public/rotate/:token/status'],
  ['POST', '/api/devices/:id/credentials/applied'],
  ['POST', '/api/connections/bulk'],
  ['GET', '/api/devices/stats'],
  ['GET', '/api/usage'],
  ['POST', '/api/enrollment-tokens'],
  ['GET', '/api/enrollment-tokens'],
  ['DELETE', '/api/enrollment-tokens/:id'],
  ['GET', '/api/farm-hosts'],
  ['GET', '/api/farm-hosts/:id'],
  ['PATCH', '/api/farm-hosts/:id'],
  ['DELETE', '/api/farm-hosts/:id'],
  ['POST', '/api/farm-hosts/:id/rotate'],
];

const oaPath = (u: string) => u.replace(/:(\w+)/g, '{$1}');

perBackend('openapi', ({ ts, test }) => {
  test('every docs/design.md §3 route is registered', async () => {
    for (const [method, url] of CONTRACT)
      assert.ok(ts().sys.api.hasRoute({ method: method as 'GET', url }), `${method} ${url} is missing`);
    assert.ok(ts().sys.api.hasRoute({ method: 'GET', url: '/ws' }));
  });

  test('/api/openapi.json is OpenAPI 3.1 and documents exactly the routes the server has', async () => {
    const res = await ts().call('GET', '/api/openapi.json', undefined, { authorization: '' });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    const doc = res.json;
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(typeof doc.info.title, 'string');
    assert.equal(typeof doc.info.version, 'string');
    const documented = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      assert.match(path, /^\/[\w\-./{}]*$/, path);
      for (const m of Object.keys(ops)) documented.add(`${m.toUpperCase()} ${path}`);
    }
    const expected = new Set([...CONTRACT, ...EXTRA].map(([m, u]) => `${m} ${oaPath(u)}`));
    assert.deepEqual(
      [...expected].filter((x) => !documented.has(x)),
      [],
      'routes missing from the document',
    );
    assert.deepEqual(
      [...documented].filter((x) => !expected.has(x)),
      [],
      'documented routes this test does not know: add them to EXTRA (and test them)',
    );
    // and each documented route is served
    for (const x of documented) {
      const [m, p] = x.split(' ') as [string, string];
      assert.ok(
        ts().sys.api.hasRoute({ method: m as 'GET', url: p.replace(/\{(\w+)\}/g, ':$1') }),
        `${x} documented but not served`,
      );
    }
  });

  test('operations: summary, tags, path parameters, security by kind, request bodies, problem responses', async () => {
    const doc = (await ts().call('GET', '/api/openapi.json')).json;
    const schemes = Object.keys(doc.components.securitySchemes);
    assert.deepEqual(schemes.sort(), ['admin', 'device', 'internal']);
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(ops)) {
        const where = `${method.toUpperCase()} ${path}`;
        assert.ok(op.summary?.length > 5, `${where}: summary`);
        assert.ok(Array.isArray(op.tags) && op.tags.length === 1, `${where}: tags`);
        for (const n of names)
          assert.ok(
            op.parameters.some((p: any) => p.in === 'path' && p.name === n && p.required === true),
            `${where}: path parameter ${n}`,
          );
        for (const p of op.parameters)
          assert.ok(['path', 'query'].includes(p.in) && typeof p.schema === 'object', `${where}: parameter ${p.name}`);
        const codes = Object.keys(op.responses);
        assert.ok(
          codes.some((c) => /^2\d\d$/.test(c)),
          `${where}: a 2xx response`,
        );
        assert.ok(op.responses.default?.content?.['application/problem+json'], `${where}: problem response`);
        if (['post', 'put', 'patch'].includes(method) && !path.startsWith('/api/internal/openvpn')) {
          assert.equal(
            op.requestBody?.content?.['application/json']?.schema?.type,
            'object',
            `${where}: JSON object body`,
          );
        }
        const isPublic =
          path.startsWith('/api/public/') ||
          ['/api/auth/login', '/healthz', '/metrics', '/api/openapi.json'].includes(path);
        const isInternal = path.startsWith('/api/internal/');
        const isDevice =
          /\/heartbeat$|\/result$|\/credentials$|\/credentials\/applied$|\/tunnel$/.test(path) && !isInternal;
        const want = isPublic ? undefined : isInternal ? 'internal' : isDevice ? 'device' : 'admin';
        assert.deepEqual(
          op.security?.map((s: Record<string, unknown>) => Object.keys(s)[0]),
          want ? [want] : undefined,
          `${where}: security`,
        );
      }
    }
    // spot checks of schemas generated from the zod declarations
    const login = doc.paths['/api/auth/login'].post.requestBody.content['application/json'].schema;
    assert.deepEqual(login.required.sort(), ['email', 'password']);
    assert.equal(login.additionalProperties, false, 'strict bodies say so');
    const cmd = doc.paths['/api/devices/{id}/commands'].post.requestBody.content['application/json'].schema;
    assert.deepEqual(cmd.properties.type.enum, [
      'rotate_ip',
      'wifi_toggle',
      'airplane_mode',
      'reboot',
      'config_update',
    ]);
    const conn = doc.paths['/api/connections'].post.responses['201'].content['application/json'].schema;
    for (const k of ['id', 'device_id', 'customer_id', 'protocol', 'host', 'port', 'username', 'password', 'enabled'])
      assert.ok(k in conn.properties, `Connection.${k}`);
    assert.ok(
      doc.paths['/metrics'].get.responses['200'].content['text/plain; version=0.0.4; charset=utf-8'] ||
        Object.keys(doc.paths['/metrics'].get.responses['200'].content)[0]!.startsWith('text/plain'),
    );
  });
});
