// TUN offloads (native/offload.h): cutting kernel TSO super-packets into wire packets, gluing wire
// packets back into GSO writes. Checked against checksums computed here in JS, by round trip
// (segment(coalesce(x)) == x), and by a bounded fuzz run over hostile headers and packets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { internetChecksum } from '../src/index.js';
import { loadAddon } from '../src/native.js';

const addon = loadAddon();
const FIN = 0x01,
  SYN = 0x02,
  PSH = 0x08,
  ACK = 0x10,
  CWR = 0x80;

interface Tcp {
  v6?: boolean;
  src?: number[];
  dst?: number[];
  sport?: number;
  dport?: number;
  seq: number;
  ack?: number;
  flags?: number;
  window?: number;
  options?: number[];
  id?: number;
  payload: Uint8Array;
}

const sum16 = (b: Uint8Array) => {
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (b.length & 1) s += b[b.length - 1]! << 8;
  return s;
};
const fold = (s: number) => {
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
};

function pseudo(ip: Uint8Array, v6: boolean, l4len: number): number {
  return v6 ? sum16(ip.subarray(8, 40)) + 6 + l4len : sum16(ip.subarray(12, 20)) + 6 + l4len;
}

/** Is the TCP checksum of this packet right? */
function tcpOk(p: Buffer): boolean {
  const v6 = p[0]! >> 4 === 6;
  const ihl = v6 ? 40 : (p[0]! & 15) * 4;
  return fold(pseudo(p, v6, p.length - ihl) + sum16(p.subarray(ihl))) === 0xffff;
}
const ipOk = (p: Buffer) => p[0]! >> 4 === 6 || internetChecksum(p.subarray(0, (p[0]! & 15) * 4)) === 0;

function tcp(t: Tcp): Buffer {
  const v6 = t.v6 ?? false;
  const opts = t.options ?? [];
  const thl = 20 + opts.length;
  const ihl = v6 ? 40 : 20;
  const p = Buffer.alloc(ihl + thl + t.payload.length);
  if (v6) {
    p[0] = 0x60;
    p.writeUInt16BE(thl + t.payload.length, 4);
    p[6] = 6;
    p[7] = 64;
    Buffer.from(t.src ?? [0xfd, 0, ...Array(13).fill(0), 1]).copy(p, 8);
    Buffer.from(t.dst ?? [0xfd, 0, ...Array(13).fill(0), 2]).copy(p, 24);
  } else {
    p[0] = 0x45;
    p.writeUInt16BE(p.length, 2);
    p.writeUInt16BE(t.id ?? 7, 4);
    p[6] = 0x40; // DF
    p[8] = 64;
    p[9] = 6;
    Buffer.from(t.src ?? [10, 0, 0, 1]).copy(p, 12);
    Buffer.from(t.dst ?? [10, 0, 0, 2]).copy(p, 16);
    p.writeUInt16BE(internetChecksum(p.subarray(0, 20)), 10);
  }
  const th = p.subarray(ihl);
  th.writeUInt16BE(t.sport ?? 8080, 0);
  th.writeUInt16BE(t.dport ?? 40000, 2);
  th.writeUInt32BE(t.seq >>> 0, 4);
  th.writeUInt32BE((t.ack ?? 1000) >>> 0, 8);
  th[12] = (thl / 4) << 4;
  th[13] = t.flags ?? ACK;
  th.writeUInt16BE(t.window ?? 502, 14);
  Buffer.from(opts).copy(th, 20);
  Buffer.from(t.payload).copy(th, thl);
  th.writeUInt16BE(0xffff - fold(pseudo(p, v6, th.length) + sum16(th)), 16);
  return p;
}

function vnet(
  h: { flags?: number; gsoType?: number; hdrLen?: number; gsoSize?: number; csumStart?: number; csumOffset?: number },
  pkt: Uint8Array,
): Buffer {
  const b = Buffer.alloc(10 + pkt.length);
  b[0] = h.flags ?? 0;
  b[1] = h.gsoType ?? 0;
  b.writeUInt16LE(h.hdrLen ?? 0, 2);
  b.writeUInt16LE(h.gsoSize ?? 0, 4);
  b.writeUInt16LE(h.csumStart ?? 0, 6);
  b.writeUInt16LE(h.csumOffset ?? 0, 8);
  Buffer.from(pkt).copy(b, 10);
  return b;
}

/** What the kernel hands an offload TUN for a TSO send: one packet, partial checksum, gso fields. */
function superPacket(t: Tcp, mss: number): Buffer {
  const p = tcp(t);
  const v6 = t.v6 ?? false;
  const ihl = v6 ? 40 : 20;
  p.writeUInt16BE(fold(pseudo(p, v6, p.length - ihl)), ihl + 16); // CHECKSUM_PARTIAL
  const thl = 20 + (t.options?.length ?? 0);
  return vnet({ flags: 1, gsoType: v6 ? 4 : 1, hdrLen: ihl + thl, gsoSize: mss, csumStart: ihl, csumOffset: 16 }, p);
}

const TS = [1, 1, 8, 10, 0, 0, 1, 0, 0, 0, 2, 0]; // NOP NOP timestamps
const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);
const tcpPayload = (p: Buffer) => {
  const ihl = p[0]! >> 4 === 6 ? 40 : (p[0]! & 15) * 4;
  return p.subarray(ihl + (p[ihl + 12]! >> 4) * 4);
};

for (const v6 of [false, true]) {
  const fam = v6 ? 'IPv6' : 'IPv4';
  test(`segment: a ${fam} TSO super-packet becomes MSS-sized packets with correct headers and checksums`, () => {
    const data = bytes(10_000);
    const segs = addon.offloadSegment(
      superPacket({ v6, seq: 0xfffff000, flags: ACK | PSH | FIN | CWR, options: TS, payload: data, id: 65534 }, 1400),
    );
    assert.ok(segs);
    assert.equal(segs.length, Math.ceil(10_000 / 1400));
    let seq = 0xfffff000;
    segs.forEach((s, i) => {
      assert.ok(tcpOk(s), `tcp checksum of segment ${i}`);
      assert.ok(ipOk(s), `ip checksum of segment ${i}`);
      const ihl = v6 ? 40 : 20;
      const last = i === segs.length - 1;
      assert.equal(s.length, ihl + 32 + (last ? 10_000 - 1400 * (segs.length - 1) : 1400));
      if (v6) assert.equal(s.readUInt16BE(4), s.length - 40);
      else {
        assert.equal(s.readUInt16BE(2), s.length);
        assert.equal(s.readUInt16BE(4), (65534 + i) & 0xffff, 'IP ID counts up and wraps');
      }
      assert.equal(s.readUInt32BE(ihl + 4), seq >>> 0, 'sequence numbers continue and wrap');
      seq += tcpPayload(s).length;
      const f = s[ihl + 13]!;
      assert.equal(!!(f & (PSH | FIN)), last, 'PSH and FIN only on the last segment');
      assert.equal(!!(f & CWR), i === 0, 'CWR only on the first');
      assert.deepEqual([...s.subarray(ihl + 20, ihl + 32)], TS, 'options copied');
    });
    assert.deepEqual(Buffer.concat(segs.map(tcpPayload)), Buffer.from(data));
  });

  test(`coalesce: in-order ${fam} segments of one flow become one GSO write; segment() of it gives them back`, () => {
    const mss = 1200;
    const originals = Array.from({ length: 10 }, (_, i) =>
      tcp({
        v6,
        seq: 5000 + i * mss,
        options: TS,
        payload: bytes(i === 9 ? 300 : mss, i),
        id: 100 + i,
        flags: ACK | (i === 9 ? PSH : 0),
      }),
    );
    const out = addon.offloadCoalesce(originals);
    assert.equal(out.length, 1);
    const h = out[0]!;
    assert.equal(h[0], 1, 'NEEDS_CSUM');
    assert.equal(h[1], v6 ? 4 : 1, 'gso type');
    assert.equal(h.readUInt16LE(4), mss, 'gso_size');
    assert.equal(h.readUInt16LE(6), v6 ? 40 : 20, 'csum_start');
    assert.equal(h.readUInt16LE(8), 16, 'csum_offset');
    const back = addon.offloadSegment(h);
    assert.ok(back);
    assert.equal(back.length, originals.length);
    for (const [i, b] of back.entries()) assert.deepEqual(b, originals[i], `segment ${i} round-trips byte for byte`);
  });
}

test('coalesce: gaps, other ACKs, other options, pure ACKs, SYN/FIN and bad checksums are not glued; each flow stays in order', () => {
  const p = (o: Partial<Tcp> & { seq: number }) => tcp({ payload: bytes(1000), ...o });
  const bad = p({ seq: 3000 });
  bad[bad.length - 1]! ^= 0xff; // payload corrupted after the checksum was computed
  const input = [
    p({ seq: 0 }),
    p({ seq: 1000 }), // glued (flow A)
    p({ seq: 2000, sport: 1 }), // flow B
    p({ seq: 3000, ack: 5 }), // flow A, other ACK: A flushed first
    p({ seq: 4000, ack: 5 }), // glued with the one before
    p({ seq: 9000, ack: 5 }), // gap
    tcp({ seq: 10000, ack: 5, payload: new Uint8Array(0) }), // pure ACK of flow A
    p({ seq: 10000, ack: 5, flags: ACK | FIN }),
    p({ seq: 11000, ack: 5, options: TS }),
    bad,
    p({ seq: 0, flags: SYN }),
  ];
  const out = addon.offloadCoalesce(input);
  const segs = out.flatMap((o) => addon.offloadSegment(o)!);
  // Everything comes out exactly once, and per flow (source port) in the order it went in.
  assert.equal(segs.length, input.length);
  const flow = (b: Buffer) => b.readUInt16BE(20);
  // Re-cut segments number their IP IDs from the first one's; compare without ID and header sum.
  const noId = (b: Buffer) => {
    const c = Buffer.from(b);
    c.fill(0, 4, 6);
    c.fill(0, 10, 12);
    return c.toString('hex');
  };
  for (const port of [8080, 1]) {
    const i = input.filter((b) => flow(b) === port).map(noId);
    const o = segs.filter((b) => flow(b) === port).map(noId);
    assert.deepEqual(o, i);
  }
  const glued = out.filter((o) => o[1] !== 0).map((o) => addon.offloadSegment(o)!.length);
  assert.deepEqual(glued, [2, 2]);
  // The corrupted segment was passed on alone with its bad checksum (the kernel drops it), not re-summed.
  assert.ok(out.some((o) => o[1] === 0 && o.subarray(10).equals(bad)));
});

test('segment: non-GSO packets with a partial checksum get it completed (TCP and UDP), others pass unchanged', () => {
  const t = tcp({ seq: 1, payload: bytes(333) });
  const partial = Buffer.from(t);
  partial.writeUInt16BE(fold(pseudo(partial, false, partial.length - 20)), 36);
  const [done] = addon.offloadSegment(vnet({ flags: 1, csumStart: 20, csumOffset: 16 }, partial))!;
  assert.deepEqual(done, t);
  const [plain] = addon.offloadSegment(vnet({}, t))!;
  assert.deepEqual(plain, t);
  // UDP whose sum comes out zero is sent as 0xffff.
  const udp = Buffer.alloc(28);
  udp[0] = 0x45;
  udp.writeUInt16BE(28, 2);
  udp[8] = 64;
  udp[9] = 17;
  udp.writeUInt16BE(8, 24);
  udp.writeUInt16BE(fold(pseudo(udp, false, 8)), 26);
  const [u] = addon.offloadSegment(vnet({ flags: 1, csumStart: 20, csumOffset: 6 }, udp))!;
  assert.equal(fold(pseudo(u!, false, 8) + sum16(u!.subarray(20))), 0xffff, 'UDP checksum completed');
});

test('segment: headers that do not describe the packet are refused, not trusted', () => {
  const t = tcp({ seq: 1, payload: bytes(100) });
  const cases = [
    vnet({ gsoType: 1, gsoSize: 10, csumStart: 20, csumOffset: 16, flags: 1 }, t), // gso_size below the floor
    vnet({ gsoType: 4, gsoSize: 500, csumStart: 40, csumOffset: 16, flags: 1 }, t), // v6 type on a v4 packet
    vnet({ gsoType: 3, gsoSize: 500 }, t), // UFO: never enabled
    vnet({ flags: 1, csumStart: 200, csumOffset: 16 }, t), // csum_start past the end
    vnet({ flags: 1, csumStart: 20, csumOffset: 300 }, t),
    vnet({ flags: 1, csumStart: 21, csumOffset: 16 }, t), // odd start
    vnet({ gsoType: 1, gsoSize: 500, flags: 1 }, t.subarray(0, 30)), // TCP header cut short
    Buffer.alloc(5),
  ];
  for (const c of cases) assert.equal(addon.offloadSegment(c), null, c.subarray(0, 10).toString('hex'));
});

// Bytes biased toward plausible headers so the fuzzer reaches the segmenting code.
const vnetLike = fc.oneof(
  fc.uint8Array({ maxLength: 400 }),
  fc
    .tuple(
      fc.constantFrom(0, 1, 2),
      fc.constantFrom(0, 1, 4, 0x81, 3, 5),
      fc.integer({ min: 0, max: 120 }),
      fc.integer({ min: 0, max: 3000 }),
      fc.integer({ min: 0, max: 80 }),
      fc.constantFrom(6, 16, 0, 1, 255),
      fc.constantFrom(0x45, 0x46, 0x60, 0x4f, 0x00),
      fc.uint8Array({ minLength: 19, maxLength: 3000 }),
    )
    .map(([flags, gsoType, hdrLen, gsoSize, csumStart, csumOffset, first, rest]) => {
      const p = Buffer.from([first, ...rest]);
      if (p.length > 9) p[9] = 6;
      if (p.length > 6 && first === 0x60) p[6] = 6;
      return vnet({ flags, gsoType, hdrLen, gsoSize, csumStart, csumOffset }, p);
    }),
);

test('fuzz: segment never crashes and never produces a packet larger than the input allows', () => {
  fc.assert(
    fc.property(vnetLike, (b) => {
      const out = addon.offloadSegment(b);
      if (out === null) return;
      for (const s of out)
        assert.ok(s.length >= 20 && s.length <= b.length - 10, 'segment size bounded by the super-packet');
    }),
    { numRuns: 3000, seed: 7 },
  );
});

// A carried OpenVPN customer's flow (native/carry_mss.h): the device sends 10.0.0.1:8080 -> the customer 10.0.0.2:40000
// (tcp()'s defaults); the carry table holds [customer, its port, device, its port, the customer's MSS].
const CUST = 0x0a000002,
  DEV = 0x0a000001;
const carried = (mss: number, maxSeg = 1460) => ({ maxSeg, flows: [[CUST, 40000, DEV, 8080, mss] as const] });
/** `n` full segments of `seg` bytes (timestamps on) and a short last one, of flow `sport`. */
const deviceSegments = (n: number, seg: number, sport = 8080) =>
  Array.from({ length: n + 1 }, (_, i) =>
    tcp({ sport, seq: 7000 + i * seg, options: TS, payload: bytes(i === n ? 200 : seg, i), id: 10 + i }),
  );

test("coalesce with a carried flow's MSS: the device's segments are cut again at the customer's MSS less its options", () => {
  const input = deviceSegments(10, 1340);
  const out = addon.offloadCoalesce(input, carried(1400));
  assert.equal(out.length, 1);
  assert.equal(out[0]!.readUInt16LE(4), 1400 - 12, 'gso_size: the MSS less the 12 bytes of timestamps');
  const back = addon.offloadSegment(out[0]!)!;
  assert.equal(back.length, Math.ceil((10 * 1340 + 200) / 1388));
  for (const [i, b] of back.entries()) {
    assert.ok(tcpOk(b) && ipOk(b), `checksums of packet ${i}`);
    assert.ok(b.length <= 20 + 32 + 1388, `packet ${i} fits the customer's MSS`);
  }
  assert.deepEqual(
    Buffer.concat(back.map(tcpPayload)),
    Buffer.concat(input.map(tcpPayload)),
    'the same bytes in order',
  );
  // Capped by what the OpenVPN TUN carries (maxSeg), whatever the customer said.
  assert.equal(addon.offloadCoalesce(input, carried(9000, 1380))[0]!.readUInt16LE(4), 1380 - 12);
});

test('coalesce with carried flows: never below what the device sent, never for a flow not in the table, never one segment', () => {
  const gso = (packets: Buffer[], carry: ReturnType<typeof carried>) =>
    addon.offloadCoalesce(packets, carry).map((o) => (o[1] === 0 ? 0 : o.readUInt16LE(4)));
  assert.deepEqual(gso(deviceSegments(10, 1340), carried(1300)), [1340], 'a smaller MSS: the device size stands');
  assert.deepEqual(gso(deviceSegments(10, 1340, 1), carried(1400)), [1340], 'another flow (device port 1)');
  assert.deepEqual(gso(deviceSegments(10, 1340), carried(500)), [1340], 'an MSS below 536 is not kept');
  // Two segments of 650 and a last of 200: 1,500 bytes, one segment at 1,388 and the rest: cut; 600 + 200: not.
  assert.deepEqual(gso(deviceSegments(2, 650), carried(1400)), [1388]);
  assert.deepEqual(gso(deviceSegments(1, 600), carried(1400)), [600], 'would be one segment: left as it was');
  // IPv6 flows are never carried (the carry is IPv4): left alone.
  const v6 = Array.from({ length: 4 }, (_, i) => tcp({ v6: true, seq: i * 1000, options: TS, payload: bytes(1000) }));
  assert.deepEqual(gso(v6, carried(1400)), [1000]);
  const some = deviceSegments(1, 1000);
  assert.throws(() => addon.offloadCoalesce(some, { maxSeg: 100, flows: [] }), RangeError);
  assert.throws(() => addon.offloadCoalesce(some, { maxSeg: 1460, flows: [[1, 2, 3]] } as never), TypeError);
});

test('fuzz: coalesce with carried flows keeps every byte in order and cuts no packet past the largest size allowed', () => {
  const segment = fc.record({
    sport: fc.constantFrom(1, 2),
    // Mostly what a device sends in a download (in order, full-sized, ACK only), so runs get glued and cut.
    seqStep: fc.constantFrom(0, 0, 0, 0, 0, 0, 1, 1000),
    len: fc.constantFrom(1340, 1340, 1340, 1340, 1340, 0, 10, 700, 1000),
    flags: fc.constantFrom(ACK, ACK, ACK, ACK, ACK, ACK | PSH, ACK | FIN, SYN),
    corrupt: fc.constantFrom(false, false, false, false, false, false, false, true),
  });
  const junk = fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b));
  const mss = fc.oneof(fc.constantFrom(0, 500, 1300, 1400, 1460, 9000), fc.integer({ min: 0, max: 70_000 }));
  const flow = fc.tuple(fc.constantFrom(1, 2, 3), mss);
  fc.assert(
    fc.property(
      fc.array(fc.oneof({ arbitrary: segment, weight: 6 }, { arbitrary: junk, weight: 1 }), { maxLength: 40 }),
      fc.array(flow, { maxLength: 3 }),
      fc.oneof(fc.constantFrom(536, 1380, 1460), fc.integer({ min: 536, max: 65495 })),
      (items, flows, maxSeg) => {
        const seqs = new Map<number, number>();
        const input = items.map((it) => {
          if (Buffer.isBuffer(it)) return it;
          const seq = (seqs.get(it.sport) ?? 0) + it.seqStep;
          seqs.set(it.sport, seq + it.len);
          const opts = it.sport === 1 ? TS : []; // flow 1 with timestamps, flow 2 without
          const p = tcp({ sport: it.sport, seq, flags: it.flags, options: opts, payload: bytes(it.len), id: 1 });
          if (it.corrupt && it.len > 0) p[p.length - 1]! ^= 1;
          return p;
        });
        const table = flows.map(([port, mss]) => [CUST, 40000, DEV, port, mss & 0xffff] as const);
        const out = addon.offloadCoalesce(input, { maxSeg, flows: table });
        const cut = out.filter((o) => o[1] !== 0).flatMap((o) => addon.offloadSegment(o)!);
        for (const p of cut) assert.ok(tcpOk(p) && ipOk(p), 'a glued and cut packet has its checksums');
        const back = out.flatMap((o) => (o[1] === 0 ? [o.subarray(10)] : addon.offloadSegment(o)!));
        const size = (xs: Buffer[]) =>
          xs.reduce((a, p) => a + (p.length >= 40 && p[0] === 0x45 && p[9] === 6 ? tcpPayload(p).length : 0), 0);
        assert.equal(size(back), size(input), 'payload bytes');
        for (const port of [1, 2]) {
          const mine = (xs: Buffer[]) =>
            xs.filter((p) => p.length >= 40 && p[0] === 0x45 && p[9] === 6 && p.readUInt16BE(20) === port);
          assert.deepEqual(Buffer.concat(mine(back).map(tcpPayload)), Buffer.concat(mine(input).map(tcpPayload)));
          // No packet of the flow carries more than the most it could: what it was sent with, or its customer's
          // MSS (the last recorded for its port), capped by maxSeg, less its options.
          const rec = table.filter((f) => f[3] === port).at(-1);
          const biggest = Math.max(0, ...mine(input).map((p) => tcpPayload(p).length));
          for (const p of mine(back)) {
            const opts = ((p[32]! >> 4) - 5) * 4;
            const allowed = rec && rec[4] >= 536 ? Math.min(rec[4], maxSeg) - opts : 0;
            assert.ok(tcpPayload(p).length <= Math.max(biggest, allowed), 'segment size');
          }
        }
      },
    ),
    { numRuns: 500, seed: 12 },
  );
});
test('fuzz: coalesce keeps every packet (valid segments round-trip, anything else passes through unchanged)', () => {
  const segment = fc.record({
    sport: fc.constantFrom(1, 2),
    seqStep: fc.constantFrom(0, 1, 1000),
    len: fc.constantFrom(0, 10, 1000),
    flags: fc.constantFrom(ACK, ACK | PSH, ACK | FIN, SYN),
    ack: fc.constantFrom(1, 2),
    corrupt: fc.boolean(),
  });
  const junk = fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b));
  fc.assert(
    fc.property(fc.array(fc.oneof(segment, junk), { maxLength: 40 }), (items) => {
      const seqs = new Map<number, number>();
      const input = items.map((it) => {
        if (Buffer.isBuffer(it)) return it;
        const seq = (seqs.get(it.sport) ?? 0) + it.seqStep;
        seqs.set(it.sport, seq + it.len);
        const p = tcp({ sport: it.sport, seq, ack: it.ack, flags: it.flags, payload: bytes(it.len), id: 1 });
        if (it.corrupt && it.len > 0) p[p.length - 1]! ^= 1;
        return p;
      });
      const out = addon.offloadCoalesce(input);
      const back = out.flatMap((o) => (o[1] === 0 ? [o.subarray(10)] : addon.offloadSegment(o)!));
      assert.equal(back.length, input.length, 'packet count');
      const size = (xs: Buffer[]) => xs.reduce((a, p) => a + p.length, 0);
      assert.equal(size(back), size(input), 'bytes');
      // Each flow's payload arrives complete and in order.
      for (const port of [1, 2]) {
        const pay = (xs: Buffer[]) =>
          Buffer.concat(
            xs
              .filter((p) => p.length >= 40 && p[0] === 0x45 && p[9] === 6 && p.readUInt16BE(20) === port)
              .map(tcpPayload),
          );
        assert.deepEqual(pay(back), pay(input));
      }
    }),
    { numRuns: 500, seed: 11 },
  );
});
