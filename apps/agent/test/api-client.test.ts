// The device's API client: a kept-alive connection that died under it (the address rotated and
// the carrier's NAT forgot the flow) is retried once on a fresh one; other failures are not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createApiClient, wasReset } from '../src/api-client.js';

const reset = () =>
  Object.assign(new TypeError('fetch failed'), {
    cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
  });

test('api client: one immediate retry after a connection reset, none after other failures', async () => {
  let calls = 0;
  const script: Array<() => Response | Error> = [];
  const fake = (async () => {
    calls++;
    const next = script.shift()!();
    if (next instanceof Error) throw next;
    return next;
  }) as unknown as typeof fetch;
  const api = createApiClient({ server: 'http://api.test', deviceId: 'dev_x', token: 't', fetch: fake });
  const ok = () => new Response(JSON.stringify({ version: 'v', items: [] }), { status: 200 });

  script.push(reset, ok);
  assert.deepEqual(await api.credentials(), { version: 'v', items: [] });
  assert.equal(calls, 2, 'retried once on a fresh connection');

  calls = 0;
  script.push(reset, reset);
  await assert.rejects(api.credentials(), /ECONNRESET|fetch failed/);
  assert.equal(calls, 2, 'no second retry');

  calls = 0;
  script.push(() =>
    Object.assign(new TypeError('fetch failed'), {
      cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
    }),
  );
  await assert.rejects(api.credentials(), /fetch failed/);
  assert.equal(calls, 1, 'a refused connection is not retried here (the callers back off)');

  assert.equal(wasReset(reset()), true);
  assert.equal(wasReset(Object.assign(new Error('x'), { code: 'UND_ERR_SOCKET' })), true);
  assert.equal(wasReset(new Error('timeout')), false);
});
