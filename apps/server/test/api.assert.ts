// Shared assertions and setup for the in-process API tests (api.*.test.ts, ports, worker): the
// problem+json shape every error must have, and a per-backend suite that skips loudly.
import assert from 'node:assert/strict';
import { describe, it, before, after, type TestContext } from 'node:test';
import { SignJWT } from 'jose';
import { BACKENDS, skipUnlessBackend, startSystem, type Backend, type TestSystem } from './harness.js';
import { issueJwt } from '../src/api/auth.js';

export type Res = Awaited<ReturnType<TestSystem['call']>>;

/** RFC 9457 shape, our code, no internals (stack frames, SQL, file paths) leaking. */
export function assertProblem(res: Res, status: number, code?: string): void {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.body.slice(0, 500)}`);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const p = res.json as Record<string, unknown>;
  for (const k of ['type', 'title', 'status', 'code', 'detail', 'request_id'])
    assert.ok(k in p, `problem lacks ${k}: ${res.body}`);
  assert.equal(p.status, status);
  assert.match(String(p.code), /^PP_ERR_[A-Z_]+$/);
  assert.match(String(p.type), /^https:\/\//);
  assert.ok(String(p.request_id).length > 0);
  if (code) assert.equal(p.code, code, res.body);
  assert.doesNotMatch(
    res.body,
    /\bat [\w.<>]+ \(|\.ts:\d+|\.js:\d+|node_modules|stack|SQLSTATE|syntax error at|relation "|violates|duplicate key/i,
  );
}

/** A suite per backend; each test skips loudly when the backend is missing. */
export function perBackend(
  title: string,
  body: (ctx: {
    ts: () => TestSystem;
    backend: Backend;
    test: (name: string, fn: (t: TestContext) => Promise<void>) => void;
  }) => void,
  env: Record<string, string> = {},
  backends: readonly Backend[] = BACKENDS,
): void {
  for (const backend of backends) {
    describe(`${title} (${backend})`, () => {
      let ts: TestSystem | undefined;
      before(async (t) => {
        if (skipUnlessBackend(t as never, backend)) return;
        ts = await startSystem(backend, env);
      });
      after(async () => ts?.close());
      body({
        backend,
        ts: () => ts!,
        test: (name, fn) =>
          it(name, async (t) => {
            if (skipUnlessBackend(t, backend)) return;
            await fn(t);
          }),
      });
    });
  }
}

/** A fresh admin JWT at the clock's current time (the harness's token is issued once at start). */
export async function freshToken(ts: TestSystem): Promise<string> {
  const a = (await ts.db.query<{ id: string; email: string }>('SELECT id, email FROM admins LIMIT 1')).rows[0]!;
  return (await issueJwt(ts.sys.ctx, a)).token;
}

/** A JWT with the right claims signed by a key the server does not know. */
export async function forgedToken(ts: TestSystem): Promise<string> {
  const a = (await ts.db.query<{ id: string }>('SELECT id FROM admins LIMIT 1')).rows[0]!;
  const now = Math.floor(ts.clock.now().getTime() / 1000);
  return new SignJWT({ email: 'admin@example.com' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(a.id)
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .setAudience('pocketproxy-admin')
    .sign(new Uint8Array(32).fill(7));
}

export const dev = (token: string) => ({ authorization: `Bearer ${token}` });
export const internal = (ts: TestSystem) => ({ authorization: `Bearer ${ts.sys.ctx.internalToken}` });
export const UNKNOWN = {
  dev: 'dev_0000000000000000',
  con: 'con_0000000000000000',
  cus: 'cus_0000000000000000',
  rly: 'rly_0000000000000000',
  cmd: 'cmd_0000000000000000',
};
