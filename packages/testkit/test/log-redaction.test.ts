// One redaction list for every log (SECRET_LOG_KEYS and logRedactionOptions in @pocketproxy/errors): objects
// carrying each sensitive field, logged through the server's logger (API, worker and tunnel) and the
// agent's, show none of the values. The lab's tests may import the apps (docs/design.md §10); an app's
// tests may not import the other app.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LOG_REDACT_CENSOR, SECRET_LOG_KEYS, redactSecrets } from '@pocketproxy/errors';
import type { Logger } from 'pino';
import { createLogger as serverLogger } from '@pocketproxy/server/src/log.js';
import { createLogger as agentLogger } from '@pocketproxy/agent/src/log.js';

type MakeLogger = (destination: { write(s: string): void }) => Logger;

const LOGGERS: [string, MakeLogger][] = [
  ['server', (d) => serverLogger({ logLevel: 'info' }, d)],
  ['agent', (d) => agentLogger({ level: 'info', destination: d })],
];

/** A distinct value per field and place, so a leak names where it came from. */
const secret = (key: string, where: string) => `leak-${where}-${key}-7f3a9c`;
const LEAK = /leak-[a-z]+-[^"]+-7f3a9c/g;
const HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-pocketproxy-signature'];

for (const [name, make] of LOGGERS)
  test(`the ${name} logger shows no value of any field in SECRET_LOG_KEYS`, () => {
    const lines: string[] = [];
    const log = make({ write: (s) => void lines.push(s) });
    const fields = (where: string) => Object.fromEntries(SECRET_LOG_KEYS.map((k) => [k, secret(k, where)]));
    const top = fields('top');
    log.info({ ...top, deviceId: 'dev_visible', code: 'PP_ERR_VISIBLE' }, 'top level');
    log.warn({ device: { ...fields('nested'), id: 'dev_nested_visible' } }, 'one object down');
    log.warn({ a: { b: { c: [{ d: fields('deep') }] } } }, 'deep, in an array');
    const headers = Object.fromEntries(HEADERS.map((h) => [h, secret(h, 'header')]));
    log.error(
      { req: { method: 'POST', url: '/api/pair', headers: { ...headers, host: 'visible.example' } } },
      'headers',
    );
    log.info({ Authorization: secret('Authorization', 'case'), PSK: secret('PSK', 'case') }, 'any letter case');
    const err = Object.assign(new Error('visible message'), { token: secret('token', 'error') });
    log.error({ err }, 'an error carrying a token');
    for (const k of SECRET_LOG_KEYS) log.info({ [k]: secret(k, 'alone') }, `just ${k}`);
    log.child({ token: secret('token', 'binding'), psk: secret('psk', 'binding') }).info('child bindings, top level');

    const out = lines.join('');
    assert.equal(lines.length, 7 + SECRET_LOG_KEYS.length);
    assert.deepEqual(
      [...out.matchAll(LEAK)].map((m) => m[0]),
      [],
      `${name} logged secrets`,
    );
    // Censored, not dropped; what is not secret still shows; the caller's objects are unchanged.
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    for (const k of SECRET_LOG_KEYS) assert.equal(first[k], LOG_REDACT_CENSOR, k);
    for (const v of ['dev_visible', 'PP_ERR_VISIBLE', 'dev_nested_visible', 'visible.example', 'visible message'])
      assert.ok(out.includes(v), `${v} missing from the ${name} log`);
    assert.equal(top.password, secret('password', 'top'));
    assert.equal(err.token, secret('token', 'error'));
  });

test('redactSecrets copies on write: objects without secrets come back as they are', () => {
  const plain = { a: 1, b: { c: [1, 2, { d: 'x' }] }, buf: Buffer.from('psk') };
  assert.equal(redactSecrets(plain), plain);
  const cyclic: Record<string, unknown> = { token: 'leak-cycle-token-7f3a9c' };
  cyclic.self = cyclic;
  assert.equal((redactSecrets(cyclic) as Record<string, unknown>).token, LOG_REDACT_CENSOR);
  const e = redactSecrets(Object.assign(new TypeError('boom'), { password: 'leak' }));
  assert.ok(e instanceof TypeError);
  assert.equal(e.message, 'boom');
  assert.equal((e as unknown as Record<string, unknown>).password, LOG_REDACT_CENSOR);
});

test('the list is the union of what the server, tunnel and agent redacted before, plus pairing codes and cookies', () => {
  const keys: readonly string[] = SECRET_LOG_KEYS;
  // apps/server/src/system.ts, apps/server/src/tunnel/main.ts, apps/agent/src/log.ts before they shared it
  for (const k of ['password', 'auth_token', 'psk', 'token', 'authorization', 'private_key', 'verifier'])
    assert.ok(keys.includes(k), k);
  for (const k of ['pairing_code', 'pair_url', 'cookie', 'set-cookie', 'internal_token', 'password_verifier', 'secret'])
    assert.ok(keys.includes(k), k);
  assert.ok(!keys.includes('code'), 'code carries error codes in logs; it must stay visible');
});
