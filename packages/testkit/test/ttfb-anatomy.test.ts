// The anatomy phase's arithmetic (bench/ttfb-anatomy.ts): tcpdump lines in, per-hop medians out.
// Synthetic captures of sequential GETs with known delays at every hop; the phase must find them.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { anatomy, parseTcpdump } from '../bench/ttfb-anatomy.js';

const CUST = '192.0.2.1';
const RELAY = '198.51.100.1';
const CARRIER = '198.18.1.2';
const DEV = '100.64.1.2';
const VPN = '192.168.255.2';
const TARGET = '203.0.113.10';

const ts = (t: number) => (1_800_000_000 + t / 1e6).toFixed(6);
const tcp = (t: number, src: string, dst: string, flags: string, seq: string, ack: number | null, len: number) =>
  `${ts(t)} IP ${src} > ${dst}: Flags [${flags}], seq ${seq}${ack === null ? '' : `, ack ${ack}`}, win 64, options [nop,nop,TS val 1 ecr 2], length ${len}`;
const pureAck = (t: number, src: string, dst: string, ack: number) =>
  `${ts(t)} IP ${src} > ${dst}: Flags [.], ack ${ack}, win 64, options [nop,nop,TS val 1 ecr 2], length 0`;
const udp = (t: number, src: string, dst: string, len: number) => `${ts(t)} IP ${src} > ${dst}: UDP, length ${len}`;

/**
 * One GET per 10 ms, with these delays (µs): tunnel down = relay 20 + links 10 + agent-side 30 (60),
 * up = 25 + 10 + 35 (70); agent request -> dial 150; SYN-ACK -> request 40; target 200; answer -> ppd0 90.
 */
function captures(requests: number): { relay: string[]; pp0: string[]; ppd0: string[]; dev: string[] } {
  const c = { relay: [] as string[], pp0: [] as string[], ppd0: [] as string[], dev: [] as string[] };
  const down = (t: number, line: (t: number) => string, tcpLen: number) => {
    c.pp0.push(line(t));
    c.relay.push(udp(t + 20, `${RELAY}.1194`, `${CARRIER}.51825`, tcpLen + 60));
    c.dev.push(udp(t + 30, `${RELAY}.1194`, `${DEV}.51825`, tcpLen + 60));
    c.ppd0.push(line(t + 60));
    return t + 60;
  };
  const up = (t: number, line: (t: number) => string, tcpLen: number) => {
    c.ppd0.push(line(t));
    c.dev.push(udp(t + 25, `${DEV}.51825`, `${RELAY}.1194`, tcpLen + 60));
    c.relay.push(udp(t + 35, `${CARRIER}.51825`, `${RELAY}.1194`, tcpLen + 60));
    c.pp0.push(line(t + 70));
    return t + 70;
  };
  for (let k = 0; k < requests; k++) {
    const cp = `${CUST}.${40000 + k}`;
    const dp = `${VPN}.40000`;
    const tp = `${DEV}.${50000 + k}`;
    let t = k * 10_000;
    c.relay.push(tcp(t, cp, `${RELAY}.40000`, 'S', '1000', null, 0));
    t = down(t + 5, (x) => tcp(x, cp, dp, 'S', '1000', null, 0), 0);
    t = up(t + 10, (x) => tcp(x, dp, cp, 'S.', '5000', 1001, 0), 0);
    // the customer's ACK and request, back to back
    down(t + 30, (x) => pureAck(x, cp, dp, 5001), 0);
    t = down(t + 35, (x) => tcp(x, cp, dp, 'P.', '1001:1160', 5001, 159), 159);
    // the agent dials
    t += 150;
    c.dev.push(tcp(t, tp, `${TARGET}.80`, 'S', '9000', null, 0));
    t += 20;
    c.dev.push(tcp(t, `${TARGET}.80`, tp, 'S.', '7000', 9001, 0));
    t += 40;
    c.dev.push(tcp(t, tp, `${TARGET}.80`, 'P.', '9001:9067', 7001, 66));
    t += 200;
    c.dev.push(tcp(t, `${TARGET}.80`, tp, 'P.', '7001:8162', 9067, 1161));
    t += 90;
    up(t, (x) => tcp(x, dp, cp, 'FP.', '5001:6162', 1160, 1161), 1161);
  }
  for (const k of Object.keys(c) as (keyof typeof c)[]) c[k].sort();
  return c;
}

it('finds each hop of sequential GETs in four captures', () => {
  const c = captures(9);
  const x = anatomy(
    {
      relay: parseTcpdump(c.relay.join('\n'), 'relay'),
      pp0: parseTcpdump(c.pp0.join('\n'), 'pp0'),
      ppd0: parseTcpdump(c.ppd0.join('\n'), 'ppd0'),
      dev: parseTcpdump(c.dev.join('\n'), 'dev'),
    },
    { cust: CUST, target: TARGET, relayIp: RELAY, vpnIp: VPN },
  );
  assert.deepEqual(x.down, { sender: 20, links: 10, receiver: 30, total: 60, n: 27 });
  assert.deepEqual(x.up, { sender: 25, links: 10, receiver: 35, total: 70, n: 18 });
  assert.deepEqual(x.agent, { requestToDial: 150, connectedToWrite: 40, answerToCustomer: 90, target: 200, n: 9 });
  // one step: the request on ppd0 -> the answer on ppd0 (150 + 20 + 40 + 200 + 90)
  assert.deepEqual(x.steps, { agent: [500], customer: [], n: 9 });
});

it('splits an exchange into turns (a SOCKS5-like handshake), and keeps the usual number of steps', () => {
  const ppd0: string[] = [];
  for (let k = 0; k < 5; k++) {
    const cp = `${CUST}.${41000 + k}`;
    const dp = `${VPN}.40001`;
    const t = k * 10_000;
    ppd0.push(tcp(t, cp, dp, 'S', '1', null, 0));
    // a connection cut short by the capture's end has fewer turns; it must not skew the medians
    const turns = k === 4 ? [0, 50] : [0, 50, 250, 290, 450, 600];
    for (const [j, dt] of turns.entries()) {
      const fromCustomer = j % 2 === 0;
      ppd0.push(
        tcp(t + 100 + dt, fromCustomer ? cp : dp, fromCustomer ? dp : cp, 'P.', `${j * 10 + 1}:${j * 10 + 4}`, 1, 3),
      );
      // a second segment of the same turn does not start a new one
      if (j === 5) ppd0.push(tcp(t + 110 + dt, dp, cp, 'P.', '99:199', 1, 100));
    }
  }
  ppd0.sort();
  const x = anatomy(
    { relay: [], pp0: [], ppd0: parseTcpdump(ppd0.join('\n'), 'ppd0'), dev: [] },
    { cust: CUST, target: TARGET, relayIp: RELAY, vpnIp: VPN },
  );
  assert.deepEqual(x.steps, { agent: [50, 40, 150], customer: [200, 160], n: 4 });
  assert.equal(x.agent.n, 0);
});

it("follows the customer's turns on the relay's uplink (a front answering some of them)", () => {
  const relay: string[] = [];
  for (let k = 0; k < 4; k++) {
    const cp = `${CUST}.${42000 + k}`;
    const rp = `${RELAY}.40001`;
    const t = k * 10_000;
    relay.push(tcp(t, cp, rp, 'S', '1', null, 0));
    relay.push(tcp(t + 10, rp, cp, 'S.', '1', 2, 0));
    relay.push(pureAck(t + 30, cp, rp, 2));
    // greeting 40 after the SYN, answered in 20; credentials 70 later, answered in 25; the request 60
    // later, answered in 300 (the device's); the GET 90 later, its answer 400 after it
    const turns = [40, 60, 130, 155, 215, 515, 605, 1005];
    for (const [j, at] of turns.entries()) {
      const fromCustomer = j % 2 === 0;
      relay.push(
        tcp(t + at, fromCustomer ? cp : rp, fromCustomer ? rp : cp, 'P.', `${j * 10 + 2}:${j * 10 + 5}`, 2, 3),
      );
    }
    // the sealed UDP on the same interface is not the customer's
    relay.push(udp(t + 300, `${RELAY}.1194`, `${CARRIER}.51825`, 120));
  }
  relay.sort();
  const x = anatomy(
    { relay: parseTcpdump(relay.join('\n'), 'relay'), pp0: [], ppd0: [], dev: [] },
    { cust: CUST, target: TARGET, relayIp: RELAY, vpnIp: VPN },
  );
  assert.deepEqual(x.front, { handshake: 40, agent: [20, 25, 300, 400], customer: [70, 60, 90], n: 4 });
});

it('reads tcpdump lines of every shape it meets and skips the rest', () => {
  const p = parseTcpdump(
    [
      '1796304316.961954 IP 192.0.2.1.37412 > 192.168.255.2.40000: Flags [S], seq 2331071262, win 64240, options [mss 1340,sackOK,TS val 2098802415 ecr 0,nop,wscale 10], length 0',
      '1796304316.962286 IP 192.0.2.1.37412 > 198.51.100.1.40000: Flags [P.], seq 1:160, ack 1, win 63, options [nop,nop,TS val 2098802416 ecr 3183291630], length 159: HTTP: GET http://echo.test/ HTTP/1.1',
      '1796304316.962160 IP 198.51.100.1.40000 > 192.0.2.1.37396: Flags [.], ack 161, win 64, options [nop,nop,TS val 3162877126 ecr 3107581216], length 0',
      '1796304316.961992 IP 198.51.100.1.1194 > 198.18.1.2.51825: UDP, length 84',
      '1796304316.961993 ARP, Request who-has 198.51.100.254 tell 198.51.100.1, length 28',
      '1796304316.961994 IP6 fe80::1 > ff02::2: ICMP6, router solicitation, length 16',
      'reading from file x.pcap, link-type EN10MB (Ethernet), snapshot length 128',
    ].join('\n'),
    'relay',
  );
  assert.equal(p.length, 4);
  assert.deepEqual(
    p.map((x) => [x.flags, x.len, x.udp, x.key]),
    [
      ['S', 0, false, '192.0.2.1.37412>192.168.255.2.40000 S 2331071262 '],
      ['P.', 159, false, '192.0.2.1.37412>198.51.100.1.40000 P. 1:160 1'],
      ['.', 0, false, '198.51.100.1.40000>192.0.2.1.37396 .  161'],
      ['', 84, true, ''],
    ],
  );
  assert.equal(p[0]!.t, 1796304316961954);
});
