// The relay's SOCKS5 front (on by default, POCKETPROXY_SOCKS5_FRONT=0 turns it off; docs/design.md
// §2.3): the TCP of every enabled SOCKS5 port is REDIRECTed here instead of DNAT'ed to the device, and the
// relay answers the greeting itself. Through the DNAT a SOCKS5 customer's first byte takes five round
// trips over the cellular link (TCP handshake, greeting, credentials, request, the request's first
// byte); here the greeting is answered on the relay, and the device socket, from the customer's own
// address and port (IP_TRANSPARENT, so the device sees exactly what it sees through the DNAT: its
// allow-list, caps, credentials and UDP association are unchanged), carries the greeting and the
// credentials in its SYN (TCP Fast Open, the agent's listeners take it): three round trips, as CONNECT.
// When the relay can check the credentials itself (the port's username and verifier, from the API's
// forwarding), it answers them too and the request rides in the SYN as well: two round trips.
// Before the device has given a customer address its cookie, the SYN goes plain with the first write.
//
//   customer -> relay:PORT --redirect--> front: `05 02` answered here
//   credentials, checked here: `01 00` answered here; request ->
//     SYN(greeting + credentials + request) from customer:cport --> device: `05 02 01 00` (dropped here)
//   the device's reply --> customer; then a spliced pair (answer, the rest)
//   (credentials not known here, or not matching: SYN(greeting + credentials) --> device: `05 02`
//    dropped, its verdict --> customer)
//
// The device still decides everything (credentials, state, limits, the request): the answers given
// here are the ones it would give, the method choice (username/password whenever it is offered,
// packages/proxy socks5/front.ts) and a success for credentials that match the verifier the device
// checks too; a device that refuses credentials the relay accepted (changed in between) gets the
// customer a `05 02` reply ("not allowed") and a close. A greeting without username/password, or
// anything that is not a greeting, goes to the device as it came and the device answers.
//
// POCKETPROXY_SOCKS5_EARLY_REPLY (on by default): a CONNECT behind credentials answered here is answered
// success here too, for the ports whose connection has no cap the device could refuse it for (the API's
// early_reply: no max_connections, no data limit), and the pair forms at once: the customer's first bytes
// follow the request into the device socket instead of waiting for the device's reply to come back
// through the customer, so the device's connect to the target overlaps the reply's way back (about the
// shorter of the relay-device and device-target round trips less before the first byte, plus the
// customer's own; docs/benchmarks.md "SOCKS5's early reply"). The device still decides the request: its answers are read and dropped on the relay, and
// anything but a success — a destination its policy refuses, a refused or unreachable target, credentials
// changed meanwhile — resets the customer instead of answering with a reply code (as tunnels that answer
// SOCKS5 locally do). The success's BND.ADDR:PORT is 0.0.0.0:0.
//
// POCKETPROXY_HTTP_FRONT: HTTP ports through the same listener; `auto` (the default) those of devices whose
// link is far (tunnel/firewall-sync.ts noteRtt), `true` all. Nothing is answered here for them: the
// customer's first bytes (its request head, or the start of it) ride in the device socket's SYN and the
// pair forms as soon as they are written, so what the device says, or its close, is the customer's as
// through the DNAT; one cellular round trip less per HTTP connection.
//
// POCKETPROXY_HTTP_EARLY_REPLY (on by default): the same early reply for an HTTP port through the front,
// for a whole CONNECT head whose Proxy-Authorization matches the connection's verifier (the API's
// forwarding gives HTTP connections' too) on a connection the API marks early_reply: the relay answers
// `200 Connection Established` itself, the head goes to the device and the pair forms at once, so the
// customer's TLS ClientHello follows the CONNECT instead of waiting for the device's 200 to come back
// (httpEarlyHello; the listener remembers the Proxy-Authorization value it accepted, under the port's
// credentials tag, and answers the next such CONNECT without JS). The device's answer head is read and
// dropped on the relay (a 200; anything else, a 403 for a refused destination or a 502 for an unreachable
// one, resets the customer). A CONNECT without credentials, or with ones the relay does not accept, goes
// as before: a browser still gets the device's 407 challenge.
//
// Sockets and states are the addon's transparent listener (packages/tun native/splice_relay.cc); this
// module answers its questions and keeps the port map in step with the firewall (a port that goes, or
// moves, has its flows cut). The relay's byte counters count these flows in the input and output chains
// (packages/netfw). Costs, measured in docs/benchmarks.md ("the relay's SOCKS5 front"): relay CPU per
// connection, and these flows end when the tunnel process restarts (DNAT'ed ones survive it).
import { frontServes, type Firewall, type FirewallState } from '@pocketproxy/netfw';
import {
  findHeadEnd,
  parseAuthority,
  parseGreeting,
  parseProxyAuthorization,
  parseRequestHead,
  parseUserPass,
} from '@pocketproxy/proxy';
import { SpliceEngine, execRunner, type CommandRunner, type TransparentHooks } from '@pocketproxy/tun';
import type { Logger } from 'pino';
import { checkVerifier } from '../security/crypto.js';
import { LogLimiter } from './limits.js';

/** The mark of the device's answers to the front's sockets, and the routing table and rule that take them. */
export const SOCKS5_FRONT_MARK = 0x7050;
export const SOCKS5_FRONT_TABLE = 7050;

/** RFC 1929's method (username/password), and the device's choice of it. */
const METHOD_USERPASS = 0x02;
const CHOOSE_USERPASS = Buffer.from([0x05, METHOD_USERPASS]);
/** RFC 1929's success. */
const AUTH_OK = Buffer.from([0x01, 0x00]);
const CHOOSE_AND_OK = Buffer.concat([CHOOSE_USERPASS, AUTH_OK]);
/** RFC 1928's reply 02, "connection not allowed by ruleset": the device refused what the relay had accepted. */
export const NOT_ALLOWED = Buffer.from([0x05, 0x02, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);

/** Whether a username and password open the device port's connection (the relay's own check; true only when certain). */
export type FrontVerify = (user: string, pass: string) => boolean;

/**
 * What goes to the device for a customer's first bytes (`replied`: what was answered from here so far):
 *  - `[reply]` (answer the customer, read on): `05 02` for a complete greeting offering username/password
 *    and nothing behind it; `01 00` (with the `05 02` first if the customer did not wait for it) for
 *    credentials behind it that `verify` accepts, nothing behind them yet;
 *  - undefined: read more (an unfinished greeting, or, with `verify`, unfinished credentials);
 *  - null (refused): the customer stopped (FIN or deadline) short of credentials, or of a request after
 *    credentials answered here;
 *  - otherwise the bytes as they came (the device answers whatever they are, from where the relay
 *    stopped answering).
 */
export function frontHello(
  peeked: Buffer,
  final: boolean,
  replied: Buffer = Buffer.alloc(0),
  verify?: FrontVerify,
): Buffer | [Buffer] | undefined | null {
  let g: ReturnType<typeof parseGreeting>;
  try {
    g = parseGreeting(peeked);
  } catch {
    return peeked; // not a greeting: the device's parser answers it
  }
  // Final (the customer's FIN or the handshake deadline) with an unfinished greeting, or with a greeting
  // whose 05 02 went out and no credentials behind it: closed, as the device would close it.
  if (g === null) return final ? null : undefined;
  if (!g.methods.includes(METHOD_USERPASS)) return peeked;
  const rest = peeked.subarray(g.length);
  if (rest.length === 0) return final ? null : [CHOOSE_USERPASS];
  if (verify === undefined) return peeked;
  let up: ReturnType<typeof parseUserPass>;
  try {
    up = parseUserPass(rest);
  } catch {
    return peeked; // not credentials: the device answers them
  }
  if (up === null) return final ? null : undefined;
  if (rest.length > up.length) return peeked; // a request (or more) behind them: the device has it all
  if (replied.length >= CHOOSE_AND_OK.length) return final ? null : undefined; // 01 00 went: the request is to come
  if (final) return null;
  if (!verify(up.user, up.pass)) return peeked; // not known here, or wrong: the device decides
  return [replied.length === 0 ? CHOOSE_AND_OK : AUTH_OK];
}

/**
 * The device's answer as the transparent listener asks it (`replied`: what the relay answered this
 * customer): the device's first answers must be those (they are dropped: the customer has them);
 * anything else refuses, with `05 02` ("not allowed") when the device refused credentials the relay
 * had accepted. Nothing answered here: nothing is dropped and the pair forms at once.
 */
export function frontAnswered(bytes: Buffer, replied: Buffer): number | [Buffer] {
  if (replied.length === 0) return 0;
  const n = Math.min(bytes.length, replied.length);
  if (bytes.compare(replied, 0, n, 0, n) !== 0) {
    // The mismatch is the fourth byte: the device's 01 xx verdict, not the relay's 01 00.
    const refusedAfterOk = replied.equals(CHOOSE_AND_OK) && n === 4 && bytes.compare(replied, 0, 3, 0, 3) === 0;
    return refusedAfterOk ? [NOT_ALLOWED] : -2;
  }
  return bytes.length >= replied.length ? replied.length : -1;
}

/** What an HTTP CONNECT answered on the relay is told (httpEarlyHello): the device's own words. */
export const HTTP_ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n');
const CONNECT_PREFIX = Buffer.from('CONNECT ');

/**
 * An HTTP port's first bytes when the relay may answer its CONNECTs (POCKETPROXY_HTTP_EARLY_REPLY and the
 * connection's early_reply): `[HTTP_ESTABLISHED, peeked]` (answer 200 here, the head and whatever came
 * behind it to the device, the pair at once) for a whole, valid CONNECT head to a host:port whose Basic
 * Proxy-Authorization `verify` accepts; undefined (not `final`) while what is there can still become a
 * CONNECT head; null for nothing at all by the end; otherwise the bytes as they came (the device answers
 * them: another method, no or other credentials and its 407, a head its parser refuses and its 400).
 */
export function httpEarlyHello(
  peeked: Buffer,
  final: boolean,
  verify: FrontVerify,
): Buffer | [Buffer, Buffer] | undefined | null {
  if (peeked.length === 0) return final ? null : undefined;
  const k = Math.min(peeked.length, CONNECT_PREFIX.length);
  if (peeked.compare(CONNECT_PREFIX, 0, k, 0, k) !== 0) return peeked;
  let end: number;
  try {
    end = findHeadEnd(peeked);
  } catch {
    return peeked; // longer than a head may be: the device's 431
  }
  if (end < 0) return final ? peeked : undefined;
  try {
    const head = parseRequestHead(peeked.subarray(0, end));
    if (head.method !== 'CONNECT') return peeked;
    parseAuthority(head.target);
    const auth = parseProxyAuthorization(head.headers);
    if (typeof auth !== 'object' || !verify(auth.user, auth.pass)) return peeked;
  } catch {
    return peeked; // not a head the device's parser takes: its answer is the customer's
  }
  return final ? peeked : [HTTP_ESTABLISHED, peeked];
}

/** Most username/password/verifier triples remembered as checked (the memo is dropped when it fills). */
const VERIFIED_MEMO_MAX = 4096;

export interface Socks5FrontDeps {
  readonly host: string;
  readonly port: number;
  readonly logger: Logger;
  /** How long a customer has for the greeting and the credentials (default 10 s, the device's own deadline). */
  readonly handshakeMs?: number;
  /** Connections of one customer address in their handshake at once (default 64). */
  readonly maxWaitingPerAddress?: number;
  /** TCP Fast Open to the devices (default true; the agents' listeners take it). */
  readonly fastOpen?: boolean;
  /** ip rule / ip route (tests record them). */
  readonly runner?: CommandRunner;
  /**
   * The username and verifier of the connection of this protocol a device serves on a port (DeviceTable),
   * so the relay answers credentials it can check; without it, or undefined for a port, the device answers them.
   */
  readonly credentials?: (
    deviceIp: string,
    devicePort: number,
    protocol: 'socks5' | 'http',
  ) => { username: string; verifier: string; earlyReply?: boolean } | undefined;
  /** SOCKS5 CONNECTs answered success here for ports whose credentials say earlyReply (default false; see the head). */
  readonly earlyReply?: boolean;
  /** HTTP CONNECTs so answered, on HTTP ports through the front (default false; see the head). */
  readonly httpEarlyReply?: boolean;
}

/** The front's counters (the tunnel's GET /status, `socks5_front`). */
export interface Socks5FrontStats {
  /** Customers accepted; closed at once (no device for the port, the caps); failed (the device refused or was not reached). */
  readonly accepted: number;
  readonly refused: number;
  readonly refused_per_address: number;
  readonly failed: number;
  /** Open now (in their handshake or joined), and joined pairs since the start. */
  readonly active: number;
  readonly spliced: number;
  /** Credentials answered 01 00 on the relay, and left to the device (not known here, or not matching). */
  readonly credentials_answered: number;
  readonly credentials_deferred: number;
  /** Handshake steps taken in the listener without a call into JS (answers given, requests passed on). */
  readonly steps_without_js: number;
  /** CONNECTs (SOCKS5 and HTTP) answered success here (early replies); of those, the device refused or did not answer (reset). */
  readonly early_replies: number;
  readonly early_failed: number;
}

export interface Socks5Front {
  readonly port: number;
  /** A firewall whose applies keep the front's port map in step (ports added before, removed and cut after). */
  wrap<F extends Pick<Firewall, 'apply'>>(firewall: F): F;
  /** Which device listener serves a public port now, or undefined. */
  deviceOf(port: number): DevicePort | undefined;
  stats(): Socks5FrontStats;
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface DevicePort {
  readonly vpnIp: string;
  readonly port: number;
  readonly http?: boolean;
}

/**
 * The front's ports of a state: public port -> the device's listener, for every enabled port whose flows it
 * may hold (netfw frontServes: SOCKS5 ones; HTTP ones too with `http`, with 'auto' all of them, whether their
 * new connections come here or go to the DNAT now, so a port changing path does not cut its flows here).
 */
function frontPorts(state: FirewallState): Map<number, DevicePort> {
  const m = new Map<number, DevicePort>();
  for (const p of state.ports)
    if (frontServes(state.socks5Front, p))
      m.set(p.port, { vpnIp: p.vpnIp, port: p.targetPort, ...(p.proto === 'tcp' ? { http: true } : {}) });
  return m;
}

const same = (a: DevicePort | undefined, b: DevicePort | undefined) => a?.vpnIp === b?.vpnIp && a?.port === b?.port;

export function createSocks5Front(d: Socks5FrontDeps): Socks5Front {
  const log = d.logger.child({ subsys: 'socks5-front' });
  const runner = d.runner ?? execRunner;
  const limit = new LogLimiter(10_000);
  const engine = new SpliceEngine();
  let ports = new Map<number, DevicePort>();
  let applies = 0;
  let port = d.port;
  // A customer opening thousands of connections pays the HMAC once; a changed verifier is a new key.
  let verified = new Set<string>();
  let answered = 0;
  let deferred = 0;
  const verifierFor = (
    deviceIp: string,
    devicePort: number,
    c = d.credentials?.(deviceIp, devicePort, 'socks5'),
  ): FrontVerify | undefined => {
    if (c === undefined) return undefined;
    return (user, pass) => {
      const key = `${c.verifier}\u0000${pass}`;
      const ok = user === c.username && (verified.has(key) || checkVerifier(pass, c.verifier));
      if (!ok) {
        deferred++;
        return false;
      }
      if (!verified.has(key)) {
        if (verified.size >= VERIFIED_MEMO_MAX) verified = new Set();
        verified.add(key);
      }
      answered++;
      return true;
    };
  };

  // The map as the listener routes it without JS (its `socks5Front`): every port, with its credentials' tag
  // (a changed username or verifier makes the credentials remembered there stop matching).
  const setPorts = (m: Map<number, DevicePort>) => {
    ports = m;
    engine.setFrontRoutes(
      [...m].map(([p, dev]) => {
        const c = d.credentials?.(dev.vpnIp, dev.port, dev.http ? 'http' : 'socks5');
        return {
          port: p,
          deviceIp: dev.vpnIp,
          devicePort: dev.port,
          socks: dev.http !== true,
          credentialsTag: c ? `${c.username}\u0000${c.verifier}` : '',
          earlyReply: c?.earlyReply === true && (dev.http ? d.httpEarlyReply === true : true),
        };
      }),
    );
  };

  const hooks: TransparentHooks = {
    route: (clientIp, _fd, dstIp, dstPort) => {
      const dev = ports.get(dstPort);
      if (dev === undefined) {
        if (limit.allow(`noport:${dstPort}`, Date.now()) !== undefined)
          log.info({ clientIp, port: dstPort }, 'SOCKS5 front: no device for this port; refused');
        return undefined;
      }
      return [dev.vpnIp, dev.port, dev.http !== true, dstIp, dstPort];
    },
    // Remapped or gone since accept: the device socket already open is not this port's any more.
    hello: (_clientIp, deviceIp, devicePort, _dstIp, dstPort, peeked, final, replied) => {
      const dev = ports.get(dstPort);
      if (!same(dev, { vpnIp: deviceIp, port: devicePort })) return null;
      // HTTP: the first bytes go as they came (with deferAccept there are some at the first ask), or a
      // CONNECT is answered here (httpEarlyReply).
      if (dev!.http) {
        const c = d.httpEarlyReply ? d.credentials?.(deviceIp, devicePort, 'http') : undefined;
        if (c?.earlyReply === true) return httpEarlyHello(peeked, final, verifierFor(deviceIp, devicePort, c)!);
        return peeked.length > 0 ? peeked : final ? null : undefined;
      }
      return frontHello(peeked, final, replied, verifierFor(deviceIp, devicePort));
    },
    answered: (_socks5, bytes, replied) => frontAnswered(bytes, replied),
    event: (kind, clientIp, _dstIp, dstPort, detail) => {
      if (limit.allow(`${kind}:${clientIp}`, Date.now()) !== undefined)
        log.info({ clientIp, port: dstPort, kind, detail }, 'SOCKS5 front: device refused or unreachable');
    },
  };

  const rule = ['rule', 'add', 'fwmark', String(SOCKS5_FRONT_MARK), 'lookup', String(SOCKS5_FRONT_TABLE)];
  const route = ['route', 'replace', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', String(SOCKS5_FRONT_TABLE)];
  async function unroute(): Promise<void> {
    // Until none is left (a crashed run may have left one).
    for (let i = 0; i < 8; i++) {
      try {
        await runner.run('ip', [
          'rule',
          'del',
          'fwmark',
          String(SOCKS5_FRONT_MARK),
          'lookup',
          String(SOCKS5_FRONT_TABLE),
        ]);
      } catch {
        break;
      }
    }
    await Promise.resolve(runner.run('ip', ['route', 'flush', 'table', String(SOCKS5_FRONT_TABLE)])).catch(() => {});
  }

  return {
    get port() {
      return port;
    },
    wrap(firewall) {
      const apply = firewall.apply.bind(firewall);
      const wrapped = Object.create(firewall) as typeof firewall;
      wrapped.apply = (async (state: FirewallState) => {
        const mine = ++applies;
        const next = frontPorts(state);
        // New ports answer as soon as the redirect is in; ports that go (or move) stay until it is out.
        const union = new Map(ports);
        for (const [p, dev] of next) if (!union.has(p)) union.set(p, dev);
        setPorts(union);
        const r = await apply(state);
        // The firewall coalesces applies (the kernel may already hold a later state): the latest call
        // settles the map, so a port that left and came back in between keeps its flows.
        if (mine !== applies) return r;
        const before = ports;
        setPorts(next);
        for (const [p, dev] of before) {
          if (same(next.get(p), dev)) continue;
          const n = engine.cut(dev.vpnIp, dev.port);
          if (n > 0)
            log.info({ port: p, deviceVpnIp: dev.vpnIp, connections: n }, 'SOCKS5 front: port gone; its flows cut');
        }
        return r;
      }) as typeof firewall.apply;
      return wrapped;
    },
    deviceOf: (p) => ports.get(p),
    stats: () => {
      const s = engine.listenStats();
      // Greetings and credentials answered, and requests passed, without JS (the listener's socks5Front).
      return {
        accepted: s.accepted,
        refused: s.refused,
        refused_per_address: s.refusedPerAddress,
        failed: s.failed,
        active: s.active,
        spliced: s.spliced,
        credentials_answered: answered + s.credentialsAnsweredHere,
        credentials_deferred: deferred,
        steps_without_js: s.answeredHere + s.passedHere,
        early_replies: s.earlyReplies,
        early_failed: s.earlyFailed,
      };
    },
    async start() {
      await unroute();
      await runner.run('ip', rule);
      await runner.run('ip', route);
      port = engine.listen(
        d.host,
        d.port,
        {
          peekMs: d.handshakeMs ?? 10_000,
          connectMs: d.handshakeMs ?? 10_000,
          kernelDst: true,
          transparentSource: true,
          fastOpen: d.fastOpen ?? true,
          // SOCKS5 customers speak first: one wake-up for the accept and the greeting.
          deferAccept: true,
          // Not a greeting answered here: the device answers the customer itself.
          passUnreplied: true,
          // Routes and the handshake's happy paths in the listener: no call into JS per step (setPorts).
          socks5Front: true,
          earlyReply: d.earlyReply === true,
          httpEarlyReply: d.httpEarlyReply === true,
          // As the device's handshake guard caps one address's unauthenticated connections (64 by default).
          maxWaitingPerAddress: d.maxWaitingPerAddress ?? 64,
        },
        hooks,
      );
      log.info({ port }, 'SOCKS5 front listening');
    },
    async close() {
      engine.close();
      await unroute();
    },
  };
}
