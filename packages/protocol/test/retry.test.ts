// The initiator's retry schedule (timers.connectRetryMs) and what the responder does with an
// initiation it is handed again after it learned the key (the relay keeps initiations from unknown keys).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createInitiator,
  createResponder,
  generateKeyPair,
  generatePsk,
  resolveTimers,
  type TunnelTimers,
} from '../src/index.js';
import { connect, pair } from './helpers.js';

const FAST = [250, 500, 1000, 2000];

/** Times at which `tick` (every stepMs from 0 to untilMs) sent an initiation, nobody answering. */
function initiationTimes(timers: Partial<TunnelTimers>, untilMs: number, stepMs = 50): number[] {
  const i = createInitiator({
    privateKey: generateKeyPair().privateKey,
    responderPublicKey: generateKeyPair().publicKey,
    psk: generatePsk(),
    timers,
  });
  const at: number[] = [];
  for (let t = 0; t <= untilMs; t += stepMs) for (const f of i.tick(t)) if (f[0] === 1) at.push(t);
  return at;
}

test('connectRetryMs: without a session the first retries come after 0.25, 0.5, 1, 2 s, then every 5 s', () => {
  assert.deepEqual(
    initiationTimes({ connectRetryMs: FAST }, 20_000),
    [0, 250, 750, 1_750, 3_750, 8_750, 13_750, 18_750],
  );
  // The protocol's default is unchanged: every rekeyTimeoutMs.
  assert.deepEqual(initiationTimes({}, 20_000), [0, 5_000, 10_000, 15_000, 20_000]);
  // With a 1 s tick (the schedule is checked at each tick, so it is as coarse as the tick).
  assert.deepEqual(initiationTimes({ connectRetryMs: FAST }, 12_000, 1_000), [0, 1_000, 2_000, 3_000, 5_000, 10_000]);
  // Five initiations in the first 4 s: far below the relay's per-source limit (50/s, burst 500).
  assert.equal(initiationTimes({ connectRetryMs: FAST }, 4_000).length, 5);
});

test('connectRetryMs: handshake_sent numbers the attempts; a rekey of a live session still waits rekeyTimeoutMs', () => {
  const p = pair({ timers: { connectRetryMs: FAST, rekeyAfterMs: 60_000, rejectAfterMs: 90_000 } });
  connect(p, 0);
  const sent: number[] = [];
  // Rekey at 60 s, unanswered: retried every 5 s (the session still works meanwhile).
  for (let t = 1_000; t <= 72_000; t += 50) {
    // Initiations go unanswered; keepalives flow both ways, so neither side declares the other dead.
    for (const f of p.initiator.tick(t))
      if (f[0] === 1) sent.push(t);
      else p.responder.receive(f, 'a', t);
    for (const o of p.responder.tick(t)) p.initiator.receive(o.frame, t);
  }
  assert.deepEqual(sent, [60_000, 65_000, 70_000]);
  const hs = p.iEvents.filter((e) => e.type === 'handshake_sent');
  assert.deepEqual(
    hs.map((e) => e.type === 'handshake_sent' && `${e.reason}#${e.attempt}`),
    ['connect#1', 'rekey#1', 'retry#2', 'retry#3'],
  );
});

test('connectRetryMs: after a dead relay the fast schedule starts again', () => {
  const p = pair({ timers: { connectRetryMs: FAST } });
  connect(p, 0);
  const sent: number[] = [];
  for (let t = 1_000; t <= 36_000; t += 50) for (const f of p.initiator.tick(t)) if (f[0] === 1) sent.push(t);
  // dead at 30 s (nothing received): initiations at 30, 30.25, 30.75, 31.75, 33.75 s, then 5 s later
  assert.deepEqual(sent, [30_000, 30_250, 30_750, 31_750, 33_750]);
});

test('connectRetryMs: checked (positive, at most rekeyTimeoutMs, at most 16)', () => {
  assert.deepEqual(resolveTimers({ connectRetryMs: FAST }).connectRetryMs, FAST);
  assert.deepEqual(resolveTimers(undefined).connectRetryMs, []);
  for (const bad of [
    [0],
    [-1],
    [Number.NaN],
    [6_000],
    Array.from({ length: 17 }, () => 100),
    'fast' as unknown as number[],
  ]) {
    assert.throws(() => resolveTimers({ connectRetryMs: bad }), /connectRetryMs/);
  }
  assert.throws(() => resolveTimers({ connectRetryMs: [3_000], rekeyTimeoutMs: 2_000 }), /connectRetryMs/);
});

/** A relay whose peer list starts empty; `learn()` adds the device (what a peer refresh does). */
function relayLearning() {
  const relay = generateKeyPair();
  const device = generateKeyPair();
  const psk = generatePsk();
  let known = false;
  const responder = createResponder<string>({
    privateKey: relay.privateKey,
    lookupPeer: (k) => (known && k.equals(device.publicKey) ? { deviceId: 'dev_new', psk } : undefined),
  });
  const initiator = createInitiator({
    privateKey: device.privateKey,
    responderPublicKey: relay.publicKey,
    psk,
    timers: { connectRetryMs: FAST },
  });
  return {
    relay,
    device,
    responder,
    initiator,
    learn: () => {
      known = true;
    },
  };
}

test('an initiation from an unknown key, handed in again once the key is known, is answered exactly once', () => {
  const r = relayLearning();
  const [init] = r.initiator.tick(1_000);
  const first = r.responder.receive(init!, 'udp:a', 1_000);
  assert.equal(first.kind, 'dropped');
  assert.equal(first.kind === 'dropped' && first.reason, 'unknown_peer');
  assert.ok(first.kind === 'dropped' && first.publicKey?.equals(r.device.publicKey), 'the key it carried comes back');
  r.learn();
  const again = r.responder.receive(init!, 'udp:a', 1_100);
  assert.equal(again.kind, 'reply');
  // A third time (a duplicate, or an attacker replaying it): its timestamp is no longer newer.
  assert.deepEqual(r.responder.receive(init!, 'udp:a', 1_200), {
    kind: 'dropped',
    reason: 'replayed_initiation',
    deviceId: 'dev_new',
  });
  // The answer completes the device's handshake (it still waits for that very initiation).
  const est = r.initiator.receive(again.kind === 'reply' ? again.frame : Buffer.alloc(0), 1_150);
  assert.equal(est.kind, 'established');
  for (const f of est.kind === 'established' ? est.send : [])
    assert.equal(r.responder.receive(f, 'udp:a', 1_150).kind, 'keepalive');
  assert.equal(r.responder.peer('dev_new')!.up, true);
});

test('a kept initiation older than one already answered is dropped; MAC1 is still checked', () => {
  const r = relayLearning();
  const [old] = r.initiator.tick(0);
  assert.equal(r.responder.receive(old!, 'udp:a', 0).kind, 'dropped');
  const [newer] = r.initiator.tick(300); // the fast retry
  r.learn();
  assert.equal(r.responder.receive(newer!, 'udp:a', 310).kind, 'reply');
  assert.deepEqual(r.responder.receive(old!, 'udp:a', 320), {
    kind: 'dropped',
    reason: 'replayed_initiation',
    deviceId: 'dev_new',
  });
  const bent = Buffer.from(newer!);
  bent[120]! ^= 1; // inside mac1
  assert.deepEqual(r.responder.receive(bent, 'udp:a', 330), { kind: 'dropped', reason: 'mac1' });
});
