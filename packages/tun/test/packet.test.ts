import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildIPv4Udp, internetChecksum, parseIPv4Udp } from '../src/index.js';

test('internetChecksum matches a known IPv4 header (RFC 1071 / Wikipedia example)', () => {
  const hdr = Buffer.from('450000730000400040110000c0a80001c0a800c7', 'hex');
  assert.equal(internetChecksum(hdr), 0xb861);
  hdr.writeUInt16BE(0xb861, 10);
  assert.equal(internetChecksum(hdr), 0);
});

test('buildIPv4Udp -> parseIPv4Udp round-trips with valid checksums', () => {
  const ip = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((a) => a.join('.'));
  fc.assert(
    fc.property(
      ip,
      ip,
      fc.integer({ min: 1, max: 65535 }),
      fc.integer({ min: 1, max: 65535 }),
      fc.uint8Array({ maxLength: 1500 }),
      (src, dst, sp, dp, payload) => {
        const p = buildIPv4Udp({ src, dst, srcPort: sp, dstPort: dp, payload });
        assert.equal(p.length, 28 + payload.length);
        const u = parseIPv4Udp(p);
        assert.ok(u);
        assert.equal(u.src, src);
        assert.equal(u.dst, dst);
        assert.equal(u.srcPort, sp);
        assert.equal(u.dstPort, dp);
        assert.deepEqual(new Uint8Array(u.payload), payload);
        assert.ok(u.ipChecksumOk);
        assert.ok(u.udpChecksumOk);
      },
    ),
    { numRuns: 300 },
  );
});

test('parseIPv4Udp: a flipped payload bit fails the UDP checksum; non-UDP is null', () => {
  const p = buildIPv4Udp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 1, dstPort: 2, payload: Buffer.from('hello') });
  p[30]! ^= 1;
  assert.equal(parseIPv4Udp(p)?.udpChecksumOk, false);
  assert.equal(parseIPv4Udp(Buffer.from([0x60, 0, 0, 0])), null);
  assert.equal(parseIPv4Udp(p.subarray(0, 10)), null);
  const tcp = Buffer.from(p);
  tcp[9] = 6;
  assert.equal(parseIPv4Udp(tcp), null);
});

test('buildIPv4Udp rejects non-IPv4 addresses', () => {
  assert.throws(
    () => buildIPv4Udp({ src: '::1', dst: '10.0.0.2', srcPort: 1, dstPort: 2, payload: Buffer.alloc(0) }),
    (e: any) => e.code === 'PP_ERR_TUN_INVALID_CONFIG',
  );
});
