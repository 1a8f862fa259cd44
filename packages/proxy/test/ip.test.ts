// ipFamily (src/ip.ts) must answer exactly what net.isIP does, for addresses, names and garbage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import fc from 'fast-check';
import { ipFamily } from '../src/ip.js';

test('ipFamily: the same answer as net.isIP for IPv4, IPv6 (with zones), names and any string', () => {
  const cases = [
    '1.2.3.4',
    '::1',
    '::ffff:1.2.3.4',
    'fe80::1%eth0',
    'echo.test',
    '1.2.3',
    '1.2.3.4.5',
    '',
    ':',
    '[::1]',
    '256.1.1.1',
  ];
  for (const c of cases) assert.equal(ipFamily(c), net.isIP(c), c);
  fc.assert(
    fc.property(
      fc.oneof(
        fc.ipV4(),
        fc.ipV6(),
        fc.ipV4Extended(),
        fc.domain(),
        fc.string(),
        fc.string({ unit: fc.constantFrom(...'0123456789abcdef:.%') }),
      ),
      (s) => ipFamily(s) === net.isIP(s),
    ),
    { numRuns: 5000 },
  );
});
