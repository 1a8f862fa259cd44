// ACK thinning within one read (native/ack_filter.h, src/ack-filter.ts): which ACKs a later one covers, which
// must stay (duplicate ACKs, SACK, window updates, anything but a bare ACK), sequence numbers that wrap, and
// the addon and the TypeScript reference answering the same for random and hostile batches (a differential
// fuzz run; neither may throw).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { markRedundantAcks } from '../src/index.js';
import { loadAddon } from '../src/native.js';
import { ACK, tcpPacket, type TcpSpec } from './fixtures/tcp-packet.js';

const addon = loadAddon();
const TS = [1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7]; // NOP NOP timestamps: what Linux puts on every ACK
const SACK = [1, 1, 5, 10, 0, 0, 0x10, 0, 0, 0, 0x20, 0];

const ackOf = (ack: number, o: TcpSpec = {}) => tcpPacket({ flags: ACK, options: TS, ack, ...o });

/** Both implementations' answer, which must agree. */
function thin(batch: Buffer[]): number[] {
  const ref = markRedundantAcks(batch).map((d) => (d ? 1 : 0));
  assert.deepEqual([...addon.ackMarkRedundant(batch)], ref);
  return ref;
}

test("a flow's older ACKs go when a later one in the read acknowledges more; the newest always stays", () => {
  assert.deepEqual(thin([ackOf(100), ackOf(200), ackOf(300)]), [1, 1, 0]);
  assert.deepEqual(thin([ackOf(100)]), [0]);
  assert.deepEqual(thin([]), []);
  // Other packets in between change nothing; other flows are their own.
  const data = tcpPacket({ flags: ACK, options: TS, ack: 150, payload: [1, 2, 3] });
  const other = ackOf(50, { sport: 40001 });
  assert.deepEqual(thin([ackOf(100), data, other, ackOf(200), ackOf(40, { sport: 40001 })]), [1, 0, 0, 0, 0]);
  assert.deepEqual(thin([ackOf(100, { dst: [192, 168, 255, 8] }), ackOf(200)]), [0, 0], 'another destination');
  // Sequence numbers wrap: 0x10 is ahead of 0xffffff00; 2^31 ahead is not "ahead".
  assert.deepEqual(thin([ackOf(0xffffff00), ackOf(0x10)]), [1, 0]);
  assert.deepEqual(thin([ackOf(0), ackOf(0x80000000)]), [0, 0]);
  assert.deepEqual(thin([ackOf(0x10), ackOf(0xffffff00)]), [0, 0], 'behind: reordered, kept');
});

test('what stays: duplicate ACKs, SACK, data, any other flag, ECN marks, IP options, fragments, odd lengths', () => {
  assert.deepEqual(thin([ackOf(100), ackOf(100), ackOf(100)]), [0, 0, 0], 'duplicate ACKs count for fast retransmit');
  assert.deepEqual(thin([ackOf(100, { options: SACK }), ackOf(200)]), [0, 0], 'a SACK block');
  assert.deepEqual(thin([ackOf(100, { options: [] }), ackOf(200, { options: [] })]), [1, 0], 'no options at all');
  for (const flags of [ACK | 0x08, ACK | 0x01, ACK | 0x04, ACK | 0x40, ACK | 0x80, ACK | 0x20, ACK | 0x02])
    assert.deepEqual(thin([ackOf(100, { flags }), ackOf(200)]), [0, 0], `flags ${flags.toString(16)}`);
  assert.deepEqual(thin([ackOf(100, { payload: [0] }), ackOf(200)]), [0, 0], 'a byte of data');
  assert.deepEqual(thin([ackOf(100, { ipOptions: [1, 1, 1, 0] }), ackOf(200)]), [0, 0], 'IP options');
  const ce = ackOf(100);
  ce[1] = 0x03;
  assert.deepEqual(thin([ce, ackOf(200)]), [0, 0], 'ECN CE');
  const frag = ackOf(100);
  frag[6] = 0x20; // MF
  assert.deepEqual(thin([frag, ackOf(200)]), [0, 0], 'a fragment');
  const reserved = ackOf(100);
  reserved[32]! |= 0x01; // a reserved bit (AccECN's AE)
  assert.deepEqual(thin([reserved, ackOf(200)]), [0, 0], 'reserved bits');
  const padded = Buffer.concat([ackOf(100), Buffer.alloc(4)]);
  assert.deepEqual(thin([padded, ackOf(200)]), [0, 0], 'bytes past the IP total length');
  assert.deepEqual(thin([ackOf(100, { options: [8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 30, 2] }), ackOf(200)]), [0, 0]);
  assert.deepEqual(thin([ackOf(100, { options: [8, 11, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0] }), ackOf(200)]), [0, 0]);
  assert.deepEqual(
    thin([ackOf(100, { options: [8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0] }), ackOf(200)]),
    [1, 0],
    'EOL ends options',
  );
  assert.throws(() => addon.ackMarkRedundant([ackOf(1), 'x' as unknown as Uint8Array]), TypeError);
});

test('a pure ACK goes when a later segment of its flow carries as much: data or a FIN, with a window at least as large', () => {
  const data = (ack: number, o: TcpSpec = {}) =>
    tcpPacket({ flags: ACK | 0x08, options: TS, ack, payload: [71, 69, 84], ...o });
  // The customer's bare ACK of a handshake (or of an answer), then at once its request: the ACK goes.
  assert.deepEqual(thin([ackOf(100), data(100)]), [1, 0]);
  assert.deepEqual(thin([ackOf(100), data(300, { window: 10 })]), [1, 0], 'acknowledging more: any window');
  assert.deepEqual(thin([ackOf(100), data(100, { window: 64241 })]), [1, 0], 'a larger window');
  assert.deepEqual(thin([ackOf(100, { window: 500 }), data(100, { window: 499 })]), [0, 0], 'a window update stays');
  assert.deepEqual(thin([ackOf(100), data(99)]), [0, 0], 'acknowledging less');
  assert.deepEqual(thin([data(100), ackOf(100)]), [0, 0], 'only later segments count');
  assert.deepEqual(thin([ackOf(100), tcpPacket({ flags: ACK | 0x01, options: TS, ack: 100 })]), [1, 0], 'a FIN');
  assert.deepEqual(thin([ackOf(100), data(100, { sport: 40009 })]), [0, 0], 'another flow');
  assert.deepEqual(thin([ackOf(100), data(100, { options: SACK })]), [1, 0], 'the carrier may have any option');
  const ce = data(100);
  ce[1] = 0x03;
  assert.deepEqual(thin([ackOf(100), ce]), [1, 0], 'and an ECN mark');
  // Not carriers: no ACK flag, SYN, RST, URG, a reserved bit, IP options, a fragment, a bad length.
  for (const flags of [0x08, ACK | 0x02, ACK | 0x04, ACK | 0x20])
    assert.deepEqual(thin([ackOf(100), data(100, { flags })]), [0, 0], `flags ${flags.toString(16)}`);
  const reserved = data(100);
  reserved[32]! |= 0x02;
  assert.deepEqual(thin([ackOf(100), reserved]), [0, 0], 'a reserved bit');
  assert.deepEqual(thin([ackOf(100), data(100, { ipOptions: [1, 1, 1, 0] })]), [0, 0], 'IP options');
  const frag = data(100);
  frag[7] = 1;
  assert.deepEqual(thin([ackOf(100), frag]), [0, 0], 'a fragment');
  assert.deepEqual(thin([ackOf(100), data(100).subarray(0, 50)]), [0, 0], 'cut short');
  // Duplicate ACKs stay among themselves; the carrier behind them covers them all.
  assert.deepEqual(thin([ackOf(100), ackOf(100), data(100)]), [1, 1, 0]);
  assert.deepEqual(thin([ackOf(100), ackOf(100, { window: 70000 & 0xffff }), data(100, { window: 3000 })]), [0, 0, 0]);
  // The carriers' largest window of the highest acknowledgement is the bar; a reordered one raises it.
  assert.deepEqual(
    thin([ackOf(100, { window: 900 }), data(100, { window: 1000 }), data(100, { window: 10 })]),
    [1, 0, 0],
  );
  assert.deepEqual(thin([ackOf(200), data(200), data(150, { window: 60000 })]), [1, 0, 0]);
  assert.deepEqual(thin([ackOf(200), data(200, { window: 10 }), data(150, { window: 60000 })]), [0, 0, 0]);
  assert.deepEqual(
    thin([ackOf(150, { window: 50000 }), data(200, { window: 10 }), data(150, { window: 60000 })]),
    [1, 0, 0],
  );
  assert.deepEqual(thin([ackOf(150, { window: 61000 }), data(150, { window: 60000 }), data(100)]), [0, 0, 0]);
});

test('at most 32 flows are tracked in one read: the rest keep all their ACKs', () => {
  const batch: Buffer[] = [];
  for (let f = 0; f < 40; f++) batch.push(ackOf(100, { sport: 1000 + f }));
  for (let f = 0; f < 40; f++) batch.push(ackOf(200, { sport: 1000 + f }));
  const r = thin(batch);
  // Walking back, the newest 40 fill the list with flows 39..8; flows 0..7 are not tracked.
  assert.equal(
    r.reduce((s, x) => s + x, 0),
    32,
  );
  assert.deepEqual(r.slice(0, 8), [0, 0, 0, 0, 0, 0, 0, 0]);
});

test('fuzz: the addon and the reference mark the same packets for random and mutated batches', () => {
  const option = fc.oneof(
    fc.constant([1]),
    fc.constant([0]),
    fc.constant([8, 10, 1, 2, 3, 4, 5, 6, 7, 8]),
    fc.constant([5, 10, 0, 0, 0, 1, 0, 0, 0, 2]),
    fc.uint8Array({ minLength: 1, maxLength: 6 }).map((b) => [...b]),
  );
  const packet = fc.record({
    flags: fc.oneof(
      { arbitrary: fc.constant(ACK), weight: 6 },
      fc.constantFrom(ACK | 0x08, ACK | 0x01, ACK | 0x19),
      fc.integer({ min: 0, max: 255 }),
    ),
    options: fc.oneof(
      { arbitrary: fc.constant(TS), weight: 4 },
      fc.array(option, { maxLength: 5 }).map((os) => os.flat().slice(0, 40)),
    ),
    payload: fc.oneof({ arbitrary: fc.constant<number[]>([]), weight: 6 }, fc.array(fc.nat(255), { maxLength: 8 })),
    sport: fc.integer({ min: 40000, max: 40003 }),
    ack: fc.oneof(fc.integer({ min: 0, max: 4000 }), fc.nat(0xffffffff)),
    window: fc.oneof({ arbitrary: fc.constant(64240), weight: 4 }, fc.integer({ min: 0, max: 65535 })),
  });
  const flips = fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 3 });
  const mutated = fc.tuple(packet, fc.oneof({ arbitrary: fc.constant([]), weight: 3 }, flips), fc.nat(60));
  const counts = { dropped: 0, packets: 0 };
  fc.assert(
    fc.property(fc.array(mutated, { maxLength: 24 }), (specs) => {
      const batch = specs.map(([spec, flips, cut]) => {
        let p = tcpPacket(spec);
        for (const [at, v] of flips) p[at % p.length] = v;
        if (cut % 8 === 0) p = p.subarray(0, Math.max(0, p.length - (cut % 44)));
        return p;
      });
      const r = thin(batch);
      counts.packets += r.length;
      counts.dropped += r.reduce((s, x) => s + x, 0);
    }),
    { numRuns: 3000 },
  );
  assert.ok(
    counts.dropped > counts.packets / 20,
    `the runs exercised thinning (${counts.dropped} of ${counts.packets})`,
  );
});
