// Unit tests (no root): address plan, carrier pool arithmetic, DNS wire format, nft ruleset text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { devicePlan, isCarrierPoolAddress, nextCarrierAddress, nsName, defaultDnsRecords, INET } from '../src/plan.js';
import { answerQuery, parseQuery, RCODE_NXDOMAIN } from '../src/services/dns-wire.js';
import { carrierRuleset } from '../src/carrier.js';
import { wifiPlan } from '../src/plan.js';
import { wifiRuleset } from '../src/wifi.js';
import { allNamespaces, defaultRoutes, topologyNames } from '../src/topology.js';
import { isPPError } from '@pocketproxy/errors';

function query(name: string, qtype = 1, id = 0x1234): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const header = Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, ...labels, Buffer.from([0, qtype >> 8, qtype & 0xff, 0, 1])]);
}

test('device plan: private, carrier and gateway addresses per device', () => {
  const p = devicePlan(3);
  assert.equal(p.privateIp, '100.64.3.2');
  assert.equal(p.cgnLanIp, '100.64.3.1');
  assert.equal(p.carrierGateway, '198.18.3.1');
  assert.equal(p.firstCarrierIp, '198.18.3.2');
  assert.ok(p.inetIface.length <= 15);
  assert.equal(nsName('pp0a1b', 'dev3'), 'pp0a1b-dev3');
  assert.throws(
    () => devicePlan(0),
    (e: unknown) => isPPError(e) && e.code === 'PP_ERR_LAB_BAD_DEVICE',
  );
  assert.throws(
    () => devicePlan(251),
    (e: unknown) => isPPError(e) && e.code === 'PP_ERR_LAB_BAD_DEVICE',
  );
});

test('carrier pool: next address, wrap-around, foreign addresses', () => {
  assert.equal(nextCarrierAddress(1, '198.18.1.2'), '198.18.1.3');
  assert.equal(nextCarrierAddress(1, '198.18.1.254'), '198.18.1.2');
  assert.equal(nextCarrierAddress(1, '198.18.2.7'), '198.18.1.2');
  assert.ok(isCarrierPoolAddress(4, '198.18.4.200'));
  assert.ok(!isCarrierPoolAddress(4, '198.18.4.1'), 'the gateway is not in the pool');
  assert.ok(!isCarrierPoolAddress(4, '198.18.40.2'));
});

test('DNS: A record from the table, NODATA for AAAA, NXDOMAIN for unknown names', () => {
  const records = defaultDnsRecords();
  const a = answerQuery(query('Echo.Test'), records);
  assert.equal(a.readUInt16BE(0), 0x1234);
  assert.equal(a.readUInt16BE(2) & 0x8000, 0x8000, 'QR set');
  assert.equal(a.readUInt16BE(2) & 0xf, 0);
  assert.equal(a.readUInt16BE(6), 1, 'one answer');
  assert.deepEqual([...a.subarray(a.length - 4)], INET.servicesIp.split('.').map(Number));

  const aaaa = answerQuery(query('echo.test', 28), records);
  assert.equal(aaaa.readUInt16BE(2) & 0xf, 0);
  assert.equal(aaaa.readUInt16BE(6), 0);

  const nx = answerQuery(query('example.com'), records);
  assert.equal(nx.readUInt16BE(2) & 0xf, RCODE_NXDOMAIN);
  assert.equal(parseQuery(Buffer.from([1, 2, 3])), null);
  assert.equal(answerQuery(Buffer.alloc(20, 0xff), records).readUInt16BE(2) & 0xf, 1, 'FORMERR on garbage');
});

test('carrier ruleset masquerades out of wan0 and drops unsolicited inbound', () => {
  const rs = carrierRuleset();
  assert.match(rs, /oifname "wan0" masquerade/);
  assert.match(rs, /iifname "wan0" oifname "lan0" ct state new drop/);
});

test('Wi-Fi uplink: plan inside 100.64.0.0/10 (LAN) and 198.18.0.0/15 (public); default routes wlan0 metric 100, wwan0 metric 600; router masquerades only its LAN', () => {
  const w = wifiPlan(7);
  assert.equal(w.devIp, '100.65.7.2');
  assert.equal(w.lanIp, '100.65.7.1');
  assert.equal(w.publicIp, '198.19.7.2');
  assert.equal(w.publicGateway, '198.19.7.1');
  assert.ok(w.inetIface.length <= 15);
  assert.throws(
    () => wifiPlan(0),
    (e: unknown) => isPPError(e) && e.code === 'PP_ERR_LAB_BAD_DEVICE',
  );
  const t = topologyNames('pp0a1b', 3, [3, 1]);
  assert.deepEqual(t.wifi, [
    { n: 1, ns: 'pp0a1b-wifi1' },
    { n: 3, ns: 'pp0a1b-wifi3' },
  ]);
  assert.ok(allNamespaces(t).includes('pp0a1b-wifi3'));
  const r = defaultRoutes(t);
  assert.deepEqual(r.get('pp0a1b-dev1'), [
    'route replace default via 100.65.1.1 dev wlan0 metric 100',
    'route replace default via 100.64.1.1 dev wwan0 metric 600',
  ]);
  assert.deepEqual(r.get('pp0a1b-dev2'), ['route replace default via 100.64.2.1 dev wwan0'], 'no Wi-Fi: unchanged');
  assert.deepEqual(r.get('pp0a1b-wifi3'), ['route replace default via 198.19.3.1 dev wan0']);
  assert.deepEqual(topologyNames('pp0a1b', 2).wifi, []);
  const rules = wifiRuleset(1);
  assert.match(rules, /oifname "wan0" ip saddr 100\.65\.1\.0\/24 masquerade/);
  assert.match(rules, /iifname "lan0" ip saddr != 100\.65\.1\.0\/24 counter drop/);
  assert.match(rules, /iifname "wan0" oifname "lan0" ct state new drop/);
});
