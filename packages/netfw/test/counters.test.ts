import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCounters } from '../src/index.js';

// Captured from `nft -j list counters table ip pocketproxy` (nftables 1.0.6).
const SAMPLE = JSON.stringify({
  nftables: [
    { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
    { counter: { family: 'ip', name: 'port_30000', table: 'pocketproxy', handle: 5, packets: 12, bytes: 3456 } },
    { counter: { family: 'ip', name: 'port_30002', table: 'pocketproxy', handle: 7, packets: 0, bytes: 0 } },
    { counter: { family: 'ip', name: 'port_1', table: 'other', handle: 2, packets: 9, bytes: 9 } },
    { counter: { family: 'ip', name: 'something', table: 'pocketproxy', handle: 8, packets: 9, bytes: 9 } },
  ],
});

test('parses our port counters and ignores everything else', () => {
  assert.deepEqual(
    parseCounters(SAMPLE, 'pocketproxy'),
    new Map([
      [30000, { packets: 12, bytes: 3456 }],
      [30002, { packets: 0, bytes: 0 }],
    ]),
  );
});

test('garbage is a PPError, not a crash', () => {
  assert.throws(() => parseCounters('nope', 'pocketproxy'), { code: 'PP_ERR_NETFW_COUNTERS_UNPARSABLE' });
  assert.throws(() => parseCounters('{}', 'pocketproxy'), { code: 'PP_ERR_NETFW_COUNTERS_UNPARSABLE' });
  const bad = JSON.stringify({ nftables: [{ counter: { name: 'port_1', table: 'pocketproxy', packets: 'x' } }] });
  assert.throws(() => parseCounters(bad, 'pocketproxy'), { code: 'PP_ERR_NETFW_COUNTERS_UNPARSABLE' });
});
