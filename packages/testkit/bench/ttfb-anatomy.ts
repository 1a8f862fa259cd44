// The `anatomy` phase of bench:dataplane (issue 13, time to first byte): where one proxied request's
// time goes, hop by hop, read from packet captures instead of inferred from totals.
//
// newconn-load sends N sequential requests (a new connection each, like the `ttfb` phase) through our
// proxy, as absolute-form GETs, CONNECT + GET and SOCKS5 + GET, while tcpdump records four points: the
// relay's uplink (customer side and the sealed UDP), the relay's pp0, the device's ppd0 and its
// cellular uplink (sealed UDP and the device's own connection to the target). All captures use the
// kernel's one clock, so timestamps compare across namespaces. Printed, as medians over requests:
//   - one tunnel crossing each way, split into the sender (inner packet on its TUN -> sealed UDP out),
//     the links (UDP out -> UDP in at the other end) and the receiver (UDP in -> inner packet on its TUN);
//   - the agent: the customer's first bytes -> its SYN to the target; the target's SYN-ACK -> its first
//     write (GET: the request to the target; CONNECT: the 200 to the customer); the target's answer ->
//     the answer on ppd0; plus the target's own time (request -> answer);
//   - the exchange on ppd0 turn by turn: the agent's answer to each of the customer's turns, and the
//     customer's next turn after it (one round trip through the tunnel each: what SOCKS5's greeting and
//     credentials cost, by protocol); and the same on the relay's uplink, where the relay's SOCKS5 front
//     answers the greeting and the credentials itself (BENCH_ANATOMY_KEEP=DIR keeps the captures);
//   - the time to first byte newconn-load measured during the captures (tcpdump costs some: compare
//     runs with each other, not with the `ttfb` phase).
// Capturing costs CPU on these two cores, so the figures are a map of the path, not its speed.
import { basename, join } from 'node:path';
import { copyFileSync, existsSync } from 'node:fs';
import type { Lab, LabProcess } from '../src/index.js';
import { buildNewconnLoad, endpointOf, median, runNewconnLoad } from './newconn.js';

interface Pkt {
  /** Capture time in µs (exact: seconds and microseconds are read apart). */
  t: number;
  at: string;
  src: string;
  dst: string;
  flags: string;
  len: number;
  udp: boolean;
  /** src > dst, flags, seq/ack text: the same inner packet seen at two points has the same key. */
  key: string;
}

const LINE =
  /^(\d+\.\d+) IP (\S+) > (\S+?): (?:Flags \[([^\]]*)\](?:, seq ([^,]+))?(?:, ack (\d+))?.*?length (\d+)|UDP, length (\d+))/;

/** Parses `tcpdump -n -tt -r` output into packets (IPv4 TCP and UDP; other lines are skipped). */
export function parseTcpdump(text: string, at: string): Pkt[] {
  const out: Pkt[] = [];
  for (const l of text.split('\n')) {
    const m = LINE.exec(l);
    if (!m) continue;
    const udp = m[8] !== undefined;
    const flags = m[4] ?? '';
    const [sec, frac = ''] = m[1]!.split('.');
    out.push({
      t: Number(sec) * 1e6 + Number(frac.padEnd(6, '0').slice(0, 6)),
      at,
      src: m[2]!,
      dst: m[3]!,
      flags,
      len: Number(udp ? m[8] : m[7]),
      udp,
      key: udp ? '' : `${m[2]}>${m[3]} ${flags} ${m[5] ?? ''} ${m[6] ?? ''}`,
    });
  }
  return out;
}

const host = (addrPort: string) => addrPort.slice(0, addrPort.lastIndexOf('.'));

export interface Crossing {
  sender: number;
  links: number;
  receiver: number;
  total: number;
  n: number;
}

export interface AgentTimes {
  /** The customer's first bytes on ppd0 -> the agent's SYN to the target on the uplink. */
  requestToDial: number;
  /** The target's SYN-ACK -> the agent's first data out (to the target or to the customer). */
  connectedToWrite: number;
  /** The target's first answer bytes -> the answer's first bytes on ppd0. */
  answerToCustomer: number;
  /** The target's own time: the first bytes to it -> its first answer bytes. */
  target: number;
  n: number;
}

/**
 * The exchange on `ppd0`, step by step (connections with the most common number of steps): each step is
 * the customer's bytes, then the agent's answer. `agent[k]`: customer's bytes k -> the agent's answer
 * (for the last step, the target's answer relayed); `customer[k]`: that answer -> the customer's next
 * bytes, i.e. one round trip through the tunnel and the customer's own turn. GET: one step; CONNECT: two
 * (CONNECT, then the GET inside); SOCKS5: four (greeting, credentials, CONNECT, GET).
 */
export interface Steps {
  agent: number[];
  customer: number[];
  n: number;
}

export interface Anatomy {
  down: Crossing;
  up: Crossing;
  agent: AgentTimes;
  steps: Steps;
  /**
   * The same exchange seen on the relay's uplink (the customer's side of the relay): `agent[k]` the answer
   * to the customer's bytes k (the relay front's own, or what came back from the device), `customer[k]` the
   * customer's next turn; `handshake` the customer's SYN -> its first bytes (its own connect turn).
   */
  front: Steps & { handshake: number };
}

/** Turns of data on one connection (`win`: its packets at one point, in time order; `cust`: the customer's address:port). */
function turnsOf(win: Pkt[], cust: string): { agent: number[]; customer: number[] } {
  const turns: { fromCustomer: boolean; t: number }[] = [];
  for (const p of win) {
    if (p.len === 0 || (p.src !== cust && p.dst !== cust)) continue;
    const fromCustomer = p.src === cust;
    if (turns.length === 0 ? fromCustomer : turns[turns.length - 1]!.fromCustomer !== fromCustomer)
      turns.push({ fromCustomer, t: p.t });
  }
  const run = { agent: [] as number[], customer: [] as number[] };
  for (let j = 0; j + 1 < turns.length; j++)
    (turns[j]!.fromCustomer ? run.agent : run.customer).push(turns[j + 1]!.t - turns[j]!.t);
  return run;
}

/** Medians per step over the connections with the most common number of steps (one cut short by a capture's edge has fewer). */
function usualSteps(runs: { agent: number[]; customer: number[] }[]): Steps {
  const counts = new Map<number, number>();
  for (const r of runs) counts.set(r.agent.length, (counts.get(r.agent.length) ?? 0) + 1);
  const usual = [...counts].sort((x, y) => y[1] - x[1])[0]?.[0] ?? 0;
  const same = runs.filter((r) => r.agent.length === usual);
  return {
    agent: Array.from({ length: usual }, (_, k) => median(same.map((r) => r.agent[k]!))),
    customer: Array.from({ length: Math.max(0, usual - 1) }, (_, k) =>
      median(same.filter((r) => r.customer.length > k).map((r) => r.customer[k]!)),
    ),
    n: same.length,
  };
}

/**
 * The per-hop medians from the four captures: `relay` and `dev` are the uplinks, `pp0` and `ppd0` the
 * tunnel interfaces; `cust` is the customer's address, `target` the target's, `relayIp` the relay's
 * public address (the sealed UDP's end), `vpnIp` the device's tunnel address.
 */
export function anatomy(
  pkts: { relay: Pkt[]; pp0: Pkt[]; ppd0: Pkt[]; dev: Pkt[] },
  a: { cust: string; target: string; relayIp: string; vpnIp: string },
): Anatomy {
  const crossing = (from: Pkt[], to: Pkt[], udpOut: Pkt[], udpIn: Pkt[], toward: (p: Pkt) => boolean): Crossing => {
    const arrivals = new Map<string, number[]>();
    for (const p of to) if (!p.udp && toward(p)) (arrivals.get(p.key) ?? arrivals.set(p.key, []).get(p.key)!).push(p.t);
    const outT = udpOut.map((p) => p.t);
    const inT = udpIn.map((p) => p.t);
    const next = (ts: number[], t: number): number | undefined => {
      let lo = 0;
      let hi = ts.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (ts[mid]! < t) lo = mid + 1;
        else hi = mid;
      }
      return ts[lo];
    };
    const s: number[] = [];
    const l: number[] = [];
    const r: number[] = [];
    const tot: number[] = [];
    for (const p of from) {
      if (p.udp || !toward(p)) continue;
      const arr = arrivals.get(p.key)?.find((t) => t > p.t);
      if (arr === undefined) continue;
      const u = next(outT, p.t);
      const ui = u === undefined ? undefined : next(inT, u);
      if (u === undefined || ui === undefined || u > arr || ui > arr) continue;
      s.push(u - p.t);
      l.push(ui - u);
      r.push(arr - ui);
      tot.push(arr - p.t);
    }
    return { sender: median(s), links: median(l), receiver: median(r), total: median(tot), n: tot.length };
  };
  const toDevice = (p: Pkt) => host(p.dst) === a.vpnIp;
  const fromDevice = (p: Pkt) => host(p.src) === a.vpnIp;
  const relayUdpOut = pkts.relay.filter((p) => p.udp && host(p.src) === a.relayIp);
  const relayUdpIn = pkts.relay.filter((p) => p.udp && host(p.dst) === a.relayIp);
  const devUdpOut = pkts.dev.filter((p) => p.udp && host(p.dst) === a.relayIp);
  const devUdpIn = pkts.dev.filter((p) => p.udp && host(p.src) === a.relayIp);
  const down = crossing(pkts.pp0, pkts.ppd0, relayUdpOut, devUdpIn, toDevice);
  const up = crossing(pkts.ppd0, pkts.pp0, devUdpOut, relayUdpIn, fromDevice);

  // The agent, per customer connection (sequential requests: one at a time).
  const dev = [...pkts.ppd0, ...pkts.dev.filter((p) => !p.udp)].sort((x, y) => x.t - y.t);
  const starts = dev.filter((p) => p.at === 'ppd0' && p.flags === 'S' && host(p.src) === a.cust);
  const toTarget = (p: Pkt) => p.at === 'dev' && host(p.dst) === a.target;
  const fromTarget = (p: Pkt) => p.at === 'dev' && host(p.src) === a.target;
  const stepRuns: { agent: number[]; customer: number[] }[] = [];
  const req: number[] = [];
  const conn: number[] = [];
  const ans: number[] = [];
  const tgt: number[] = [];
  let i = 0;
  for (const [k, syn] of starts.entries()) {
    const end = starts[k + 1]?.t ?? Number.POSITIVE_INFINITY;
    while (i < dev.length && dev[i]!.t < syn.t) i++;
    const win: Pkt[] = [];
    for (let j = i; j < dev.length && dev[j]!.t < end; j++) win.push(dev[j]!);
    const first = (pred: (p: Pkt) => boolean, after = 0) => win.find((p) => p.t >= after && pred(p));
    // Data segments on ppd0 of this connection, as turns: the customer's bytes, then the agent's.
    const run = turnsOf(
      win.filter((p) => p.at === 'ppd0'),
      syn.src,
    );
    if (run.agent.length > 0) stepRuns.push(run);
    const custData = first((p) => p.at === 'ppd0' && p.src === syn.src && p.len > 0);
    const tSyn = custData && first((p) => toTarget(p) && p.flags === 'S', custData.t);
    const tSynAck = tSyn && first((p) => fromTarget(p) && p.flags === 'S.', tSyn.t);
    const write =
      tSynAck && first((p) => p.len > 0 && (toTarget(p) || (p.at === 'ppd0' && p.dst === syn.src)), tSynAck.t);
    const toT = tSynAck && first((p) => toTarget(p) && p.len > 0, tSynAck.t);
    const answer = toT && first((p) => fromTarget(p) && p.len > 0, toT.t);
    const answered = answer && first((p) => p.at === 'ppd0' && p.dst === syn.src && p.len > 0, answer.t);
    if (!custData || !tSyn || !tSynAck || !write || !toT || !answer || !answered) continue;
    req.push(tSyn.t - custData.t);
    conn.push(write.t - tSynAck.t);
    tgt.push(answer.t - toT.t);
    ans.push(answered.t - answer.t);
  }
  // The customer's side of the relay: its connections to the relay's public address, turn by turn.
  const atRelay = pkts.relay.filter((p) => !p.udp);
  const custSyns = atRelay.filter((p) => p.flags === 'S' && host(p.src) === a.cust && host(p.dst) === a.relayIp);
  const frontRuns: { agent: number[]; customer: number[] }[] = [];
  const shakes: number[] = [];
  for (const [k, syn] of custSyns.entries()) {
    // Until the customer's next connection from the same port, if it comes back to one.
    const end = custSyns.find((s, j) => j > k && s.src === syn.src)?.t ?? Number.POSITIVE_INFINITY;
    const mine = atRelay.filter((p) => p.t >= syn.t && p.t < end && (p.src === syn.src || p.dst === syn.src));
    const firstData = mine.find((p) => p.src === syn.src && p.len > 0);
    if (firstData) shakes.push(firstData.t - syn.t);
    const run = turnsOf(mine, syn.src);
    if (run.agent.length > 0) frontRuns.push(run);
  }
  return {
    down,
    up,
    steps: usualSteps(stepRuns),
    front: { ...usualSteps(frontRuns), handshake: median(shakes) },
    agent: {
      requestToDial: median(req),
      connectedToWrite: median(conn),
      answerToCustomer: median(ans),
      target: median(tgt),
      n: req.length,
    },
  };
}

// --immediate-mode -U: each packet reaches the file as it comes. Without them libpcap hands packets over
// in blocks, and the block still open when tcpdump is stopped (a quiet TUN's last ~100 ms) was lost.
const CAPTURE = ['-Z', 'root', '-U', '--immediate-mode', '-n', '-s', '128'];

export async function anatomyPhase(o: {
  lab: Lab;
  proxyUrl: string;
  /** A SOCKS5 connection on the same device (socks5://user:pass@host:port). */
  socksUrl: string;
  vpnIp: string;
  work: string;
  record: (what: string, value: string, note?: string) => void;
  n?: number;
}): Promise<void> {
  const { lab, work, record } = o;
  if (!existsSync('/usr/bin/tcpdump') && !existsSync('/usr/sbin/tcpdump')) {
    record('anatomy', 'SKIPPED', 'tcpdump is not installed (scripts/setup.sh installs it)');
    console.error('bench: anatomy: SKIPPED — tcpdump is not installed');
    return;
  }
  const n = o.n ?? 300;
  const loadBin = await buildNewconnLoad(lab, work);
  const dev = lab.device(1);
  const target = lab.inet.dnsRecords['echo.test']!;
  const points = [
    { key: 'relay', ns: 'relay', iface: lab.relay.iface },
    { key: 'pp0', ns: 'relay', iface: 'pp0' },
    { key: 'ppd0', ns: 'dev1', iface: 'ppd0' },
    { key: 'dev', ns: 'dev1', iface: dev.iface },
  ] as const;
  const load = (mode: 'absolute' | 'connect' | 'socks5', conc: number, ms: number, count?: number) =>
    runNewconnLoad(lab, loadBin, mode, endpointOf(mode === 'socks5' ? o.socksUrl : o.proxyUrl), conc, ms, count);
  for (const mode of ['absolute', 'connect', 'socks5'] as const) {
    // A warm agent (its JavaScript compiled), as in the peers phase.
    await load(mode, 32, 2000);
    const files = points.map((p) => join(work, `anatomy-${mode}-${p.key}.pcap`));
    const caps: LabProcess[] = points.map((p, k) =>
      lab.spawn(p.ns, 'tcpdump', [...CAPTURE, '-i', p.iface, '-w', files[k]!, 'tcp or udp']),
    );
    try {
      await Promise.all(caps.map((c) => c.waitForLine(/listening on/, 10_000)));
      const res = await load(mode, 1, 30_000, n);
      await new Promise((res2) => setTimeout(res2, 300));
      await Promise.all(caps.map((c) => c.stop(3000)));
      // BENCH_ANATOMY_KEEP=DIR: the captures kept for a closer look (tcpdump -r).
      const keep = process.env.BENCH_ANATOMY_KEEP;
      if (keep) for (const f of files) copyFileSync(f, join(keep, basename(f)));
      const read = async (k: number) =>
        parseTcpdump(
          (await lab.exec('cust', 'tcpdump', ['-n', '-tt', '-r', files[k]!], { timeoutMs: 60_000 })).stdout,
          points[k]!.key,
        );
      const [relay, pp0, ppd0, devUp] = await Promise.all([0, 1, 2, 3].map(read));
      const x = anatomy(
        { relay: relay!, pp0: pp0!, ppd0: ppd0!, dev: devUp! },
        { cust: lab.cust.ip, target, relayIp: lab.relay.ip, vpnIp: o.vpnIp },
      );
      const f = (v: number) => v.toFixed(0);
      const label = mode === 'absolute' ? 'GET' : mode === 'connect' ? 'CONNECT' : 'SOCKS5';
      record(
        `anatomy ${label}: one tunnel crossing, relay -> device · device -> relay (sender · links · receiver, median µs)`,
        `${f(x.down.total)} (${f(x.down.sender)} · ${f(x.down.links)} · ${f(x.down.receiver)}) · ${f(x.up.total)} (${f(x.up.sender)} · ${f(x.up.links)} · ${f(x.up.receiver)})`,
        `${x.down.n} and ${x.up.n} inner packets`,
      );
      record(
        `anatomy ${label}: agent, the customer's first bytes -> SYN to the target · target's SYN-ACK -> first write · answer -> customer (median µs); the target itself`,
        `${f(x.agent.requestToDial)} · ${f(x.agent.connectedToWrite)} · ${f(x.agent.answerToCustomer)}; target ${f(x.agent.target)}`,
        `${x.agent.n} of ${res.requests} requests (${res.errors} errors); TTFB p50 during the captures ${res.ttfb_p50_ms.toFixed(2)} ms`,
      );
      record(
        `anatomy ${label}: on ppd0, step by step: the agent's answer to each of the customer's turns · the customer's next turn (one tunnel round trip) (median µs)`,
        `agent ${x.steps.agent.map(f).join(' · ')}; customer ${x.steps.customer.length ? x.steps.customer.map(f).join(' · ') : '—'}`,
        `${x.steps.n} connections with ${x.steps.agent.length} steps`,
      );
      record(
        `anatomy ${label}: on the relay's uplink, step by step: the customer's SYN -> its first bytes; the answer to each of its turns · its next turn (median µs)`,
        `${f(x.front.handshake)}; answer ${x.front.agent.map(f).join(' · ')}; customer ${x.front.customer.length ? x.front.customer.map(f).join(' · ') : '—'}`,
        `${x.front.n} connections with ${x.front.agent.length} steps`,
      );
    } finally {
      for (const c of caps) await c.stop(1000).catch(() => undefined);
    }
  }
}
