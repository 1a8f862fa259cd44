// ConnectionMeter with an injected clock: budget, token buckets with debt, run-time changes.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionMeter, MIN_BURST_BYTES, SLICE_BYTES, type Direction } from '../src/index.js';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
  };
}

it('budget: the crossing chunk passes, every later take is -1, onExhausted fires once', () => {
  let fired = 0;
  const m = new ConnectionMeter({ budgetBytes: 1000, onExhausted: () => fired++ });
  assert.equal(m.take('up', 600), 0);
  assert.equal(m.exhausted, false);
  assert.equal(m.take('down', 600), 0, 'the chunk that crosses the budget is still allowed');
  assert.equal(m.exhausted, true);
  assert.equal(fired, 1);
  assert.equal(m.take('up', 1), -1);
  assert.equal(m.take('down', 1), -1);
  assert.equal(fired, 1);
  assert.equal(m.used, 1200, 'refused takes are not counted');
});

it('budget: exactly reaching it spends it; 0 spends it at once; setBudget raises, lowers and lifts it', () => {
  let fired = 0;
  const m = new ConnectionMeter({ budgetBytes: 100, onExhausted: () => fired++ });
  assert.equal(m.take('up', 100), 0);
  assert.equal(m.take('up', 1), -1);
  m.setBudget(500);
  assert.equal(m.exhausted, false);
  assert.equal(m.take('up', 50), 0);
  m.setBudget(120);
  assert.equal(m.exhausted, true, 'lowered below what was used');
  assert.equal(fired, 2);
  m.setBudget(null);
  assert.equal(m.take('down', 1e9), 0);
  assert.equal(new ConnectionMeter({ budgetBytes: 0 }).take('up', 1), -1);
});

/**
 * Simulates `sockets` pumps sharing one meter, each delivering SLICE_BYTES and then waiting what
 * take() asked, for `ms` of simulated time; returns the bytes delivered.
 */
function simulate(
  m: ConnectionMeter,
  c: ReturnType<typeof clock>,
  dir: Direction,
  sockets: number,
  ms: number,
): number {
  const start = c.now();
  const next = new Array<number>(sockets).fill(start);
  let delivered = 0;
  for (;;) {
    let i = 0;
    for (let k = 1; k < sockets; k++) if (next[k]! < next[i]!) i = k;
    if (next[i]! >= start + ms) return delivered;
    c.advance(next[i]! - c.now());
    const wait = m.take(dir, SLICE_BYTES);
    assert.ok(wait >= 0);
    delivered += SLICE_BYTES;
    // A real timer fires a little late; the debt model must not lose rate to that.
    next[i] = c.now() + (wait > 0 ? wait + 3 : 0.05);
  }
}

for (const [kbps, sockets] of [
  [1000, 1],
  [1000, 8],
  [50_000, 1],
  [50_000, 16],
  [256, 3],
] as const) {
  it(`rate: ${kbps} kbps shared by ${sockets} socket(s) delivers the limit within 2 % over 20 s`, () => {
    const c = clock();
    const m = new ConnectionMeter({ downKbps: kbps, now: c.now });
    const ms = 20_000;
    const bytes = simulate(m, c, 'down', sockets, ms);
    const want = ((kbps * 1000) / 8) * (ms / 1000);
    // The bucket's start (one burst) and the last slice are the only excess allowed.
    const burst = Math.max(MIN_BURST_BYTES, (kbps / 8) * 100);
    assert.ok(Math.abs(bytes - want) <= 0.02 * want + burst + SLICE_BYTES * sockets, `${bytes} vs ${want}`);
  });
}

it('rate: the burst is ~100 ms of rate (at least 16 KiB), so idling saves up no more', () => {
  const c = clock();
  const m = new ConnectionMeter({ upKbps: 80_000, downKbps: 8, now: c.now }); // 10,000 and 1 bytes/ms
  c.advance(60_000);
  assert.equal(m.take('up', 1_000_000), 0, '100 ms of 80 Mbit/s is 1,000,000 bytes');
  assert.ok(m.take('up', 1) > 0);
  c.advance(60_000);
  assert.equal(m.take('down', MIN_BURST_BYTES), 0, 'a slow bucket still holds one slice');
  const wait = m.take('down', 1000);
  assert.equal(wait, 1000, 'debt / rate: 1000 bytes at 1 byte/ms');
});

it('rate: debt is owed, directions are independent, no limit returns 0', () => {
  const c = clock();
  const m = new ConnectionMeter({ downKbps: 8, now: c.now }); // 1 byte/ms, burst 16 KiB
  assert.equal(m.take('down', MIN_BURST_BYTES + 500), 500);
  assert.equal(m.take('down', 500), 1000, 'a second taker waits for all the debt');
  assert.equal(m.take('up', 10_000_000), 0, 'up has no limit');
  c.advance(1000);
  assert.equal(m.take('down', 0), 0, 'debt repaid after debt / rate');
});

it('setRates changes a limit at run time, keeps the debt, and lifts it with null or 0', () => {
  const c = clock();
  const m = new ConnectionMeter({ downKbps: 8, now: c.now });
  assert.equal(m.take('down', MIN_BURST_BYTES + 800), 800);
  m.setRates({ downKbps: 16 }); // 2 bytes/ms
  assert.equal(m.take('down', 0), 400, 'the same debt at twice the rate');
  m.setRates({ upKbps: 8 });
  assert.equal(m.take('down', 0), 400, 'a field left out keeps its rate');
  assert.equal(m.take('up', MIN_BURST_BYTES + 8), 8, 'a new limit starts with a full burst');
  m.setRates({ downKbps: null, upKbps: 0 });
  assert.equal(m.take('down', 1e9), 0);
  assert.equal(m.take('up', 1e9), 0);
});

it('refund gives back tokens and bytes, never a spent budget', () => {
  const c = clock();
  const m = new ConnectionMeter({ upKbps: 8, budgetBytes: 100_000, now: c.now });
  assert.equal(m.take('up', MIN_BURST_BYTES), 0);
  const wait = m.take('up', 1200);
  assert.ok(wait > 0);
  m.refund('up', 1200);
  assert.equal(m.used, MIN_BURST_BYTES);
  assert.equal(m.take('up', 0), 0, 'the refunded datagram left no debt');
  assert.equal(m.take('up', 100_000), 1e5, 'crosses the budget (allowed), owes 100,000 bytes at 1 byte/ms');
  m.refund('up', 100_000);
  assert.equal(m.exhausted, true);
  assert.equal(m.take('up', 1), -1);
});

it('uses performance.now by default', async () => {
  const m = new ConnectionMeter({ downKbps: 8 });
  m.take('down', MIN_BURST_BYTES + 50);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(m.take('down', 0), 0);
});
