import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, ipv4, pair } from './helpers.js';

test('roaming: same session from any address; the relay follows the last authenticated frame', () => {
  const p = pair();
  connect(p, 0, 'udp:203.0.113.5:4000');
  const before = p.initiator.session!.localIndex;
  const r1 = p.responder.receive(p.initiator.sendPacket(ipv4(), 100)!, 'udp:198.51.100.99:61000', 100);
  assert.equal(r1.kind, 'packet');
  assert.equal(p.responder.peer('dev_1')!.endpoint, 'udp:198.51.100.99:61000');
  // ...and to the TCP fallback connection, still without a handshake
  const r2 = p.responder.receive(p.initiator.sendPacket(ipv4(), 200)!, 'tcp:conn-17', 200);
  assert.equal(r2.kind, 'packet');
  const out = p.responder.sendPacket('dev_1', ipv4(80), 300)!;
  assert.equal(out.endpoint, 'tcp:conn-17');
  assert.equal(p.initiator.receive(out.frame, 300).kind, 'packet');
  assert.equal(p.initiator.session!.localIndex, before);
  assert.deepEqual(
    p.rEvents.filter((e) => e.type === 'endpoint_changed').map((e) => e.type === 'endpoint_changed' && e.to),
    ['udp:198.51.100.99:61000', 'tcp:conn-17'],
  );
  assert.equal(p.iEvents.filter((e) => e.type === 'handshake_sent').length, 1);
});

test('a forged frame from a new address does not move the endpoint', () => {
  const p = pair();
  connect(p, 0, 'a');
  const f = p.initiator.sendPacket(ipv4(), 1)!;
  const forged = Buffer.from(f);
  forged[forged.length - 1]! ^= 1;
  assert.deepEqual(p.responder.receive(forged, 'evil', 2), { kind: 'dropped', reason: 'decrypt', deviceId: 'dev_1' });
  assert.equal(p.responder.receive(f, 'evil', 3).kind, 'packet');
  assert.equal(p.responder.receive(f, 'evil2', 4).kind, 'dropped'); // replay: endpoint stays
  assert.equal(p.responder.peer('dev_1')!.endpoint, 'evil');
});

test('keepalives every 10 s when idle, both directions; none while traffic flows', () => {
  const p = pair();
  connect(p, 0);
  assert.deepEqual(p.initiator.tick(9_999), []);
  assert.deepEqual(p.responder.tick(9_999), []);
  const ki = p.initiator.tick(10_000);
  assert.equal(ki.length, 1);
  assert.equal(ki[0]!.length, 32);
  assert.equal(p.responder.receive(ki[0]!, 'x', 10_000).kind, 'keepalive');
  const kr = p.responder.tick(10_000);
  assert.equal(kr.length, 1);
  assert.equal(p.initiator.receive(kr[0]!.frame, 10_000).kind, 'keepalive');
  // traffic resets the keepalive timer
  p.initiator.sendPacket(ipv4(), 15_000);
  assert.deepEqual(p.initiator.tick(20_000), []);
  assert.equal(p.initiator.tick(25_000).length, 1);
});

test('dead peer: relay declares a silent device down at 30 s, not before', () => {
  const p = pair();
  connect(p, 0);
  for (let t = 1_000; t < 30_000; t += 1_000) p.responder.tick(t); // device silent; relay keeps sending keepalives
  assert.equal(p.responder.peer('dev_1')!.up, true);
  p.responder.tick(30_000);
  assert.equal(p.responder.peer('dev_1')!.up, false);
  const down = p.rEvents.find((e) => e.type === 'peer_down');
  assert.deepEqual(down, { type: 'peer_down', deviceId: 'dev_1', reason: 'dead', silentMs: 30_000 });
  assert.equal(p.responder.sendPacket('dev_1', ipv4(), 30_001), null);
  // the old session is gone: late frames from the device are ignored
  assert.equal(p.responder.receive(p.initiator.sendPacket(ipv4(), 30_002)!, 'x', 30_002).kind, 'dropped');
});

test('dead relay: the device notices at 30 s and starts a new handshake', () => {
  const p = pair();
  connect(p, 0);
  for (let t = 1_000; t < 30_000; t += 1_000) {
    const out = p.initiator.tick(t);
    assert.ok(
      out.every((f) => f[0] === 4),
      'only keepalives before 30 s',
    );
  }
  const out = p.initiator.tick(30_000);
  assert.equal(out.length, 1);
  assert.equal(out[0]![0], 1, 'an initiation');
  assert.equal(p.initiator.state, 'connecting');
  assert.ok(p.iEvents.some((e) => e.type === 'peer_dead' && e.silentMs === 30_000));
  // it reconnects once the relay answers again
  const rep = p.responder.receive(out[0]!, 'y', 30_001);
  assert.equal(rep.kind, 'reply');
  if (rep.kind === 'reply') assert.equal(p.initiator.receive(rep.frame, 30_002).kind, 'established');
});

test('a device that sent nothing for 20 s (frozen) handshakes again at its first tick, even with frames from the relay just read', () => {
  const p = pair();
  connect(p, 0);
  for (let t = 1_000; t <= 5_000; t += 1_000) p.initiator.tick(t);
  // Frozen from 5 s to 36 s (no ticks, nothing sent). The relay, hearing nothing, dropped the session at 30 s
  // (sent 10 s keepalives before); the device, running again, first reads a frame the relay sent at 12 s.
  const late = p.responder.sendPacket('dev_1', ipv4(), 12_000)!;
  p.responder.tick(31_000);
  assert.equal(p.responder.peer('dev_1')!.up, false, 'the relay dropped it');
  assert.equal(p.initiator.receive(late.frame, 36_000).kind, 'packet');
  const out = p.initiator.tick(36_000);
  assert.equal(out.length, 1, JSON.stringify(out.map((f) => [f[0], f.length])));
  assert.equal(out[0]![0], 1, 'an initiation, not a keepalive on a session the relay forgot');
  const dead = p.iEvents.find((e) => e.type === 'peer_dead');
  assert.ok(dead && dead.type === 'peer_dead' && dead.unsentMs! >= 20_000 && dead.silentMs === 0, JSON.stringify(dead));
  const rep = p.responder.receive(out[0]!, 'y', 36_001);
  assert.equal(rep.kind, 'reply');
  if (rep.kind === 'reply') assert.equal(p.initiator.receive(rep.frame, 36_002).kind, 'established');
  // A device that sends its keepalives is never taken for frozen.
  for (let t = 37_000; t <= 120_000; t += 1_000) {
    for (const f of p.initiator.tick(t)) p.responder.receive(f, 'y', t);
    for (const o of p.responder.tick(t)) p.initiator.receive(o.frame, t);
  }
  assert.equal(p.iEvents.filter((e) => e.type === 'peer_dead').length, 1);
});

test('handshake retry every 5 s with a fresh initiation while the relay is silent', () => {
  const p = pair();
  const first = p.initiator.tick(0);
  assert.equal(first.length, 1);
  assert.deepEqual(p.initiator.tick(4_999), []);
  const second = p.initiator.tick(5_000);
  assert.equal(second.length, 1);
  assert.notDeepEqual(second[0], first[0]);
  assert.deepEqual(
    p.iEvents.map((e) => e.type === 'handshake_sent' && `${e.reason}#${e.attempt}`),
    ['connect#1', 'retry#2'],
  );
  // the stale first initiation's response no longer matches a pending handshake
  const stale = p.responder.receive(first[0]!, 'a', 5_001);
  assert.equal(stale.kind, 'reply');
  if (stale.kind === 'reply')
    assert.deepEqual(p.initiator.receive(stale.frame, 5_002), { kind: 'dropped', reason: 'unknown_index' });
});

test('packets queued before the handshake go out on establishment, in order', () => {
  const p = pair();
  assert.equal(p.initiator.sendPacket(ipv4(40, 1), 0), null);
  assert.equal(p.initiator.sendMessage({ kind: 'ack', ack: { id: 'cmd_1', status: 'succeeded' } }, 0), null);
  const [init] = p.initiator.tick(1);
  const rep = p.responder.receive(init!, 'z', 1);
  assert.equal(rep.kind, 'reply');
  if (rep.kind !== 'reply') return;
  const est = p.initiator.receive(rep.frame, 2);
  assert.equal(est.kind, 'established');
  if (est.kind !== 'established') return;
  assert.equal(est.send.length, 2, 'the queue, and no extra keepalive');
  const got = est.send.map((f) => p.responder.receive(f, 'z', 3));
  assert.deepEqual(
    got.map((g) => g.kind),
    ['packet', 'message'],
  );
  assert.equal(p.responder.peer('dev_1')!.up, true);
});

test('rekey by time: initiator handshakes at rekeyAfter, old session keeps working until confirmed', () => {
  const p = pair({ timers: { rekeyAfterMs: 60_000, rejectAfterMs: 90_000 } });
  connect(p, 0);
  const first = p.initiator.session!.localIndex;
  let t = 0;
  for (t = 5_000; t < 60_000; t += 5_000) {
    for (const f of p.initiator.tick(t)) p.responder.receive(f, 'a', t);
    for (const o of p.responder.tick(t)) p.initiator.receive(o.frame, t);
  }
  const out = p.initiator.tick(60_000);
  const init = out.find((f) => f[0] === 1)!;
  assert.ok(init, 'rekey initiation sent');
  // data still flows on the old session in both directions during the handshake
  assert.equal(p.responder.receive(p.initiator.sendPacket(ipv4(), 60_001)!, 'a', 60_001).kind, 'packet');
  const rep = p.responder.receive(init, 'a', 60_002);
  assert.equal(rep.kind, 'reply');
  const down = p.responder.sendPacket('dev_1', ipv4(), 60_003)!; // sent on the old keys: not confirmed yet
  if (rep.kind !== 'reply') return;
  const est = p.initiator.receive(rep.frame, 60_004);
  assert.equal(est.kind, 'established');
  assert.notEqual(p.initiator.session!.localIndex, first);
  assert.equal(
    p.initiator.receive(down.frame, 60_005).kind,
    'packet',
    'previous session still decrypts in-flight frames',
  );
  if (est.kind === 'established') for (const f of est.send) p.responder.receive(f, 'a', 60_006);
  assert.ok(p.rEvents.some((e) => e.type === 'rekeyed'));
  assert.equal(p.iEvents.filter((e) => e.type === 'established' && e.rekey).length, 1);
  assert.equal(p.rEvents.filter((e) => e.type === 'peer_up').length, 1, 'rekey is not a reconnect');
});

test('rekey by message count', () => {
  const p = pair({ timers: { rekeyAfterMessages: 50, rejectAfterMessages: 60 } });
  connect(p, 0);
  for (let i = 0; i < 48; i++) p.responder.receive(p.initiator.sendPacket(ipv4(), 1)!, 'a', 1);
  assert.ok(p.initiator.tick(2).every((f) => f[0] !== 1));
  p.initiator.sendPacket(ipv4(), 3);
  const out = p.initiator.tick(4);
  assert.ok(
    out.some((f) => f[0] === 1),
    'initiation after 50 messages',
  );
  assert.ok(p.iEvents.some((e) => e.type === 'handshake_sent' && e.reason === 'rekey'));
});

test('session hard expiry: nothing is sent or accepted on it after rejectAfter', () => {
  const p = pair({
    timers: { rekeyAfterMs: 60_000, rejectAfterMs: 90_000, deadAfterMs: 200_000, keepaliveMs: 10_000 },
  });
  connect(p, 0);
  const late = p.initiator.sendPacket(ipv4(), 89_999)!;
  assert.equal(p.responder.receive(late, 'a', 90_000).kind, 'dropped');
  assert.equal(p.responder.sendPacket('dev_1', ipv4(), 90_000), null);
  p.responder.tick(90_000);
  assert.ok(p.rEvents.some((e) => e.type === 'peer_down' && e.reason === 'expired'));
  assert.equal(p.initiator.sendPacket(ipv4(), 90_000), null, 'queued instead');
});

test('the responder answers nothing but handshakes from known devices', () => {
  const p = pair();
  connect(p, 0);
  const junk = [
    Buffer.alloc(0),
    Buffer.from([1]),
    Buffer.alloc(148),
    Buffer.alloc(92),
    Buffer.alloc(32),
    Buffer.from('GET / HTTP/1.1\r\n\r\n'),
  ];
  const init = Buffer.alloc(148);
  init[0] = 1;
  init[1] = 1;
  junk.push(init);
  for (const j of junk) assert.equal(p.responder.receive(j, 'q', 1).kind, 'dropped');
});

test('commands and acks ride the tunnel both ways', () => {
  const p = pair();
  connect(p, 0);
  const push = p.responder.sendMessage(
    'dev_1',
    { kind: 'command', command: { id: 'cmd_42', type: 'rotate_ip', payload: { reason: 'schedule' } } },
    1,
  )!;
  const got = p.initiator.receive(push.frame, 1);
  assert.deepEqual(got, {
    kind: 'message',
    message: { kind: 'command', command: { id: 'cmd_42', type: 'rotate_ip', payload: { reason: 'schedule' } } },
  });
  const ack = p.initiator.sendMessage({ kind: 'ack', ack: { id: 'cmd_42', status: 'received' } }, 2)!;
  assert.deepEqual(p.responder.receive(ack, 'a', 2), {
    kind: 'message',
    deviceId: 'dev_1',
    message: { kind: 'ack', ack: { id: 'cmd_42', status: 'received' } },
  });
  const ctl = p.responder.sendMessage(
    'dev_1',
    { kind: 'control', control: { type: 'config', payload: { address: '192.168.255.7/24', mtu: 1380 } } },
    3,
  )!;
  assert.equal(p.initiator.receive(ctl.frame, 3).kind, 'message');
});

test('removePeer ends the sessions and emits peer_down', () => {
  const p = pair();
  connect(p, 0);
  p.responder.removePeer('dev_1', 5);
  assert.equal(p.responder.peer('dev_1'), undefined);
  assert.equal(p.responder.connectedCount, 0);
  assert.ok(p.rEvents.some((e) => e.type === 'peer_down' && e.reason === 'removed'));
  assert.equal(p.responder.receive(p.initiator.sendPacket(ipv4(), 6)!, 'a', 6).kind, 'dropped');
});

test('frames a native open path authenticated (the session stamp) count as heard for dead-peer detection, both sides', () => {
  const p = pair();
  connect(p, 0);
  const t = p.responder.timers;
  // The relay heard nothing through JS since 0, but the native path stamped its session at 29 s.
  p.responder.peer('dev_1')!.current!.receiveState(t).cell[2] = 29_000;
  p.responder.tick(30_000);
  assert.equal(p.responder.peer('dev_1')!.up, true, 'not dead at 30 s: heard natively at 29 s');
  p.responder.tick(59_000);
  assert.equal(p.responder.peer('dev_1')!.up, false, 'dead 30 s after the last native frame');
  // The device: likewise with its own session's stamp.
  const q = pair();
  connect(q, 0);
  q.initiator.session!.receiveState(t).cell[2] = 29_000;
  q.initiator.tick(10_000); // its keepalives (a device that sent nothing for 20 s would be taken for frozen)
  q.initiator.tick(20_000);
  assert.ok(
    q.initiator.tick(30_000).every((f) => f[0] === 4),
    'no new handshake at 30 s',
  );
  assert.equal(q.initiator.state, 'established');
  assert.equal(q.initiator.tick(59_000)[0]![0], 1, 'an initiation 30 s after the last native frame');
});

test('the replay window is shared through receiveState: a counter marked there is a replay for open()', () => {
  const p = pair();
  connect(p, 0);
  const s = p.responder.peer('dev_1')!.current!;
  const f = p.initiator.sendPacket(ipv4(), 1)!;
  const c = Number(f.readBigUInt64LE(8));
  const st = s.receiveState(p.responder.timers);
  assert.equal(st.index, s.localIndex);
  st.bits[Math.floor(c / 32) % st.bits.length]! |= 1 << (c & 31);
  st.cell[0] = c;
  st.cell[1] = s.received + 1;
  assert.deepEqual(p.responder.receive(f, 'x', 2), { kind: 'dropped', reason: 'replay', deviceId: 'dev_1' });
  assert.equal(s.received, 2, 'the keepalive JS opened and the frame the native path counted');
  assert.equal(s.highestReceived, c);
});

test('frames a native seal path sent (the shared send counter moved) count as sent for the relay keepalive', () => {
  const p = pair();
  connect(p, 0);
  const peer = p.responder.peer('dev_1')!;
  const counter = peer.current!.sendState(p.responder.timers).counter;
  assert.deepEqual(p.responder.tick(5_000), []);
  // Native sends between 5 and 10 s: the counter moves, JS never sealed.
  counter[0] = counter[0]! + 3;
  assert.deepEqual(p.responder.tick(9_000), [], 'noted as sent at 9 s');
  assert.deepEqual(p.responder.tick(10_000), [], 'no keepalive while native frames flow');
  assert.equal(p.responder.tick(19_000).length, 1, 'a keepalive 10 s after the last native send');
});

test("the responder's handshake round trip: from its response to the device's first frame on the new session, at every handshake", () => {
  const p = pair();
  const peerOf = () => p.responder.peer('dev_1')!;
  const [init] = p.initiator.tick(1_000);
  const rep = p.responder.receive(init!, 'z', 1_000);
  assert.equal(rep.kind, 'reply');
  if (rep.kind !== 'reply') return;
  assert.equal(peerOf().handshakeRttMs, undefined, 'nothing before the handshake is confirmed');
  // The device gets the response 20 ms later and confirms at once; its frame reaches the relay 20 ms after.
  const est = p.initiator.receive(rep.frame, 1_020);
  assert.equal(est.kind, 'established');
  if (est.kind !== 'established') return;
  for (const f of est.send) p.responder.receive(f, 'z', 1_040);
  assert.equal(peerOf().handshakeRttMs, 40);
  // A later frame on the same session does not move it; the next handshake measures afresh.
  p.responder.receive(p.initiator.sendPacket(ipv4(), 5_000)!, 'z', 5_100);
  assert.equal(peerOf().handshakeRttMs, 40);
  connect(p, 200_000);
  assert.equal(peerOf().handshakeRttMs, 0);
});

test('replySent: the round trip runs from when the app sent the response, not from when it took the initiation; a new initiation forgets an older mark', () => {
  const p = pair();
  const peerOf = () => p.responder.peer('dev_1')!;
  const [init] = p.initiator.tick(1_000);
  const rep = p.responder.receive(init!, 'z', 1_000);
  if (rep.kind !== 'reply') return assert.fail(rep.kind);
  // The app's batch took 12 ms before the response left; the link is 20 ms each way.
  p.responder.replySent('dev_1', 1_012);
  const est = p.initiator.receive(rep.frame, 1_032);
  if (est.kind !== 'established') return assert.fail(est.kind);
  for (const f of est.send) p.responder.receive(f, 'z', 1_052);
  assert.equal(peerOf().handshakeRttMs, 40);
  // A mark for a response already confirmed, or for an unknown device, changes nothing.
  p.responder.replySent('dev_1', 1_100);
  p.responder.replySent('dev_x', 1_100);
  assert.equal(peerOf().replySentAt, undefined);
  // The next handshake: its initiation clears any mark; without one the time runs from the initiation.
  const [init2] = p.initiator.tick(200_000);
  const rep2 = p.responder.receive(init2!, 'z', 200_000);
  if (rep2.kind !== 'reply') return assert.fail(rep2.kind);
  const est2 = p.initiator.receive(rep2.frame, 200_003);
  if (est2.kind !== 'established') return assert.fail(est2.kind);
  for (const f of est2.send) p.responder.receive(f, 'z', 200_005);
  assert.equal(peerOf().handshakeRttMs, 5);
});
