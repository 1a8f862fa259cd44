// The original destination stamped into a TCP SYN (native/syn_stamp.h, src/syn-stamp.ts): what a stamped
// SYN looks like on the wire (lengths, checksums, the customer's own options kept in order, its payload),
// what a hostile customer's stamp becomes, what does not fit, and the addon and the TypeScript reference
// answering the same bytes for random and hostile packets (a differential fuzz run; neither may throw).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { internetChecksum } from '../src/index.js';
import { loadAddon } from '../src/native.js';
import { ACK, SYN, tcpChecksum, tcpPacket } from './fixtures/tcp-packet.js';
import { readStamp, STAMP_MALFORMED, STAMP_NO_ROOM, STAMP_NOT_SYN, stampSyn, unstampSyn } from '../src/syn-stamp.js';

const addon = loadAddon();

// Linux's SYN options: MSS 1460, SACK permitted + timestamps, NOP, window scale 7.
const LINUX = [2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7];
const TFO_COOKIE = [34, 10, 1, 2, 3, 4, 5, 6, 7, 8];

function checkWire(p: Buffer): void {
  const ihl = (p[0]! & 0x0f) * 4;
  assert.equal(p.readUInt16BE(2), p.length, 'IP total length');
  assert.equal(internetChecksum(p.subarray(0, ihl)), 0, 'IP header checksum');
  assert.equal(p.readUInt16BE(ihl + 16), tcpChecksum(p), 'TCP checksum');
  assert.equal(((p[ihl + 12]! >> 4) * 4) % 4, 0);
}

/** What the device's listener would read back: the saved SYN is the IP and TCP headers. */
const savedSyn = (p: Buffer) => p.subarray(0, (p[0]! & 0x0f) * 4 + (p[(p[0]! & 0x0f) * 4 + 12]! >> 4) * 4);

test('a Linux SYN gets the stamp behind its own options, which stay in order; lengths and checksums are new', () => {
  const syn = tcpPacket({ options: LINUX });
  for (const stamp of [
    stampSyn(syn, { address: '93.184.216.34', port: 443 }),
    addon.synStamp(syn, '93.184.216.34', 443),
  ]) {
    assert.ok(Buffer.isBuffer(stamp));
    checkWire(stamp);
    assert.equal(stamp.length, syn.length + 12, '10 bytes of option, 2 of padding');
    // MSS, SACK permitted, timestamps, window scale: the same bytes, NOPs gone.
    assert.deepEqual(
      [...stamp.subarray(40, 57)],
      [2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 3, 3, 7].slice(0, 17),
    );
    assert.deepEqual(readStamp(savedSyn(stamp)), { address: '93.184.216.34', port: 443 });
    assert.deepEqual(addon.synReadStamp(savedSyn(stamp)), ['93.184.216.34', 443]);
    assert.deepEqual(stamp.subarray(0, 2), syn.subarray(0, 2), 'version, IHL, TOS unchanged');
    assert.equal(stamp.readUInt32BE(24), 1000, 'sequence number unchanged');
  }
});

test("a SYN with data (Fast Open) keeps its payload; a customer's own stamp is replaced, never passed on", () => {
  const forged = [253, 10, 0x50, 0x50, 127, 0, 0, 1, 0, 22];
  const syn = tcpPacket({ options: [2, 4, 5, 0xb4, ...forged], payload: [...Buffer.from('GET / HTTP/1.1\r\n\r\n')] });
  const s = stampSyn(syn, { address: '203.0.113.10', port: 80 });
  assert.ok(Buffer.isBuffer(s));
  checkWire(s);
  assert.equal(s.subarray(s.length - 18).toString(), 'GET / HTTP/1.1\r\n\r\n');
  assert.deepEqual(readStamp(savedSyn(s)), { address: '203.0.113.10', port: 80 });
  assert.equal(s.indexOf(Buffer.from([127, 0, 0, 1])), -1, 'the forged destination is gone');
  // Unstamping (a SYN from anywhere but an OpenVPN customer): the stamp goes, the rest stays.
  const u = unstampSyn(syn);
  assert.ok(Buffer.isBuffer(u));
  checkWire(u);
  assert.equal(readStamp(savedSyn(u)), null);
  assert.deepEqual(addon.synUnstamp(syn), u);
  assert.equal(unstampSyn(tcpPacket({ options: LINUX })), 0, 'nothing to remove: left as it is');
  assert.equal(addon.synUnstamp(tcpPacket({ options: LINUX })), 0);
});

test('no room: a Fast Open cookie goes first; a SYN that is all options is refused; malformed options are refused', () => {
  // 20 (Linux) + 10 (cookie) + 10 (stamp) = 40: fits with the cookie.
  const fits = stampSyn(tcpPacket({ options: [...LINUX, ...TFO_COOKIE] }), { address: '1.2.3.4', port: 5 });
  assert.ok(Buffer.isBuffer(fits));
  assert.ok(fits.includes(Buffer.from(TFO_COOKIE)));
  // 19 (Linux without its NOP) + 18 (a long cookie) + 10 > 40: the cookie goes.
  const long = [34, 18, ...Array.from({ length: 16 }, (_, i) => i + 1)];
  const dropped = stampSyn(tcpPacket({ options: [...LINUX, ...long] }), { address: '1.2.3.4', port: 5 });
  assert.ok(Buffer.isBuffer(dropped));
  assert.ok(!dropped.includes(Buffer.from(long)), 'cookie dropped');
  assert.deepEqual(readStamp(savedSyn(dropped)), { address: '1.2.3.4', port: 5 });
  // 36 bytes of other options: no room even without a cookie.
  const full = tcpPacket({ options: [...Array.from({ length: 4 }, () => [30, 9, 0, 0, 0, 0, 0, 0, 0]).flat()] });
  assert.equal(stampSyn(full, { address: '1.2.3.4', port: 5 }), STAMP_NO_ROOM);
  assert.equal(addon.synStamp(full, '1.2.3.4', 5), STAMP_NO_ROOM);
  const bad = tcpPacket({ options: [2, 4, 5, 0xb4, 8, 12, 0, 0] }); // a length past the end
  assert.equal(stampSyn(bad, { address: '1.2.3.4', port: 5 }), STAMP_MALFORMED);
  assert.equal(addon.synStamp(bad, '1.2.3.4', 5), STAMP_MALFORMED);
  for (const flags of [SYN | ACK, ACK, 0]) {
    assert.equal(stampSyn(tcpPacket({ flags, options: LINUX }), { address: '1.2.3.4', port: 5 }), STAMP_NOT_SYN);
    assert.equal(addon.synStamp(tcpPacket({ flags, options: LINUX }), '1.2.3.4', 5), STAMP_NOT_SYN);
  }
  assert.throws(() => addon.synStamp(fits, 'not an address', 5), TypeError);
  assert.throws(() => addon.synStamp(fits, '1.2.3.4', 65536), TypeError);
});

test('IP options are carried over; a stamp with a wrong length is not read (and is removed)', () => {
  const s = stampSyn(tcpPacket({ options: LINUX, ipOptions: [1, 1, 1, 0] }), { address: '8.8.4.4', port: 853 });
  assert.ok(Buffer.isBuffer(s));
  checkWire(s);
  assert.deepEqual([...s.subarray(20, 24)], [1, 1, 1, 0]);
  assert.deepEqual(readStamp(savedSyn(s)), { address: '8.8.4.4', port: 853 });
  const odd = tcpPacket({ options: [253, 8, 0x50, 0x50, 1, 2, 3, 4] });
  assert.equal(readStamp(savedSyn(odd)), null);
  assert.equal(addon.synReadStamp(savedSyn(odd)), null);
  assert.ok(Buffer.isBuffer(unstampSyn(odd)));
});

test('fuzz: the addon and the reference answer the same for random SYNs and random bytes, and never throw', () => {
  const option = fc.oneof(
    fc.constant([1]),
    fc.constant([2, 4, 5, 0x3c]),
    fc.constant([4, 2]),
    fc.constant([3, 3, 7]),
    fc.constant([8, 10, 1, 2, 3, 4, 5, 6, 7, 8]),
    fc.constant(TFO_COOKIE),
    fc.constant([254, 6, 0xf9, 0x89, 1, 2]),
    fc.constant([253, 10, 0x50, 0x50, 9, 9, 9, 9, 0, 80]),
    fc.constant([30, 9, 0, 0, 0, 0, 0, 0, 0]),
    fc.uint8Array({ minLength: 1, maxLength: 12 }).map((b) => [...b]),
  );
  const packet = fc.record({
    flags: fc.oneof(
      { arbitrary: fc.constant(SYN), weight: 4 },
      fc.constant(SYN | ACK),
      fc.integer({ min: 0, max: 255 }),
    ),
    options: fc.array(option, { maxLength: 10 }).map((os) => os.flat().slice(0, 40)),
    payload: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 64 }),
    ipOptions: fc.constantFrom<number[]>([], [1, 1, 1, 0]),
  });
  const outcomes = new Map<string, number>();
  const mutate = fc.tuple(
    packet,
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
    fc.nat(80),
  );
  const addr = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((a) => a.join('.'));
  fc.assert(
    fc.property(mutate, addr, fc.integer({ min: 0, max: 65535 }), ([spec, flips, cut], address, port) => {
      let p = tcpPacket(spec);
      for (const [at, v] of flips) p[at % p.length] = v;
      if (cut % 3 === 0) p = p.subarray(0, Math.max(0, p.length - (cut % 24)));
      const ts = stampSyn(p, { address, port });
      outcomes.set(
        Buffer.isBuffer(ts) ? 'stamped' : String(ts),
        (outcomes.get(Buffer.isBuffer(ts) ? 'stamped' : String(ts)) ?? 0) + 1,
      );
      const c = addon.synStamp(p, address, port);
      assert.deepEqual(c, ts);
      if (Buffer.isBuffer(ts)) {
        assert.equal(ts.readUInt16BE(2), ts.length);
        assert.deepEqual(readStamp(savedSyn(ts)), { address, port });
      }
      assert.deepEqual(addon.synUnstamp(p), unstampSyn(p));
      const r = readStamp(p);
      assert.deepEqual(addon.synReadStamp(p), r ? [r.address, r.port] : null);
    }),
    { numRuns: 3000 },
  );
  // Each outcome is exercised, not only refusals.
  for (const k of ['stamped', String(STAMP_NOT_SYN), String(STAMP_MALFORMED), String(STAMP_NO_ROOM)])
    assert.ok((outcomes.get(k) ?? 0) > 2, `outcome ${k}: ${JSON.stringify([...outcomes])}`);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), (b) => {
      assert.deepEqual(addon.synStamp(b, '1.2.3.4', 5), stampSyn(b, { address: '1.2.3.4', port: 5 }));
      assert.deepEqual(addon.synUnstamp(b), unstampSyn(b));
      const r = readStamp(b);
      assert.deepEqual(addon.synReadStamp(b), r ? [r.address, r.port] : null);
    }),
    { numRuns: 2000 },
  );
});
