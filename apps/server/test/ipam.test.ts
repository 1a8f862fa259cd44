// The IPv4 helpers of services/ipam.ts: address parsing and allow-list membership (OpenVPN logins).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipInCidrs, parseIpv4 } from '../src/services/ipam.js';

test('parseIpv4: dotted quads (and their IPv4-mapped IPv6 form) only', () => {
  assert.equal(parseIpv4('0.0.0.0'), 0);
  assert.equal(parseIpv4('255.255.255.255'), 0xffffffff);
  assert.equal(parseIpv4('203.0.113.7'), ((203 << 24) >>> 0) + 113 * 256 + 7);
  assert.equal(parseIpv4('::ffff:203.0.113.7'), parseIpv4('203.0.113.7'));
  assert.equal(parseIpv4('::FFFF:10.0.0.1'), parseIpv4('10.0.0.1'));
  for (const bad of [
    '',
    '1.2.3',
    '1.2.3.4.5',
    '256.1.1.1',
    '1.2.3.-1',
    'a.b.c.d',
    '2001:db8::1',
    '::1',
    '1.2.3.4/32',
    ' 1.2.3.4x',
    '1.2.3.4:80',
  ])
    assert.equal(parseIpv4(bad), null, bad);
});

test('ipInCidrs: prefix boundaries, /0 and /32, host bits ignored, bare addresses, junk never matches', () => {
  assert.ok(ipInCidrs('203.0.113.0', ['203.0.113.0/24']));
  assert.ok(ipInCidrs('203.0.113.255', ['203.0.113.0/24']));
  assert.ok(!ipInCidrs('203.0.114.0', ['203.0.113.0/24']));
  assert.ok(!ipInCidrs('203.0.112.255', ['203.0.113.0/24']));
  assert.ok(ipInCidrs('198.51.100.7', ['198.51.100.7/32']));
  assert.ok(!ipInCidrs('198.51.100.8', ['198.51.100.7/32']));
  assert.ok(ipInCidrs('198.51.100.7', ['198.51.100.7']), 'a bare address is a /32');
  assert.ok(ipInCidrs('8.8.8.8', ['0.0.0.0/0']));
  assert.ok(ipInCidrs('10.200.1.1', ['10.0.0.1/8']), 'host bits of the CIDR are ignored');
  assert.ok(ipInCidrs('172.16.5.4', ['192.0.2.0/24', '172.16.0.0/12']), 'any of several');
  assert.ok(ipInCidrs('::ffff:172.16.5.4', ['172.16.0.0/12']));
  assert.ok(!ipInCidrs('172.32.0.0', ['172.16.0.0/12']));
  assert.ok(!ipInCidrs('1.2.3.4', []), 'an empty list contains nothing');
  for (const bad of ['2001:db8::1', 'x', '', '1.2.3.4.5']) assert.ok(!ipInCidrs(bad, ['0.0.0.0/0']), bad);
  for (const junk of [
    '1.2.3.0/33',
    '1.2.3.0/x',
    'x/8',
    '1.2.3/8',
    '1.2.3.0/',
    '/8',
    '::ffff:1.2.3.0/24',
    '1.2.3.0/24/8',
  ])
    assert.ok(!ipInCidrs('1.2.3.4', [junk]), junk);
});
