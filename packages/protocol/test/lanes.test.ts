// Lanes (docs/protocol.md §3.1): one device holding several sessions at once, each its own handshake,
// socket and endpoint; the relay sends each flow by the lane its hash picks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  LANE_INITIATION_LEN,
  INITIATION_LEN,
  MAX_LANES,
  createIdentity,
  createInitiation,
  createInitiator,
  consumeInitiation,
  decodeFrame,
  flowLane,
  generateKeyPair,
  tai64n,
  type Initiator,
} from '../src/index.js';
import {
  aeadSeal,
  dh,
  hash,
  kdf1,
  kdf2,
  mac16,
  x25519PrivateKeyObject,
  x25519PublicFromPrivate,
} from '../src/crypto.js';
import { mac1KeyFor, type StaticIdentity } from '../src/handshake.js';
import { encodeInitiation } from '../src/messages.js';
import { CONSTRUCTION, IDENTIFIER } from '../src/constants.js';
import { connect, pair } from './helpers.js';

/** An IPv4 TCP packet from src:sport to the device (10.0.0.2):dport. */
function tcp(src: number, sport: number, dport = 8080): Buffer {
  const b = Buffer.alloc(40);
  b[0] = 0x45;
  b[9] = 6;
  b.writeUInt32BE(src >>> 0, 12);
  b.writeUInt32BE(0x0a000002, 16);
  b.writeUInt16BE(sport, 20);
  b.writeUInt16BE(dport, 22);
  return b;
}

/** A lane initiator for the pair's device, and its handshake run at `now` from `endpoint`. */
function laneOf(p: ReturnType<typeof pair>, index: number, count: number): Initiator {
  return createInitiator({
    privateKey: p.device.privateKey,
    responderPublicKey: p.relay.publicKey,
    psk: p.psk,
    lane: { index, count },
  });
}

function connectLane(p: ReturnType<typeof pair>, lane: Initiator, now: number, endpoint: string): void {
  const [init] = lane.tick(now);
  assert.ok(init);
  assert.equal(init.length, LANE_INITIATION_LEN);
  const rep = p.responder.receive(init, endpoint, now);
  assert.equal(rep.kind, 'reply');
  if (rep.kind !== 'reply') return;
  assert.equal(rep.lane, lane.lane!.index);
  const est = lane.receive(rep.frame, now);
  assert.equal(est.kind, 'established');
  if (est.kind === 'established') for (const f of est.send) p.responder.receive(f, endpoint, now);
}

/** Sets the pair's lane 0 up as a lane initiator (lane 0 of `count`). */
function pairWithLanes(count: number) {
  const p = pair();
  const lanes = Array.from({ length: count }, (_, k) => laneOf(p, k, count));
  const eps = lanes.map((_, k) => `udp:198.51.100.7:${40000 + k}`);
  for (const [k, l] of lanes.entries()) connectLane(p, l, 0, eps[k]!);
  return { p, lanes, eps };
}

test('a lane initiation is 152 bytes, carries its lane inside the AEAD and decodes; a classic one is 148', () => {
  const relay = createIdentity(generateKeyPair().privateKey);
  const device = createIdentity(generateKeyPair().privateKey);
  const mk = (lane?: { index: number; count: number }) =>
    createInitiation({
      initiator: device,
      responderPublicKey: relay.publicKey,
      senderIndex: 7,
      timestamp: tai64n(1_700_000_000_000),
      ephemeralPrivateKey: generateKeyPair().privateKey,
      lane,
    }).message;
  const classic = mk();
  assert.equal(classic.length, INITIATION_LEN);
  assert.equal(mk({ index: 0, count: 1 }).length, INITIATION_LEN);
  const lane = mk({ index: 3, count: 4 });
  assert.equal(lane.length, LANE_INITIATION_LEN);
  assert.equal(decodeFrame(lane).type, 'initiation');
  const c = consumeInitiation(relay, lane, () => ({}));
  assert.ok(typeof c !== 'string');
  assert.deepEqual(c.lane, { index: 3, count: 4 });
  assert.equal(c.timestamp.length, 12);
  const c0 = consumeInitiation(relay, classic, () => ({}));
  assert.ok(typeof c0 !== 'string');
  assert.deepEqual(c0.lane, { index: 0, count: 1 });
  for (const bad of [
    { index: 4, count: 4 },
    { index: -1, count: 2 },
    { index: 0, count: MAX_LANES + 1 },
    { index: 1.5, count: 3 },
  ])
    assert.throws(() => mk(bad), RangeError);
});

test('a lane initiation changed on the path is dropped (MAC1 first, then the AEAD over the payload)', () => {
  const relay = createIdentity(generateKeyPair().privateKey);
  const device = createIdentity(generateKeyPair().privateKey);
  const msg = createInitiation({
    initiator: device,
    responderPublicKey: relay.publicKey,
    senderIndex: 7,
    timestamp: tai64n(1_700_000_000_000),
    ephemeralPrivateKey: generateKeyPair().privateKey,
    lane: { index: 1, count: 2 },
  }).message;
  // Every single bit flipped before the MACs: refused, never read as another lane.
  for (let i = 0; i < (LANE_INITIATION_LEN - 32) * 8; i += 7) {
    const m = Buffer.from(msg);
    m[i >> 3]! ^= 1 << (i & 7);
    const c = consumeInitiation(relay, m, () => ({}));
    assert.equal(typeof c, 'string', `bit ${i}`);
  }
  // A frame cut to 148 bytes (what a classic initiation is) does not pass either.
  assert.equal(typeof consumeInitiation(relay, msg.subarray(0, INITIATION_LEN), () => ({})), 'string');
});

test('the relay holds one session per lane, each with its own endpoint; flows go by their hash, the same flow always by the same lane', () => {
  const { p, lanes, eps } = pairWithLanes(4);
  const peer = p.responder.peer('dev_1')!;
  assert.equal(peer.up, true);
  assert.equal(peer.laneCount, 4);
  assert.equal(peer.lanes.size, 3);
  const seen = new Map<number, number>();
  for (let i = 0; i < 400; i++) {
    const pkt = tcp(0xc6336401 + (i % 50), 30000 + i);
    const want = flowLane(pkt, 4);
    const a = p.responder.sendPacket('dev_1', pkt, 10)!;
    const b = p.responder.sendPacket('dev_1', pkt, 10)!;
    assert.equal(a.lane, want);
    assert.equal(b.lane, want);
    assert.equal(a.endpoint, eps[want]);
    // Only that lane's initiator can open it.
    assert.equal(lanes[want]!.receive(a.frame, 10).kind, 'packet');
    for (let k = 0; k < 4; k++) if (k !== want) assert.equal(lanes[k]!.receive(b.frame, 10).kind, 'dropped');
    seen.set(want, (seen.get(want) ?? 0) + 1);
  }
  // 400 flows over 4 lanes: each gets some (a hash, not a fixed lane).
  for (let k = 0; k < 4; k++) assert.ok((seen.get(k) ?? 0) > 50, `lane ${k}: ${seen.get(k)}`);
  // Messages (commands) go by lane 0 only.
  const m = p.responder.sendMessage(
    'dev_1',
    { kind: 'command', command: { id: 'cmd_1', type: 'rotate_ip', payload: { reason: 'schedule' } } },
    10,
  )!;
  assert.equal(m.endpoint, eps[0]);
  assert.equal(lanes[0]!.receive(m.frame, 10).kind, 'message');
  // Frames from any lane reach the relay as the device's.
  assert.equal(p.responder.receive(lanes[2]!.sendPacket(tcp(0x0a000002, 8080), 11)!, eps[2]!, 11).kind, 'packet');
});

test('a lane that goes silent is dropped and its flows go by lane 0; a lane handshake replayed is refused', () => {
  const { p, lanes, eps } = pairWithLanes(2);
  const pkt = Array.from({ length: 64 }, (_, i) => tcp(0xc6336401, 20000 + i)).find((x) => flowLane(x, 2) === 1)!;
  assert.equal(p.responder.sendPacket('dev_1', pkt, 1)!.lane, 1);
  // Lane 0 keeps talking (keepalives), lane 1 is silent past the dead timer.
  for (let t = 1_000; t <= 31_000; t += 1_000) {
    for (const f of lanes[0]!.tick(t)) p.responder.receive(f, eps[0]!, t);
    p.responder.tick(t);
  }
  assert.equal(p.responder.peer('dev_1')!.up, true);
  const ob = p.responder.sendPacket('dev_1', pkt, 31_000)!;
  assert.equal(ob.lane, 0);
  assert.equal(ob.endpoint, eps[0]);
  // The lane's first initiation again (a replay from the path): refused by that lane's timestamp.
  const replay = createInitiator({
    privateKey: p.device.privateKey,
    responderPublicKey: p.relay.publicKey,
    psk: p.psk,
    lane: { index: 1, count: 2 },
  });
  const fresh = replay.tick(40_000)[0]!;
  assert.equal(p.responder.receive(fresh, 'udp:203.0.113.9:1', 40_000).kind, 'reply');
  assert.deepEqual(p.responder.receive(fresh, 'udp:203.0.113.9:1', 40_001), {
    kind: 'dropped',
    reason: 'replayed_initiation',
    deviceId: 'dev_1',
  });
});

test('lane 0 handshaking as a device without lanes (or with fewer) forgets the lanes beyond; the device going down takes them all', () => {
  const { p } = pairWithLanes(3);
  const peer = p.responder.peer('dev_1')!;
  assert.equal(peer.lanes.size, 2);
  const fewer = laneOf(p, 0, 2);
  connectLane(p, fewer, 5, 'udp:198.51.100.7:40000');
  assert.equal(peer.laneCount, 2);
  assert.deepEqual([...peer.lanes.keys()], [1]);
  // A classic initiation (the agent restarted without lanes): lane 0 of 1.
  connect(p, 6, 'udp:198.51.100.7:40000');
  assert.equal(peer.laneCount, 1);
  assert.equal(peer.lanes.size, 0);
  for (let i = 0; i < 50; i++) assert.equal(p.responder.sendPacket('dev_1', tcp(0xc6336401, 1000 + i), 7)!.lane, 0);
  // With lanes again, then removed: nothing left to send by.
  const again = pairWithLanes(2);
  again.p.responder.removePeer('dev_1', 1);
  assert.equal(again.p.responder.sendPacket('dev_1', tcp(1, 2), 2), null);
});

test('flowLane: in range for any bytes, the same for the same flow, and a later fragment goes by its addresses', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 80 }), fc.integer({ min: 1, max: MAX_LANES }), (b, n) => {
      const k = flowLane(b, n);
      assert.ok(Number.isInteger(k) && k >= 0 && k < n);
      assert.equal(flowLane(Buffer.from(b), n), k);
    }),
  );
  // Symmetric: the answer (addresses and ports swapped) goes by the lane its question came by.
  for (let i = 0; i < 200; i++) {
    const q = tcp(0xc6336401 + i, 20000 + i * 7, 8080 + (i % 3));
    const r = Buffer.from(q);
    q.copy(r, 12, 16, 20);
    q.copy(r, 16, 12, 16);
    q.copy(r, 20, 22, 24);
    q.copy(r, 22, 20, 22);
    for (const n of [2, 3, 4, 16]) assert.equal(flowLane(r, n), flowLane(q, n));
  }
  const a = tcp(0xc6336401, 1111);
  const frag = Buffer.from(a);
  frag[7] = 1; // fragment offset 8: no ports to read
  const noPorts = Buffer.from(a);
  noPorts.fill(0, 20, 24);
  noPorts[7] = 1;
  assert.equal(flowLane(frag, 16), flowLane(noPorts, 16));
});

test("flowLane: every protocol but TCP and UDP goes on lane 0 (the answers to lane 0's ICMP probes)", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 20, maxLength: 80 }),
      fc.integer({ min: 0, max: 255 }).filter((x) => x !== 6 && x !== 17),
      fc.integer({ min: 2, max: MAX_LANES }),
      (b, proto, n) => {
        const p = Buffer.from(b);
        p[9] = proto;
        assert.equal(flowLane(p, n), 0);
      },
    ),
  );
  // Whichever device address: an echo reply from the relay's tunnel address, by any lane count.
  for (let i = 0; i < 256; i++) {
    const icmp = tcp(0x0a000001, 0);
    icmp[9] = 1;
    icmp.writeUInt32BE(0x0a000002 + i, 16);
    for (const n of [2, 3, 4, 16]) assert.equal(flowLane(icmp, n), 0);
  }
  // TCP and UDP still spread.
  const udp = Array.from({ length: 64 }, (_, i) => {
    const u = tcp(0xc6336401, 20000 + i);
    u[9] = 17;
    return flowLane(u, 4);
  });
  assert.equal(new Set(udp).size, 4);
});

/**
 * A lane initiation as a device holding the keys could write it, with any 16-byte payload (createInitiation
 * refuses bad lanes, so the steps are done here by hand, as handshake.ts does them).
 */
function rawLaneInitiation(device: StaticIdentity, relayPub: Buffer, payload: Buffer): Buffer {
  const eph = x25519PrivateKeyObject(generateKeyPair().privateKey);
  const ephPub = x25519PublicFromPrivate(eph);
  const ck0 = hash(Buffer.from(CONSTRUCTION, 'ascii'));
  let h = hash(hash(ck0, Buffer.from(IDENTIFIER, 'ascii')), relayPub);
  let ck = kdf1(ck0, ephPub);
  h = hash(h, ephPub);
  let k: Buffer;
  [ck, k] = kdf2(ck, dh(eph, relayPub));
  const encStatic = aeadSeal(k, 0, device.publicKey, h);
  h = hash(h, encStatic);
  [ck, k] = kdf2(ck, dh(device.keyObject, relayPub));
  const msg = encodeInitiation({
    senderIndex: 9,
    ephemeral: ephPub,
    encryptedStatic: encStatic,
    encryptedTimestamp: aeadSeal(k, 0, payload, h),
    mac1: Buffer.alloc(16),
    mac2: Buffer.alloc(16),
  });
  mac16(mac1KeyFor(relayPub), msg.subarray(0, msg.length - 32)).copy(msg, msg.length - 32);
  return msg;
}

test("a device's own lane initiation with a lane out of range or padding is malformed: nothing is kept", () => {
  const p = pair();
  const device = createIdentity(p.device.privateKey);
  const payload = (lane: number, lanes: number, pad = 0) => {
    const b = Buffer.alloc(16);
    tai64n(1_800_000_000_000).copy(b, 0);
    b[12] = lane;
    b[13] = lanes;
    b[14] = pad;
    return b;
  };
  // The hand-made frame is right when its fields are: a good one is answered.
  assert.equal(p.responder.receive(rawLaneInitiation(device, p.relay.publicKey, payload(1, 2)), 'x', 1).kind, 'reply');
  for (const [lane, lanes, pad] of [
    [0, 1, 0],
    [2, 2, 0],
    [0, 17, 0],
    [16, 17, 0],
    [255, 255, 0],
    [0, 2, 1],
  ] as const) {
    const r = p.responder.receive(rawLaneInitiation(device, p.relay.publicKey, payload(lane, lanes, pad)), 'x', 2);
    assert.deepEqual(r, { kind: 'dropped', reason: 'malformed' }, `lane ${lane} of ${lanes}, pad ${pad}`);
  }
  const peer = p.responder.peer('dev_1')!;
  assert.equal(peer.laneCount, 2);
  assert.deepEqual([...peer.lanes.keys()], [1]);
});
