// Admin sign-in and sessions: POST /api/auth/login and the JWT every admin route checks; /healthz, /metrics.
import assert from 'node:assert/strict';
import { ADMIN } from './harness.js';
import { assertProblem, forgedToken, freshToken, perBackend } from './api.assert.js';

perBackend('auth', ({ ts, test }) => {
  const login = (body: unknown) => ts().call('POST', '/api/auth/login', body, { authorization: '' });

  test('200: right email and password give a JWT that opens admin routes', async () => {
    const res = await login(ADMIN);
    assert.equal(res.status, 200, res.body);
    assert.match(res.json.token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.ok(Date.parse(res.json.expires_at) > ts().clock.now().getTime());
    const d = await ts().call('GET', '/api/devices', undefined, { authorization: `Bearer ${res.json.token}` });
    assert.equal(d.status, 200);
  });

  test('200: the email is case-insensitive', async () => {
    const res = await login({ ...ADMIN, email: ADMIN.email.toUpperCase() });
    assert.equal(res.status, 200, res.body);
  });

  test('401: wrong password and unknown email answer the same', async () => {
    const a = await login({ ...ADMIN, password: 'wrong-password-123' });
    assertProblem(a, 401, 'PP_ERR_API_LOGIN_FAILED');
    const b = await login({ email: 'nobody@example.com', password: ADMIN.password });
    assertProblem(b, 401, 'PP_ERR_API_LOGIN_FAILED');
    assert.equal(a.json.detail, b.json.detail);
    assert.doesNotMatch(a.body + b.body, /correct-horse|password_hash|scrypt/);
  });

  test('400: malformed login bodies', async () => {
    for (const body of [
      {},
      { email: 'not-an-email', password: 'x' },
      { email: ADMIN.email },
      { email: ADMIN.email, password: '' },
      { ...ADMIN, extra: 1 },
      { email: 5, password: 5 },
    ]) {
      const res = await login(body);
      assertProblem(res, 400, 'PP_ERR_API_VALIDATION');
      assert.ok(Array.isArray(res.json.errors), res.body);
    }
  });

  test('429: the eleventh try within a minute is refused, with retry-after; the window passes', async () => {
    const body = { email: 'ratelimited@example.com', password: 'whatever-123' };
    for (let i = 0; i < 10; i++) assertProblem(await login(body), 401, 'PP_ERR_API_LOGIN_FAILED');
    const res = await login(body);
    assertProblem(res, 429, 'PP_ERR_API_RATE_LIMITED');
    assert.ok(Number(res.headers['retry-after']) >= 1);
    ts().clock.advance(61_000);
    assertProblem(await login(body), 401, 'PP_ERR_API_LOGIN_FAILED');
  });

  test('429: failed logins per address across emails (20 per 15 min); other addresses unaffected; a success is not a failure', async () => {
    const from = (remoteAddress: string, body: unknown) =>
      ts().sys.api.inject({
        method: 'POST',
        url: '/api/auth/login',
        remoteAddress,
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify(body),
      });
    const status = async (r: Awaited<ReturnType<typeof from>>) => r.statusCode;
    // Successful logins give their count back: five of them, then still twenty failures before the limit.
    for (let i = 0; i < 5; i++) assert.equal(await status(await from('203.0.113.9', ADMIN)), 200);
    for (let i = 0; i < 20; i++)
      assert.equal(
        await status(await from('203.0.113.9', { email: `spray${i}@example.com`, password: 'guess-123456' })),
        401,
      );
    // Spraying: twenty emails, one failure each, from one address; the next try is refused whatever the email, even the right password.
    for (let i = 0; i < 20; i++)
      assert.equal(
        await status(await from('203.0.113.7', { email: `spray${i}@example.com`, password: 'guess-123456' })),
        401,
        `try ${i}`,
      );
    for (const body of [{ email: 'spray99@example.com', password: 'guess-123456' }, ADMIN]) {
      const res = await from('203.0.113.7', body);
      assert.equal(res.statusCode, 429, res.body);
      assert.equal(res.json().code, 'PP_ERR_API_RATE_LIMITED');
      const retry = Number(res.headers['retry-after']);
      assert.ok(retry >= 1 && retry <= 900, `retry-after ${retry}`);
    }
    assert.equal(
      await status(await from('203.0.113.9', { email: 'spray99@example.com', password: 'guess-123456' })),
      429,
    );
    assert.equal(await status(await from('203.0.113.8', ADMIN)), 200, 'another address signs in');
    assert.equal(
      await status(await from('203.0.113.8', { email: 'spray0@example.com', password: 'guess-123456' })),
      401,
    );
    ts().clock.advance(15 * 60_000 + 1_000);
    assert.equal(await status(await from('203.0.113.7', ADMIN)), 200, 'the window passes');
  });

  test('401: no token, not a bearer, garbage, other-key JWT', async () => {
    const url = '/api/devices';
    assertProblem(await ts().call('GET', url, undefined, { authorization: '' }), 401, 'PP_ERR_API_UNAUTHENTICATED');
    assertProblem(
      await ts().call('GET', url, undefined, { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }),
      401,
      'PP_ERR_API_UNAUTHENTICATED',
    );
    assertProblem(
      await ts().call('GET', url, undefined, { authorization: 'Bearer not.a.jwt' }),
      401,
      'PP_ERR_API_UNAUTHENTICATED',
    );
    assertProblem(
      await ts().call('GET', url, undefined, { authorization: `Bearer ${await forgedToken(ts())}` }),
      401,
      'PP_ERR_API_UNAUTHENTICATED',
    );
    // alg "none": an unsigned token with the right claims
    const h = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const p = Buffer.from(JSON.stringify({ sub: 'adm_x', aud: 'pocketproxy-admin', exp: 9999999999 })).toString(
      'base64url',
    );
    assertProblem(
      await ts().call('GET', url, undefined, { authorization: `Bearer ${h}.${p}.` }),
      401,
      'PP_ERR_API_UNAUTHENTICATED',
    );
  });

  test('401: a device token or the internal token is no admin session', async () => {
    assertProblem(
      await ts().call('GET', '/api/devices', undefined, { authorization: `Bearer ${ts().sys.ctx.internalToken}` }),
      401,
    );
  });

  test('401 PP_ERR_API_SESSION_EXPIRED once the JWT has expired (FakeClock)', async () => {
    const token = await freshToken(ts());
    const ttl = ts().sys.ctx.config.jwtTtlS;
    ts().clock.advance(ttl * 1000 + 1000);
    try {
      const res = await ts().call('GET', '/api/overview', undefined, { authorization: `Bearer ${token}` });
      assertProblem(res, 401, 'PP_ERR_API_SESSION_EXPIRED');
      const fresh = await freshToken(ts());
      assert.equal(
        (await ts().call('GET', '/api/overview', undefined, { authorization: `Bearer ${fresh}` })).status,
        200,
      );
    } finally {
      ts().clock.advance(-(ttl * 1000 + 1000));
    }
  });

  test('404 problem for an unknown route; security headers on every answer', async () => {
    const res = await ts().call('GET', '/api/nope');
    assertProblem(res, 404, 'PP_ERR_API_ROUTE_NOT_FOUND');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
  });

  test('GET /healthz answers ok with the database kind', async () => {
    const res = await ts().call('GET', '/healthz', undefined, { authorization: '' });
    assert.equal(res.status, 200);
    assert.equal(res.json.status, 'ok');
    assert.equal(res.json.database, ts().db.kind);
  });

  test('GET /metrics is Prometheus text with the fleet gauges', async () => {
    await ts().call('GET', '/api/overview');
    const res = await ts().call('GET', '/metrics', undefined, { authorization: '' });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.match(res.body, /^# TYPE pocketproxy_devices gauge$/m);
    assert.match(res.body, /^pocketproxy_devices\{status="online"\} \d+$/m);
    assert.match(res.body, /^pocketproxy_commands_open \d+$/m);
    assert.match(res.body, /pocketproxy_http_request_duration_seconds_count\{[^}]*route="\/api\/overview"/);
  });
});
