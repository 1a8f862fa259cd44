import { test } from 'node:test';
import assert from 'node:assert/strict';
import { counterName, parseCounters } from '../src/index.js';

// Shaped like `nft -j list counters table ip pocketproxy` (nftables 1.0.6).
const SAMPLE = JSON.stringify({
  nftables: [
    { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
    { counter: { family: 'ip', name: 'port_30000_in', table: 'pocketproxy', handle: 5, packets: 12, bytes: 3456 } },
    { counter: { family: 'ip', name: 'port_30000_out', table: 'pocketproxy', handle: 6, packets: 30, bytes: 40960 } },
    { counter: { family: 'ip', name: 'port_30002_in', table: 'pocketproxy', handle: 7, packets: 0, bytes: 0 } },
    { counter: { family: 'ip', name: 'port_30002_out', table: 'pocketproxy', handle: 8, packets: 0, bytes: 0 } },
    { counter: { family: 'ip', name: 'port_1_in', table: 'other', handle: 2, packets: 9, bytes: 9 } },
    { counter: { family: 'ip', name: 'something', table: 'pocketproxy', handle: 9, packets: 9, bytes: 9 } },
  ],
});

test('parses both directions of our port counters and ignores everything else', () => {
  assert.deepEqual(
    parseCounters(SAMPLE, 'pocketproxy'),
    new Map([
      [30000, { in: { packets: 12, bytes: 3456 }, out: { packets: 30, bytes: 40960 } }],
      [30002, { in: { packets: 0, bytes: 0 }, out: { packets: 0, bytes: 0 } }],
    ]),
  );
});

test('counter names: port_<n>_in and port_<n>_out', () => {
  assert.equal(counterName(30000, 'in'), 'port_30000_in');
  assert.equal(counterName(30000, 'out'), 'port_30000_out');
});

test('order does not matter; a lone direction reads the other as zero', () => {
  const doc = JSON.stringify({
    nftables: [
      { counter: { name: 'port_40000_out', table: 'pocketproxy', packets: 3, bytes: 300 } },
      { counter: { name: 'port_40000_in', table: 'pocketproxy', packets: 1, bytes: 60 } },
      { counter: { name: 'port_40001_out', table: 'pocketproxy', packets: 2, bytes: 200 } },
    ],
  });
  assert.deepEqual(
    parseCounters(doc, 'pocketproxy'),
    new Map([
      [40000, { in: { packets: 1, bytes: 60 }, out: { packets: 3, bytes: 300 } }],
      [40001, { in: { packets: 0, bytes: 0 }, out: { packets: 2, bytes: 200 } }],
    ]),
  );
});

test('unknown names are ignored: the old undirected port_<n>, other suffixes, bad port numbers', () => {
  const doc = JSON.stringify({
    nftables: [
      { counter: { name: 'port_30000', table: 'pocketproxy', packets: 5, bytes: 500 } },
      { counter: { name: 'port_30000_both', table: 'pocketproxy', packets: 5, bytes: 500 } },
      { counter: { name: 'port_30000_in_x', table: 'pocketproxy', packets: 5, bytes: 500 } },
      { counter: { name: 'port_030000_in', table: 'pocketproxy', packets: 5, bytes: 500 } },
      { counter: { name: 'port__in', table: 'pocketproxy', packets: 5, bytes: 500 } },
      { counter: { name: 'x_port_30000_in', table: 'pocketproxy', packets: 5, bytes: 500 } },
      { counter: { name: 'port_30000_in', table: 'pocketproxy2', packets: 5, bytes: 500 } },
      { set: { name: 'port_30000_in', table: 'pocketproxy' } },
      // Unknown names are skipped before their values are looked at.
      { counter: { name: 'port_30000_sideways', table: 'pocketproxy', packets: 'x' } },
    ],
  });
  assert.deepEqual(parseCounters(doc, 'pocketproxy'), new Map());
  assert.deepEqual(parseCounters('{"nftables":[]}', 'pocketproxy'), new Map());
});

test('garbage is a PPError, not a crash', () => {
  const unparsable = { code: 'PP_ERR_NETFW_COUNTERS_UNPARSABLE' };
  assert.throws(() => parseCounters('nope', 'pocketproxy'), unparsable);
  assert.throws(() => parseCounters('{}', 'pocketproxy'), unparsable);
  assert.throws(() => parseCounters('null', 'pocketproxy'), unparsable);
  assert.throws(() => parseCounters('{"nftables":{}}', 'pocketproxy'), unparsable);
  for (const dir of ['in', 'out']) {
    const bad = JSON.stringify({
      nftables: [{ counter: { name: `port_1_${dir}`, table: 'pocketproxy', packets: 'x' } }],
    });
    assert.throws(() => parseCounters(bad, 'pocketproxy'), unparsable);
    const noBytes = JSON.stringify({
      nftables: [{ counter: { name: `port_1_${dir}`, table: 'pocketproxy', packets: 1 } }],
    });
    assert.throws(() => parseCounters(noBytes, 'pocketproxy'), unparsable);
  }
  // null items in the array are skipped, not dereferenced.
  assert.deepEqual(parseCounters('{"nftables":[null, 1, {"counter": null}]}', 'pocketproxy'), new Map());
});
