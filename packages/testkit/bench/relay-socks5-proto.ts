// The `relaysocks` phase of bench:dataplane (issue 13, SOCKS5's time to first byte; an experiment, run
// only when BENCH_PHASES names it): SOCKS5 + GET through one connection's port, sequential, a new
// connection each, alternately as today (the relay DNATs the port to the device, which answers every
// message of the handshake) and through relay-socks5-proto.c in the relay's namespace (the relay answers
// the greeting, opens the device socket at accept as the customer with IP_TRANSPARENT, and sends the
// credentials behind a greeting of its own; see the C file's head). Prints both added times to first
// byte (over the direct path) per round and their medians. Everything it adds to the relay's namespace
// (an nftables table, an ip rule and a route table) is removed at the end.
// BENCH_RELAYSOCKS_DELAY_MS=D: a carrier's round trip too, D ms each way between the device and the
// relay (udp-delay.c in the device's carrier NAT, its tunnel datagrams redirected there; this kernel has
// no sch_netem), with fewer requests per round; what the relay's handshake would save on real links.
import { join } from 'node:path';
import { CGN_LAN, type Lab } from '../src/index.js';
import { buildNewconnLoad, endpointOf, runNewconnLoad } from './newconn.js';

const SRC = new URL('./relay-socks5-proto.c', import.meta.url).pathname;
const PROTO_PORT = 39_900;
/** The relay's TUN (POCKETPROXY_TUNNEL_INTERFACE's default, which the lab keeps; as ttfb-anatomy.ts). */
const RELAY_TUN = 'pp0';
const MARK = '0x70';
const TABLE = '170';
const DELAY_MS = Math.max(0, Number(process.env.BENCH_RELAYSOCKS_DELAY_MS ?? 0));
const ROUNDS = DELAY_MS > 0 ? 3 : 6;
const COUNT = DELAY_MS > 0 ? 30 : 300;
const DELAY_PORT = 39_901;
/** The relay's tunnel port (POCKETPROXY_TUNNEL_PORT's default, which the lab keeps). */
const TUNNEL_PORT = 1194;
const DELAY_SRC = new URL('./udp-delay.c', import.meta.url).pathname;

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

export async function relaySocksPhase(o: {
  lab: Lab;
  /** A SOCKS5 connection's URL (socks5://user:pass@relay:port). */
  socksUrl: string;
  /** An HTTP connection's URL on the same device: CONNECT + GET, the reference with as many round trips. */
  proxyUrl: string;
  vpnIp: string;
  work: string;
  record: (what: string, value: string, note?: string) => void;
}): Promise<void> {
  const { lab, work, record } = o;
  const e = endpointOf(o.socksUrl);
  const http = endpointOf(o.proxyUrl);
  const load = await buildNewconnLoad(lab, work);
  const bin = join(work, 'relay-socks5-proto');
  await lab.exec('relay', 'cc', ['-O2', '-pthread', '-o', bin, SRC], { check: true, timeoutMs: 60_000 });
  const nft = (script: string) => lab.exec('relay', 'nft', ['-f', '-'], { check: true, input: script });
  const proto = lab.spawn('relay', bin, [String(PROTO_PORT), o.vpnIp, String(e.port)]);
  const pass = lab.spawn('relay', bin, [String(PROTO_PORT + 1), o.vpnIp, String(e.port), 'pass']);
  let delay: { stop(): Promise<void> } | undefined;
  try {
    if (DELAY_MS > 0) delay = await carrierDelay(lab, work);
    // The device's answers to the customer's address come in on the tunnel: to the transparent socket.
    await nft(
      [
        'table ip pp_relaysocks {',
        '  chain to_socket { type filter hook prerouting priority mangle; policy accept;',
        `    iifname "${RELAY_TUN}" meta l4proto tcp socket transparent 1 meta mark set ${MARK}`,
        '  }',
        '  chain redir { type nat hook prerouting priority dstnat - 5; policy accept; }',
        '}',
      ].join('\n'),
    );
    await lab.exec('relay', 'ip', ['rule', 'add', 'fwmark', MARK, 'lookup', TABLE], { check: true });
    await lab.exec('relay', 'ip', ['route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', TABLE], { check: true });
    const redirect = async (to: number | undefined) => {
      await lab.exec('relay', 'nft', ['flush', 'chain', 'ip', 'pp_relaysocks', 'redir'], { check: true });
      if (to !== undefined)
        await nft(
          `add rule ip pp_relaysocks redir ip daddr ${lab.relay.ip} tcp dport ${e.port} counter redirect to :${to}\n`,
        );
    };
    await proto.waitForLine(/listening/, 10_000);
    await pass.waitForLine(/listening/, 10_000);
    if (delay) {
      // Through the delayed tunnel once the relay has taken the device's new source port.
      const until = Date.now() + 40_000;
      for (;;) {
        const r = await runNewconnLoad(lab, load, 'connect', http, 1, 5000, 1).catch(() => undefined);
        if (r && r.requests === 1 && r.errors === 0) break;
        if (Date.now() > until) throw new Error('relaysocks: the tunnel did not come back through the delay');
        await new Promise((res) => setTimeout(res, 500));
      }
    }
    const target = { ip: lab.inet.dnsRecords['echo.test']!, port: lab.inet.httpPort, user: '-', pass: '-' };
    const direct = await runNewconnLoad(lab, load, 'direct', target, 1, 30_000, COUNT);
    type Mode = 'dnat' | 'relay' | 'pass' | 'connect';
    const figures: Record<Mode, number[]> = { dnat: [], relay: [], pass: [], connect: [] };
    const modes: Mode[] = ['dnat', 'relay', 'pass', 'connect'];
    const errors: Record<Mode, number> = { dnat: 0, relay: 0, pass: 0, connect: 0 };
    // A warm agent and prototype, then rounds in a rotating order.
    await redirect(PROTO_PORT);
    await runNewconnLoad(lab, load, 'socks5', e, 32, 3000);
    await runNewconnLoad(lab, load, 'connect', http, 32, 2000);
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < modes.length; k++) {
        const mode = modes[(k + r) % modes.length]!;
        await redirect(mode === 'relay' ? PROTO_PORT : mode === 'pass' ? PROTO_PORT + 1 : undefined);
        const got = await runNewconnLoad(
          lab,
          load,
          mode === 'connect' ? 'connect' : 'socks5',
          mode === 'connect' ? http : e,
          1,
          30_000,
          COUNT,
        );
        errors[mode] += got.errors;
        if (got.errors > COUNT / 100 || got.requests + got.errors < COUNT)
          throw new Error(`relaysocks ${mode}: ${JSON.stringify(got)}`);
        if (mode === 'relay' || mode === 'pass') {
          // Every connection of the round went through the prototype (the rule's counter: one packet a connection).
          const listed = (
            await lab.exec('relay', 'nft', ['list', 'chain', 'ip', 'pp_relaysocks', 'redir'], { check: true })
          ).stdout;
          const n = Number(/counter packets (\d+)/.exec(listed)?.[1] ?? 0);
          if (n < COUNT) throw new Error(`relaysocks: ${n} of ${COUNT} connections reached the prototype`);
          // The device saw the customer's own address: none of its connections of this port (each waits
          // in TIME_WAIT there a while) came from another, such as the relay's.
          const tw = (await lab.exec('dev1', 'ss', ['-Htn', 'state', 'time-wait', `sport = :${e.port}`])).stdout;
          const lines = tw.split('\n').filter((l) => l.trim() !== '');
          if (lines.length < COUNT)
            throw new Error(`relaysocks: ${lines.length} connections in TIME_WAIT on the device`);
          const others = lines.filter((l) => !l.includes(` ${lab.cust.ip}:`));
          if (others.length > 0) throw new Error(`relaysocks ${mode}: the device saw another address: ${others[0]}`);
        }
        figures[mode].push(got.ttfb_p50_ms - direct.ttfb_p50_ms);
      }
    }
    const fmt = (v: number[]) => v.map((x) => x.toFixed(2)).join(' · ');
    const where = DELAY_MS > 0 ? ` with ${DELAY_MS} ms each way between device and relay` : '';
    record(
      `relaysocks${where}: added TTFB p50, SOCKS5 + GET: through to the device (DNAT) · greeting answered by the relay (prototype) · terminated by the relay, nothing answered there (prototype, pass) · CONNECT + GET (DNAT), the reference`,
      `${modes.map((m) => median(figures[m]).toFixed(2)).join(' · ')} ms`,
      `medians of ${ROUNDS} rounds (rotating order) of ${COUNT} sequential requests (newconn-load), each: ${modes.map((m) => fmt(figures[m])).join(' | ')} ms; direct ${direct.ttfb_p50_ms.toFixed(2)} ms; failed requests ${modes.map((m) => errors[m]).join(' · ')}; every prototype connection reached the device from the customer's own address`,
    );
  } finally {
    await delay?.stop();
    await proto.stop(2000).catch(() => undefined);
    await pass.stop(2000).catch(() => undefined);
    await lab.exec('relay', 'nft', ['delete', 'table', 'ip', 'pp_relaysocks']).catch(() => undefined);
    await lab.exec('relay', 'ip', ['rule', 'del', 'fwmark', MARK, 'lookup', TABLE]).catch(() => undefined);
    await lab.exec('relay', 'ip', ['route', 'flush', 'table', TABLE]).catch(() => undefined);
  }
}

/**
 * D ms each way on device 1's tunnel: udp-delay in its carrier NAT, the device's datagrams to the
 * relay's tunnel port redirected to it; the flow's conntrack entry is dropped so the next datagram takes
 * the redirect, and the relay takes the device's new source port as it would a carrier's rebinding.
 * Waits until the proxy answers again through the delayed tunnel.
 */
async function carrierDelay(lab: Lab, work: string): Promise<{ stop(): Promise<void> }> {
  const cgn = lab.device(1).cgnNs;
  const bin = join(work, 'udp-delay');
  await lab.exec(cgn, 'cc', ['-O2', '-o', bin, DELAY_SRC], { check: true, timeoutMs: 60_000 });
  const p = lab.spawn(cgn, bin, [String(DELAY_PORT), lab.relay.ip, String(TUNNEL_PORT), String(DELAY_MS)]);
  await p.waitForLine(/listening/, 10_000);
  const script = [
    'table ip pp_delay {',
    '  chain redir { type nat hook prerouting priority dstnat - 5; policy accept;',
    `    iifname "${CGN_LAN}" ip daddr ${lab.relay.ip} udp dport ${TUNNEL_PORT} redirect to :${DELAY_PORT}`,
    '  }',
    '}',
  ].join('\n');
  await lab.exec(cgn, 'nft', ['-f', '-'], { check: true, input: script });
  await lab.exec(cgn, 'conntrack', ['-D', '-p', 'udp', '--orig-port-dst', String(TUNNEL_PORT)]);
  return {
    async stop() {
      await lab.exec(cgn, 'nft', ['delete', 'table', 'ip', 'pp_delay']).catch(() => undefined);
      await lab
        .exec(cgn, 'conntrack', ['-D', '-p', 'udp', '--orig-port-dst', String(TUNNEL_PORT)])
        .catch(() => undefined);
      await p.stop(2000).catch(() => undefined);
    },
  };
}
