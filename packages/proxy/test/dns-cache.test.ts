// The dialer's DNS cache: expiry (injected clock), one in-flight look-up per name, size bound,
// failures not cached, and the policy still applied to cached answers.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createDnsCache, createPolicyResolveAll, type ResolvedAddress } from '../src/index.js';

function counting(
  answer: (host: string, n: number) => ResolvedAddress[] | Error = () => [{ address: '203.0.113.10', family: 4 }],
) {
  const calls: string[] = [];
  const resolve = async (host: string) => {
    calls.push(host);
    const a = answer(host, calls.length);
    if (a instanceof Error) throw a;
    return a;
  };
  return { calls, resolve };
}

it('reuses an answer for ttlMs, then resolves again', async () => {
  let t = 1_000;
  const r = counting((_h, n) => [{ address: `203.0.113.${n}`, family: 4 }]);
  const cached = createDnsCache(r.resolve, { ttlMs: 5_000, now: () => t });
  assert.equal((await cached('echo.test'))[0]!.address, '203.0.113.1');
  t += 4_999;
  assert.equal((await cached('ECHO.test'))[0]!.address, '203.0.113.1', 'names are case-insensitive');
  assert.equal(r.calls.length, 1);
  t += 1;
  assert.equal((await cached('echo.test'))[0]!.address, '203.0.113.2', 'expired at exactly ttlMs');
  assert.equal(r.calls.length, 2);
});

it('ttlMs 0 resolves every time', async () => {
  const r = counting();
  const cached = createDnsCache(r.resolve, { ttlMs: 0 });
  await cached('a.test');
  await cached('a.test');
  assert.equal(r.calls.length, 2);
  assert.equal(cached.size, 0);
});

it('concurrent look-ups of one name share one in-flight promise', async () => {
  let release!: () => void;
  const gate = new Promise<void>((res) => {
    release = res;
  });
  let calls = 0;
  const cached = createDnsCache(async () => {
    calls++;
    await gate;
    return [{ address: '203.0.113.7', family: 4 }];
  });
  const all = Promise.all(Array.from({ length: 50 }, () => cached('shared.test')));
  await new Promise((r) => setImmediate(r));
  assert.equal(calls, 1);
  release();
  const answers = await all;
  assert.ok(answers.every((a) => a === answers[0]));
  assert.equal(calls, 1);
  assert.ok(Object.isFrozen(answers[0]));
});

it('failures are not cached; waiters of a failed look-up all see the error', async () => {
  const r = counting((_h, n) =>
    n === 1 ? Object.assign(new Error('try again'), { code: 'EAI_AGAIN' }) : [{ address: '203.0.113.9', family: 4 }],
  );
  const cached = createDnsCache(r.resolve, { now: () => 0 });
  const [a, b] = await Promise.allSettled([cached('flaky.test'), cached('flaky.test')]);
  assert.equal(a.status, 'rejected');
  assert.equal(b.status, 'rejected');
  assert.equal(r.calls.length, 1);
  assert.equal(cached.size, 0);
  assert.equal((await cached('flaky.test'))[0]!.address, '203.0.113.9');
  assert.equal(r.calls.length, 2);
  // A resolve that throws synchronously is not cached either.
  let n = 0;
  const sync = createDnsCache((() => {
    if (n++ === 0) throw new Error('sync');
    return Promise.resolve([{ address: '203.0.113.1', family: 4 as const }]);
  }) as never);
  await assert.rejects(sync('x.test'), /sync/);
  assert.equal((await sync('x.test')).length, 1);
});

it('holds at most maxNames names, evicting the oldest', async () => {
  const r = counting();
  const cached = createDnsCache(r.resolve, { maxNames: 3, now: () => 0 });
  for (const h of ['a', 'b', 'c', 'd']) await cached(`${h}.test`);
  assert.equal(cached.size, 3);
  await cached('b.test');
  await cached('c.test');
  await cached('d.test');
  assert.equal(r.calls.length, 4, 'b, c, d still cached');
  await cached('a.test');
  assert.equal(r.calls.length, 5, 'a was evicted');
  assert.equal(cached.size, 3);
  const big = createDnsCache(r.resolve, { now: () => 0 });
  for (let i = 0; i < 10_050; i++) await big(`n${i}.test`);
  assert.equal(big.size, 10_000, 'default bound 10,000');
  assert.throws(() => createDnsCache(r.resolve, { maxNames: 0 }), RangeError);
  assert.throws(() => createDnsCache(r.resolve, { ttlMs: -1 }), RangeError);
});

it('the policy is checked on every request, cached or not', async () => {
  const r = counting((h) =>
    h === 'inside.test' ? [{ address: '10.0.0.5', family: 4 }] : [{ address: '203.0.113.5', family: 4 }],
  );
  const resolveAll = createPolicyResolveAll({ policy: {}, resolve: r.resolve });
  for (let i = 0; i < 3; i++)
    await assert.rejects(resolveAll('inside.test'), { code: 'PP_ERR_PROXY_FORBIDDEN_DESTINATION' });
  assert.equal(r.calls.length, 1, 'the default dialer caches (5 s)');
  assert.equal((await resolveAll('outside.test'))[0]!.address, '203.0.113.5');
  const uncached = createPolicyResolveAll({ policy: {}, resolve: r.resolve, dnsCacheMs: 0 });
  await uncached('outside.test');
  await uncached('outside.test');
  assert.equal(r.calls.length, 4);
});
