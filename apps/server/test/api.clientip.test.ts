// The address the API believes a request comes from (request.ip: rate-limit keys, logs, /api/public/ip),
// without and with POCKETPROXY_TRUST_PROXY: the client-chosen leftmost X-Forwarded-For never counts.
import assert from 'node:assert/strict';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import { createApi } from '../src/api/app.js';
import type { Ctx } from '../src/context.js';
import { perBackend } from './api.assert.js';

perBackend(
  'client address and X-Forwarded-For',
  ({ ts, test }) => {
    /** An API on the shared system with its own trusted proxies, fresh rate limits and a captured log. */
    async function apiWith(trustProxy: string[]) {
      const lines: Record<string, unknown>[] = [];
      const log = pino(
        { level: 'info' },
        { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
      );
      const ctx = { ...ts().sys.ctx, log, config: { ...ts().sys.ctx.config, trustProxy } } as Ctx;
      const app = await createApi(ctx);
      await app.ready();
      return { app, lines };
    }
    const send = (
      app: FastifyInstance,
      method: 'GET' | 'POST',
      url: string,
      remoteAddress: string,
      xff?: string,
      body?: unknown,
    ) =>
      app.inject({
        method,
        url,
        remoteAddress,
        headers: {
          ...(xff === undefined ? {} : { 'x-forwarded-for': xff }),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        payload: body === undefined ? undefined : JSON.stringify(body),
      });
    const ipOf = async (app: FastifyInstance, remoteAddress: string, xff?: string) =>
      (await send(app, 'GET', '/api/public/ip', remoteAddress, xff)).json().ip as string;
    /** Eleven pair attempts with bad codes (POCKETPROXY_PAIRING_RATE is 10/min): the statuses. */
    async function pairTries(app: FastifyInstance, remote: string, xff: (i: number) => string | undefined, n = 11) {
      const out: number[] = [];
      for (let i = 0; i < n; i++)
        out.push((await send(app, 'POST', '/api/public/pair', remote, xff(i), { code: 'ZZZZZ-ZZZZZ' })).statusCode);
      return out;
    }
    const limited = (s: number[]) => s.length === 11 && s.slice(0, 10).every((x) => x === 404) && s[10] === 429;

    test('no trusted proxy (default): the socket peer is the client, whatever X-Forwarded-For says', async () => {
      const { app, lines } = await apiWith([]);
      try {
        assert.equal(await ipOf(app, '203.0.113.9'), '203.0.113.9');
        assert.equal(await ipOf(app, '203.0.113.9', '198.51.100.1'), '203.0.113.9');
        assert.equal(await ipOf(app, '127.0.0.1', '198.51.100.1, 203.0.113.9'), '127.0.0.1');
        // Rate-limit key: a new forged X-Forwarded-For per try changes nothing.
        assert.ok(limited(await pairTries(app, '203.0.113.20', (i) => `198.51.100.${i}`)));
        assert.deepEqual(
          await pairTries(app, '203.0.113.21', (i) => `198.51.100.${i}`, 1),
          [404],
          'another peer is not limited',
        );
        // Logged address.
        await send(app, 'POST', '/api/auth/login', '203.0.113.30', '198.51.100.1', {
          email: 'who@example.com',
          password: 'guess-123456',
        });
        assert.deepEqual(
          lines.filter((l) => l.msg === 'login failed').map((l) => l.ip),
          ['203.0.113.30'],
        );
      } finally {
        await app.close();
      }
    });

    test('trusted proxy (loopback): the first untrusted address from the right, never the forged leftmost', async () => {
      const { app, lines } = await apiWith(['loopback']);
      try {
        // nginx appends the address it saw: "<whatever the client sent>, <client>".
        assert.equal(await ipOf(app, '127.0.0.1', '203.0.113.9'), '203.0.113.9');
        assert.equal(await ipOf(app, '127.0.0.1', '198.51.100.1, 203.0.113.9'), '203.0.113.9');
        assert.equal(await ipOf(app, '::ffff:127.0.0.1', '10.9.9.9,  198.51.100.1,203.0.113.9'), '203.0.113.9');
        assert.equal(await ipOf(app, '::1', '203.0.113.9'), '203.0.113.9');
        assert.equal(await ipOf(app, '127.0.0.1'), '127.0.0.1', 'no header: the proxy itself');
        // A client that reaches the API directly cannot name its address.
        assert.equal(await ipOf(app, '203.0.113.50', '198.51.100.1'), '203.0.113.50');
        assert.equal(await ipOf(app, '203.0.113.50', '127.0.0.1'), '203.0.113.50');
        // Rate-limit key: one client behind the proxy, a new forged leftmost entry per try, is still one key.
        assert.ok(limited(await pairTries(app, '127.0.0.1', (i) => `198.51.100.${i}, 203.0.113.9`)));
        assert.deepEqual(
          await pairTries(app, '127.0.0.1', () => '198.51.100.1, 203.0.113.10', 1),
          [404],
          'another client behind the proxy is not limited',
        );
        assert.ok(
          limited(await pairTries(app, '203.0.113.60', (i) => `203.0.113.${100 + i}`)),
          'a direct client is keyed by its own address',
        );
        // Logged address.
        await send(app, 'POST', '/api/auth/login', '127.0.0.1', '198.51.100.1, 203.0.113.31', {
          email: 'who@example.com',
          password: 'guess-123456',
        });
        assert.deepEqual(
          lines.filter((l) => l.msg === 'login failed').map((l) => l.ip),
          ['203.0.113.31'],
        );
      } finally {
        await app.close();
      }
    });

    test('a chain of trusted proxies (loopback, 10.0.0.0/8): hops are skipped from the right; login limit per client address', async () => {
      const { app, lines } = await apiWith(['loopback', '10.0.0.0/8']);
      try {
        assert.equal(await ipOf(app, '127.0.0.1', '198.51.100.1, 203.0.113.9, 10.1.2.3'), '203.0.113.9');
        assert.equal(await ipOf(app, '10.1.2.3', '198.51.100.1, 203.0.113.9'), '203.0.113.9');
        assert.equal(await ipOf(app, '127.0.0.1', '10.1.2.3'), '10.1.2.3', 'all hops trusted: the leftmost proxy');
        // Spraying emails through the proxies with a new forged leftmost entry each time: one address, limited.
        const login = (xff: string, email: string) =>
          send(app, 'POST', '/api/auth/login', '127.0.0.1', xff, { email, password: 'guess-123456' });
        for (let i = 0; i < 20; i++)
          assert.equal((await login(`198.51.100.${i}, 203.0.113.40, 10.0.0.1`, `s${i}@example.com`)).statusCode, 401);
        const res = await login('198.51.100.77, 203.0.113.40, 10.0.0.1', 'another@example.com');
        assert.equal(res.statusCode, 429, res.body);
        assert.ok(Number(res.headers['retry-after']) >= 1);
        assert.equal(
          (await login('198.51.100.77, 203.0.113.41, 10.0.0.1', 'another@example.com')).statusCode,
          401,
          'another client is not limited',
        );
        assert.ok(
          lines.some(
            (l) => l.msg === 'login refused: too many failed logins from this address' && l.ip === '203.0.113.40',
          ),
        );
      } finally {
        await app.close();
      }
    });
  },
  {},
  ['pglite'],
);
