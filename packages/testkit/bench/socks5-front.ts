// The `socks5front` phase of bench:dataplane (issue 13, SOCKS5's time to first byte; run only when
// BENCH_PHASES names it, with the relay's SOCKS5 front on, which is the default): SOCKS5 + GET through one
// connection's port, sequential, a new connection each, alternately through the relay's SOCKS5 front
// (apps/server tunnel/socks5-front.ts: greeting and credentials answered on the relay, the device socket
// opened from the customer's address with greeting, credentials and request in its SYN) and through the DNAT (the device
// answers every message), the port taken out of the table's `socks5_front` set for those rounds, and
// CONNECT + GET through an HTTP port as the reference. Prints the added times to first byte (over the
// direct path) per round and their medians, and checks from the relay's conntrack that each round's
// connections took the path it names.
// With POCKETPROXY_HTTP_FRONT=true (the relay's HTTP ports through the same front) it also alternates
// CONNECT + GET and an absolute-form GET through the front and through the DNAT (the HTTP port taken out of
// the set for those).
// BENCH_SOCKS5_FRONT_DELAY_MS=D: a carrier's round trip too, D ms each way between the device and the
// relay (udp-delay.c in the device's carrier NAT, its tunnel datagrams redirected there; this kernel has
// no sch_netem), with fewer requests per round: what the front saves on real links.
// BENCH_SOCKS5_FRONT_TARGET_DELAY_MS=T: a far target too, T ms one way on the lab servers' packets to the
// carriers (link-delay.ts targetDelay): the device's connect and each answer take T longer, as a target
// across the internet does for a phone.
// The early reply (POCKETPROXY_SOCKS5_EARLY_REPLY, on by default) against the device's reply awaited: a
// second SOCKS5 connection on the same device with max_connections set (the relay answers early only for
// connections without a cap or data limit), as mode `waiting`. A capped connection is also served by the
// agent's main thread only (no lanes: its count must be exact), ~0.3 ms more in the lab whether or not the
// relay answers early; so in the lab compare runs with POCKETPROXY_SOCKS5_EARLY_REPLY=false and true, and
// use `waiting` for delayed runs, where the early reply saves milliseconds. HTTP CONNECT's early reply
// (POCKETPROXY_HTTP_EARLY_REPLY, HTTP ports through the front) likewise: `hfconnect` against `hfwaiting`, a
// capped HTTP connection on the same device.
import { carrierDelay, targetDelay, type Lab } from '../src/index.js';
import { buildNewconnLoad, endpointOf, median, runNewconnLoad, type Endpoint } from './newconn.js';

const DELAY_MS = Math.max(0, Number(process.env.BENCH_SOCKS5_FRONT_DELAY_MS ?? 0));
const TARGET_DELAY_MS = Math.max(0, Number(process.env.BENCH_SOCKS5_FRONT_TARGET_DELAY_MS ?? 0));
const ROUNDS = DELAY_MS + TARGET_DELAY_MS > 0 ? 3 : 6;
const COUNT = DELAY_MS + TARGET_DELAY_MS > 0 ? 30 : 300;
/** The relay's SOCKS5 front port (POCKETPROXY_SOCKS5_FRONT_PORT's default, which the lab keeps). */
const FRONT_PORT = 12346;

const LABEL = {
  front: "SOCKS5 + GET through the relay's front",
  waiting: 'the same on a capped connection (no early reply; on the device, no lanes either)',
  dnat: 'through the DNAT',
  connect: 'CONNECT + GET (DNAT), the reference',
  hfconnect: 'CONNECT + GET through the front',
  hfwaiting: 'the same on a capped connection (no early reply)',
  hfget: 'GET through the front',
  get: 'GET (DNAT)',
} as const;

type Mode = keyof typeof LABEL;
/** Each mode's port (the SOCKS5 one or the HTTP one), whether it goes through the front, and the load's mode. */
const PATHS: Record<Mode, { http: boolean; front: boolean; load: 'socks5' | 'connect' | 'absolute' }> = {
  front: { http: false, front: true, load: 'socks5' },
  waiting: { http: false, front: true, load: 'socks5' },
  dnat: { http: false, front: false, load: 'socks5' },
  connect: { http: true, front: false, load: 'connect' },
  hfconnect: { http: true, front: true, load: 'connect' },
  hfwaiting: { http: true, front: true, load: 'connect' },
  hfget: { http: true, front: true, load: 'absolute' },
  get: { http: true, front: false, load: 'absolute' },
};

export async function socks5FrontPhase(o: {
  lab: Lab;
  /** A SOCKS5 connection's URL (socks5://user:pass@relay:port). */
  socksUrl: string;
  /** Another SOCKS5 connection of the same device, with max_connections set (no early reply). */
  cappedUrl: string;
  /** An HTTP connection's URL on the same device: CONNECT + GET, the reference. */
  proxyUrl: string;
  /** Another HTTP connection of the same device, with max_connections set (no early reply). */
  cappedProxyUrl: string;
  work: string;
  record: (what: string, value: string, note?: string) => void;
  /** The tunnel's GET /status `socks5_front` counters. */
  frontStats: () => Promise<{
    credentials_answered: number;
    credentials_deferred: number;
    early_replies?: number;
    early_failed?: number;
  } | null>;
}): Promise<void> {
  const { lab, work, record } = o;
  const e = endpointOf(o.socksUrl);
  const capped = endpointOf(o.cappedUrl);
  const http = endpointOf(o.proxyUrl);
  const cappedHttp = endpointOf(o.cappedProxyUrl);
  const load = await buildNewconnLoad(lab, work);
  const listed = await lab.exec('relay', 'nft', ['list', 'set', 'ip', 'pocketproxy', 'socks5_front']);
  if (!new RegExp(`\\b${e.port}\\b`).test(listed.stdout))
    throw new Error(
      `socks5front: port ${e.port} is not in the relay's socks5_front set (is POCKETPROXY_SOCKS5_FRONT off?)`,
    );
  const HTTPX = ['1', 'true', 'yes'].includes(process.env.POCKETPROXY_HTTP_FRONT ?? '');
  // Which ports are in the front's set now; a DNAT round takes its port out.
  const inSet = new Map([
    [e.port, true],
    [http.port, HTTPX],
    [cappedHttp.port, HTTPX],
  ]);
  const setFront = async (port: number, on: boolean) => {
    if (inSet.get(port) === on) return;
    await lab.exec(
      'relay',
      'nft',
      [on ? 'add' : 'delete', 'element', 'ip', 'pocketproxy', 'socks5_front', `{ ${port} }`],
      {
        check: true,
      },
    );
    inSet.set(port, on);
  };
  /** The relay's conntrack entries of a port's TCP: [through the front (answered from its port), DNAT'ed]. */
  const tracked = async (ep: Endpoint): Promise<[number, number]> => {
    const out = (await lab.exec('relay', 'conntrack', ['-L', '-p', 'tcp', '--orig-port-dst', String(ep.port)])).stdout;
    // The customer's own connections (to the relay's address); the front's to the device are its others.
    const lines = out.split('\n').filter((l) => l.includes(`dst=${ep.ip} `) && l.includes(`dport=${ep.port}`));
    const front = lines.filter((l) => l.includes(`sport=${FRONT_PORT}`)).length;
    return [front, lines.length - front];
  };
  const forget = (ep: Endpoint) =>
    lab.exec('relay', 'conntrack', ['-D', '-p', 'tcp', '--orig-port-dst', String(ep.port)]);
  let delay: { stop(): Promise<void> } | undefined;
  let far: { stop(): Promise<void> } | undefined;
  try {
    if (TARGET_DELAY_MS > 0) far = await targetDelay(lab, work, TARGET_DELAY_MS);
    if (DELAY_MS > 0) {
      delay = await carrierDelay(lab, work, DELAY_MS);
      // Through the delayed tunnel once the relay has taken the device's new source port.
      const until = Date.now() + 40_000;
      for (;;) {
        const r = await runNewconnLoad(lab, load, 'connect', http, 1, 5000, 1).catch(() => undefined);
        if (r && r.requests === 1 && r.errors === 0) break;
        if (Date.now() > until) throw new Error('socks5front: the tunnel did not come back through the delay');
        await new Promise((res) => setTimeout(res, 500));
      }
    }
    const target = { ip: lab.inet.dnsRecords['echo.test']!, port: lab.inet.httpPort, user: '-', pass: '-' };
    // The direct path's p50, measured again before each round: one block measured once read 0.38 ms where
    // the peers phase's adjacent blocks read 0.09-0.12 ms (docs/benchmarks.md, 2026-12-04 15:13).
    const directs: number[] = [];
    const modes: Mode[] = HTTPX
      ? ['front', 'waiting', 'dnat', 'connect', 'hfconnect', 'hfwaiting', 'hfget', 'get']
      : ['front', 'waiting', 'dnat', 'connect'];
    const figures: Record<Mode, number[]> = {
      front: [],
      waiting: [],
      dnat: [],
      connect: [],
      hfconnect: [],
      hfwaiting: [],
      hfget: [],
      get: [],
    };
    const errors: Record<Mode, number> = {
      front: 0,
      waiting: 0,
      dnat: 0,
      connect: 0,
      hfconnect: 0,
      hfwaiting: 0,
      hfget: 0,
      get: 0,
    };
    // Warm agent and front, then rounds in a rotating order.
    await runNewconnLoad(lab, load, 'socks5', e, 32, 3000);
    await runNewconnLoad(lab, load, 'connect', http, 32, 2000);
    const s0 = await o.frontStats();
    let frontRequests = 0;
    for (let r = 0; r < ROUNDS; r++) {
      const direct = (await runNewconnLoad(lab, load, 'direct', target, 1, 30_000, COUNT)).ttfb_p50_ms;
      directs.push(direct);
      for (let k = 0; k < modes.length; k++) {
        const mode = modes[(k + r) % modes.length]!;
        const path = PATHS[mode];
        const ep = path.http ? (mode === 'hfwaiting' ? cappedHttp : http) : mode === 'waiting' ? capped : e;
        await setFront(ep.port, path.front);
        await forget(ep);
        const got = await runNewconnLoad(lab, load, path.load, ep, 1, 30_000, COUNT);
        errors[mode] += got.errors;
        if (mode === 'front' || mode === 'waiting') frontRequests += got.requests + got.errors;
        // A few may fail after a switch of path: a customer port's last connection through the other path may
        // still be in TIME_WAIT on the device under the same addresses and ports, with a sequence space it
        // does not know (a lab artefact of switching one port between paths; counted in the note).
        if (got.errors > Math.max(COUNT / 100, 3) || got.requests + got.errors < COUNT)
          throw new Error(`socks5front ${mode}: ${JSON.stringify(got)}`);
        const [viaFront, viaDnat] = await tracked(ep);
        const [mine, other] = path.front ? [viaFront, viaDnat] : [viaDnat, viaFront];
        // (A few entries of the round may be gone already: a reused source port replaces its entry.)
        if (mine < COUNT * 0.8 || other > 0)
          throw new Error(`socks5front ${mode}: ${mine} connections took this path, ${other} the other (of ${COUNT})`);
        figures[mode].push(got.ttfb_p50_ms - direct);
      }
    }
    const s1 = await o.frontStats();
    const early = (s1?.early_replies ?? 0) - (s0?.early_replies ?? 0);
    // The relay's settings as this run asked for them (testkit system.ts passes the switches): an A/B whose
    // switch did not reach the relay compares a setting with itself (the first one did, 2026-12-08).
    const off = (k: string) => ['0', 'false', 'no'].includes(process.env[k] ?? '');
    const expected =
      (off('POCKETPROXY_SOCKS5_EARLY_REPLY') ? 0 : ROUNDS * COUNT) +
      (HTTPX && !off('POCKETPROXY_HTTP_EARLY_REPLY') ? ROUNDS * COUNT : 0);
    if (expected === 0 ? early !== 0 : early < expected * 0.9)
      throw new Error(`socks5front: ${early} early replies, ${expected} expected from this run's settings`);
    const earlyFailed = (s1?.early_failed ?? 0) - (s0?.early_failed ?? 0);
    const answered = (s1?.credentials_answered ?? 0) - (s0?.credentials_answered ?? 0);
    const deferred = (s1?.credentials_deferred ?? 0) - (s0?.credentials_deferred ?? 0);
    const fmt = (v: number[]) => v.map((x) => x.toFixed(2)).join(' · ');
    const where = [
      DELAY_MS > 0 ? ` with ${DELAY_MS} ms each way between device and relay` : '',
      TARGET_DELAY_MS > 0 ? ` with a target ${TARGET_DELAY_MS} ms away (one way)` : '',
    ].join('');
    record(
      `socks5front${where}: added TTFB p50, ${modes.map((m) => LABEL[m]).join(' · ')}`,
      `${modes.map((m) => median(figures[m]).toFixed(2)).join(' · ')} ms`,
      `medians of ${ROUNDS} rounds (rotating order) of ${COUNT} sequential requests (newconn-load), each: ${modes.map((m) => fmt(figures[m])).join(' | ')} ms; direct ${fmt(directs)} ms (before each round); failed requests ${modes.map((m) => errors[m]).join(' · ')}; each round's connections all took its path (relay conntrack); credentials answered by the relay ${answered}, left to the device ${deferred}, of ${frontRequests} through the front; CONNECTs answered early ${early} (${earlyFailed} of them refused by the device or unanswered)`,
    );
  } finally {
    await setFront(e.port, true).catch(() => undefined);
    await setFront(http.port, HTTPX).catch(() => undefined);
    await setFront(cappedHttp.port, HTTPX).catch(() => undefined);
    await delay?.stop();
    await far?.stop();
  }
}
