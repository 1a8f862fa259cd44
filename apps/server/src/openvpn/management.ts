// Customer logins through openvpn's management interface (`management-client-auth`), in the tunnel
// process: openvpn never waits for us. It used to run a hook script per login (`auth-user-pass-verify`,
// `client-connect`, `client-disconnect`: a node process each, ~0.1–0.3 s in the lab), and openvpn is one thread:
// while a script ran, every customer's packets waited (docs/benchmarks.md "OpenVPN logins").
//
//   openvpn --unix socket ${dataDir}/openvpn/management.sock (0700 dir)--> this client
//     >CLIENT:CONNECT,cid,kid + >CLIENT:ENV,username=… password=… untrusted_ip=… END
//        -> POST /api/internal/openvpn/auth (password, state, allow-list against untrusted_ip)
//        -> an address from the subnet's pool -> POST /api/internal/openvpn/connect -> the route
//        -> the transparent proxy's client map (address -> the connection's proxy on its device)
//        -> client-auth cid kid / ifconfig-push ADDRESS NETMASK / END   (or client-deny cid kid "…")
//     >CLIENT:REAUTH (each TLS renegotiation, hourly): the same checks again; a refused login is denied,
//        which disconnects it (a password change or a block reaches a connected customer that way)
//     >CLIENT:DISCONNECT,cid: its mapping and address go
//
// The address is ours (`ifconfig-push`), so the mapping exists before openvpn admits the customer:
// its first packet always finds its route. Logins are handled concurrently, each bounded by the API
// client's timeout; openvpn itself drops a login not answered within its hand-window (60 s).
// What openvpn writes here is parsed by ManagementParser (fuzzed; it skips what it cannot read and never
// ends the connection): the ENV values are the customer's own strings (openvpn keeps only printable
// characters in them); nothing of them goes back to openvpn.
import * as net from 'node:net';
import type { Logger } from 'pino';
import type { OpenvpnApi, OpenvpnRoute } from '../tunnel/api-client.js';
import { ipv4ToNumber, numberToIpv4 } from '../tunnel/ipv4.js';
import type { Carrier } from './carry.js';
import type { SubnetInfo } from './render.js';

/** One thing openvpn said. */
export type ManagementEvent =
  | {
      readonly kind: 'connect' | 'reauth';
      readonly cid: number;
      readonly kid: number;
      readonly env: Map<string, string>;
    }
  | { readonly kind: 'established' | 'disconnect'; readonly cid: number; readonly env: Map<string, string> }
  | { readonly kind: 'address'; readonly cid: number; readonly address: string }
  | { readonly kind: 'line'; readonly text: string };

const MAX_LINE = 16 * 1024;
const MAX_DECIDING = 16;
const MAX_ENV = 256;
const ID = /^\d{1,10}$/;
const ENV_NAME = /^[A-Za-z0-9_]{1,64}$/;

/**
 * openvpn's management output, line by line: CLIENT notifications with their ENV blocks, everything
 * else as `line`. It never throws: what it cannot read is skipped and counted (`skipped`), because part
 * of these lines is customers' text, and no customer may end the connection every login goes through.
 * A line longer than 16 KiB is dropped whole, an ENV name that is not a plain name or past 256 per block
 * is dropped, and a CLIENT notification whose ids are not numbers is dropped (openvpn never sends one).
 */
export class ManagementParser {
  private buf = '';
  /** Inside a line longer than MAX_LINE: dropped up to its newline. */
  private dropping = false;
  skipped = 0;
  private block: {
    kind: 'connect' | 'reauth' | 'established' | 'disconnect';
    cid: number;
    kid: number;
    env: Map<string, string>;
  } | null = null;

  push(chunk: string): ManagementEvent[] {
    this.buf += chunk;
    const out: ManagementEvent[] = [];
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl < 0) break;
      const raw = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (this.dropping || raw.length > MAX_LINE) {
        this.dropping = false;
        this.skipped++;
        continue;
      }
      const e = this.line(raw.replace(/\r$/, ''));
      if (e) out.push(e);
    }
    if (this.buf.length > MAX_LINE) {
      this.buf = '';
      this.dropping = true;
    }
    return out;
  }

  private line(line: string): ManagementEvent | undefined {
    if (line.startsWith('>CLIENT:ENV,')) {
      const b = this.block;
      if (!b) return undefined; // an ENV line outside a block: nothing to add it to
      const kv = line.slice('>CLIENT:ENV,'.length);
      if (kv === 'END') {
        this.block = null;
        if (b.kind === 'connect' || b.kind === 'reauth') return { kind: b.kind, cid: b.cid, kid: b.kid, env: b.env };
        return { kind: b.kind, cid: b.cid, env: b.env };
      }
      const eq = kv.indexOf('=');
      const name = eq < 0 ? '' : kv.slice(0, eq);
      if (ENV_NAME.test(name) && b.env.size < MAX_ENV && !b.env.has(name)) b.env.set(name, kv.slice(eq + 1));
      return undefined;
    }
    if (!line.startsWith('>CLIENT:')) return { kind: 'line', text: line };
    const body = line.slice('>CLIENT:'.length);
    const comma = body.indexOf(',');
    const what = comma < 0 ? body : body.slice(0, comma);
    const args = comma < 0 ? [] : body.slice(comma + 1).split(',');
    const ids = (n: number): number[] | undefined => {
      const got = args.slice(0, n);
      if (got.length < n || !got.every((x) => ID.test(x))) {
        this.skipped++;
        return undefined;
      }
      return got.map(Number);
    };
    switch (what) {
      case 'CONNECT':
      case 'REAUTH': {
        const [cid, kid] = ids(2) ?? [];
        if (cid === undefined || kid === undefined) return undefined;
        this.block = { kind: what === 'CONNECT' ? 'connect' : 'reauth', cid, kid, env: new Map() };
        return undefined;
      }
      case 'ESTABLISHED':
      case 'DISCONNECT': {
        const [cid] = ids(1) ?? [];
        if (cid === undefined) return undefined;
        this.block = { kind: what === 'ESTABLISHED' ? 'established' : 'disconnect', cid, kid: 0, env: new Map() };
        return undefined;
      }
      case 'ADDRESS': {
        const [cid] = ids(1) ?? [];
        return cid === undefined ? undefined : { kind: 'address', cid, address: args[1] ?? '' };
      }
      default:
        return { kind: 'line', text: line };
    }
  }
}

/** The subnet's customer addresses (the server has the first), handed out in turn so a freed one rests. */
export class AddressPool {
  private readonly used = new Set<number>();
  private next: number;
  private readonly first: number;
  private readonly last: number;

  constructor(subnet: SubnetInfo) {
    const base = ipv4ToNumber(subnet.network) ?? 0; // parseOvpnSubnet checked it
    this.first = base + 2;
    this.last = base + 2 ** (32 - subnet.prefix) - 2; // not the broadcast address
    this.next = this.first;
  }

  get size(): number {
    return this.last - this.first + 1;
  }

  take(): string | undefined {
    const n = this.size;
    for (let i = 0; i < n; i++) {
      const a = this.next;
      this.next = a >= this.last ? this.first : a + 1;
      if (!this.used.has(a)) {
        this.used.add(a);
        return numberToIpv4(a);
      }
    }
    return undefined;
  }

  give(address: string): void {
    const n = ipv4ToNumber(address);
    if (n !== undefined) this.used.delete(n);
  }

  get inUse(): number {
    return this.used.size;
  }
}

export interface ManagementOptions {
  readonly socketPath: string;
  readonly subnet: SubnetInfo;
  readonly api: OpenvpnApi;
  /** The transparent proxy's client map: customer address -> its connection's proxy on the device. */
  readonly clients: Map<string, OpenvpnRoute>;
  /**
   * Customers whose device reads SYN stamps get their TCP carried to it (./carry.ts), mapped before the
   * login is answered; the others (and everyone's DNS) go through the transparent proxy's `clients`.
   */
  readonly carry?: { readonly carrier: Carrier; readsStamps(deviceVpnIp: string): boolean };
  /**
   * How often every session's carrying is checked again (default 10 s): a device that started reading stamps
   * after its customer signed in (it was reconnecting) gets its customers carried, and one that stopped (an
   * agent replaced by an older one) gives them back to the transparent proxy.
   */
  readonly carryRecheckMs?: number;
  readonly logger: Logger;
  /** Reconnect delay while openvpn is (re)starting (default 200 ms, doubling to 2 s). */
  readonly retryMs?: number;
}

export interface ManagementStats {
  readonly connected: boolean;
  readonly admitted: number;
  readonly refused: number;
  readonly failed: number;
  readonly sessions: number;
  /** Logins being decided or waiting their turn. */
  readonly deciding: number;
}

export interface Management {
  readonly stats: ManagementStats;
  close(): Promise<void>;
}

interface Session {
  readonly username: string;
  readonly address: string;
  /** Its TCP is carried to this device and port (./carry.ts), or undefined (the transparent proxy). */
  carried?: string;
  /** A change of its carrying is under way (one at a time per session). */
  changing?: boolean;
}

/** Connects to openvpn's management socket (retrying while openvpn starts) and answers its logins. */
export function startManagement(o: ManagementOptions): Management {
  const log = o.logger.child({ subsys: 'openvpn-mgmt' });
  const pool = new AddressPool(o.subnet);
  const sessions = new Map<number, Session>();
  /**
   * Logins being decided: client id -> that login's token. A DISCONNECT meanwhile, or openvpn restarting
   * (whose next process numbers its clients from the start again), takes the entry away, and an answer is
   * sent only while the entry is still that login's own: a login of a process that is gone can never
   * admit, with its customer's address and route, a client of the next one that got the same numbers.
   */
  const deciding = new Map<number, object>();
  /** The management connection's number: what a task learnt on one connection is never said on another. */
  let epoch = 0;
  const counts = { admitted: 0, refused: 0, failed: 0 };
  let sock: net.Socket | null = null;
  let up = false;
  let closing = false;
  let retry = o.retryMs ?? 200;
  let timer: NodeJS.Timeout | undefined;

  const send = (ep: number, text: string) => {
    if (sock && up && ep === epoch) sock.write(text);
  };
  const deny = (ep: number, cid: number, kid: number, reason: string) =>
    send(ep, `client-deny ${cid} ${kid} "${reason}"\n`);

  const end = (cid: number) => {
    deciding.delete(cid);
    const s = sessions.get(cid);
    if (!s) return;
    sessions.delete(cid);
    o.clients.delete(s.address);
    if (s.carried) void o.carry?.carrier.remove(s.address);
    pool.give(s.address);
    log.info({ cid, username: s.username, clientIp: s.address }, 'OpenVPN client unmapped');
  };

  /**
   * Carries the session's TCP to its device when that device reads stamps (else, or when the table cannot be
   * changed, the transparent proxy serves it); a route that moved is mapped anew. After the await the
   * session may be gone (a DISCONNECT meanwhile): its mapping is taken away again.
   */
  const carry = async (cid: number, s: Session, route: OpenvpnRoute): Promise<void> => {
    const c = o.carry;
    if (!c || s.changing) return;
    const want = c.readsStamps(route.deviceVpnIp) ? `${route.deviceVpnIp}:${route.proxyPort}` : undefined;
    if (want === s.carried) return;
    s.changing = true;
    try {
      if (s.carried) await c.carrier.remove(s.address);
      s.carried = undefined;
      if (want) await c.carrier.add(s.address, route);
      s.carried = want;
    } catch (err) {
      log.warn(
        { cid, clientIp: s.address, err: String(err) },
        'OpenVPN client not carried; the transparent proxy serves it',
      );
    } finally {
      s.changing = false;
    }
    if (sessions.get(cid) !== s && s.carried) {
      s.carried = undefined;
      await c.carrier.remove(s.address);
    }
  };

  const login = (env: Map<string, string>) => {
    const username = env.get('username') ?? env.get('common_name') ?? '';
    const password = env.get('password') ?? '';
    const untrustedIp = env.get('untrusted_ip');
    if (username === '' || username.length > 64 || password === '' || password.length > 256) return undefined;
    return { username, password, ...(untrustedIp ? { untrustedIp } : {}) };
  };

  // At most MAX_DECIDING logins ask the API at once; the rest wait their turn (openvpn bounds how many
  // can wait: max-clients, and its hand-window drops a login not answered in 60 s).
  let active = 0;
  const waiting: (() => Promise<void>)[] = [];
  const schedule = (task: () => Promise<void>) => {
    if (active >= MAX_DECIDING) return void waiting.push(task);
    active++;
    void task().finally(() => {
      active--;
      const next = waiting.shift();
      if (next) schedule(next);
    });
  };

  async function connect(ep: number, cid: number, kid: number, env: Map<string, string>, token: object) {
    /** Still this login's to answer (not gone, not of a process that is gone): then it is answered now. */
    const settle = () => {
      if (deciding.get(cid) !== token) return false;
      deciding.delete(cid);
      return true;
    };
    if (deciding.get(cid) !== token) return; // gone while it waited its turn
    const l = login(env);
    if (!l) {
      counts.refused++;
      if (settle()) deny(ep, cid, kid, 'malformed credentials');
      return;
    }
    let address: string | undefined;
    try {
      if (!(await o.api.auth(l))) {
        counts.refused++;
        log.info({ cid, username: l.username }, 'OpenVPN login refused');
        if (settle()) deny(ep, cid, kid, 'refused');
        return;
      }
      if (deciding.get(cid) !== token) return;
      address = pool.take();
      if (!address) {
        counts.failed++;
        log.warn({ cid, username: l.username, addresses: pool.size }, 'OpenVPN login: no customer address left');
        if (settle()) deny(ep, cid, kid, 'no address left');
        return;
      }
      const route = await o.api.connect(l.username, address);
      if (!settle()) return void pool.give(address); // gone meanwhile
      if (!route) {
        pool.give(address);
        counts.refused++;
        return deny(ep, cid, kid, 'refused');
      }
      const session: Session = { username: l.username, address };
      sessions.set(cid, session);
      o.clients.set(address, route);
      await carry(cid, session, route);
      if (sessions.get(cid) !== session) return; // gone meanwhile (its DISCONNECT unmapped it)
      counts.admitted++;
      log.info(
        {
          cid,
          username: l.username,
          clientIp: address,
          deviceVpnIp: route.deviceVpnIp,
          port: route.proxyPort,
          carried: session.carried !== undefined,
        },
        'OpenVPN client mapped',
      );
      send(ep, `client-auth ${cid} ${kid}\nifconfig-push ${address} ${o.subnet.netmask}\nEND\n`);
    } catch (err) {
      if (address && !sessions.has(cid)) pool.give(address);
      counts.failed++;
      log.warn({ cid, username: l.username, err: String(err) }, 'OpenVPN login failed (API)');
      if (settle()) deny(ep, cid, kid, 'login unavailable');
    }
  }

  // A renegotiation: the same customer must still be admitted; its route is asked again, so a connection
  // moved to another device follows.
  async function reauth(ep: number, cid: number, kid: number, env: Map<string, string>): Promise<void> {
    if (ep !== epoch) return;
    const s = sessions.get(cid);
    const l = login(env);
    if (!s || !l || l.username !== s.username) return void deny(ep, cid, kid, 'refused');
    try {
      const route = (await o.api.auth(l)) ? await o.api.connect(l.username, s.address) : undefined;
      if (sessions.get(cid) !== s) return;
      if (!route) {
        counts.refused++;
        log.info({ cid, username: l.username }, 'OpenVPN renegotiation refused');
        return void deny(ep, cid, kid, 'refused');
      }
      o.clients.set(s.address, route);
      await carry(cid, s, route);
      send(ep, `client-auth-nt ${cid} ${kid}\n`);
    } catch (err) {
      // The API is away: a customer already admitted keeps its session.
      log.warn({ cid, err: String(err) }, 'OpenVPN renegotiation: API unavailable, kept');
      if (sessions.get(cid) === s) send(ep, `client-auth-nt ${cid} ${kid}\n`);
    }
  }

  const onEvent = (e: ManagementEvent) => {
    switch (e.kind) {
      case 'connect': {
        const token = {};
        const ep = epoch;
        deciding.set(e.cid, token);
        return schedule(() => connect(ep, e.cid, e.kid, e.env, token));
      }
      case 'reauth': {
        const ep = epoch;
        return schedule(() => reauth(ep, e.cid, e.kid, e.env));
      }
      case 'disconnect':
        return end(e.cid);
      case 'line':
        if (e.text.startsWith('ERROR:')) log.warn({ line: e.text.slice(0, 200) }, 'openvpn management');
        return;
      default:
        return;
    }
  };

  // openvpn gone (restarting): its customers are gone with it.
  const reset = () => {
    // One flush for all of them rather than a command per customer.
    let carried = false;
    for (const x of sessions.values()) {
      carried ||= x.carried !== undefined;
      x.carried = undefined;
    }
    if (carried)
      void o.carry?.carrier
        .clear()
        .catch((e: unknown) => log.warn({ err: String(e) }, 'carried customers not unmapped'));
    for (const cid of [...sessions.keys()]) end(cid);
    deciding.clear();
  };

  const recheck = o.carry
    ? setInterval(() => {
        for (const [cid, s] of sessions) {
          const route = o.clients.get(s.address);
          if (route) void carry(cid, s, route);
        }
      }, o.carryRecheckMs ?? 10_000)
    : undefined;
  recheck?.unref();

  const dial = () => {
    if (closing) return;
    const parser = new ManagementParser();
    const s = net.connect(o.socketPath);
    sock = s;
    // openvpn passes a password's bytes as they came (it drops only control characters): UTF-8, as the API
    // stored it (a multi-byte character split between two reads is joined by the decoder).
    s.setEncoding('utf8');
    s.on('connect', () => {
      epoch++;
      up = true;
      retry = o.retryMs ?? 200;
      log.info({ socket: o.socketPath }, 'openvpn management connected');
    });
    s.on('data', (chunk: string) => {
      const skipped = parser.skipped;
      for (const e of parser.push(chunk)) onEvent(e);
      if (parser.skipped > skipped) log.warn({ lines: parser.skipped - skipped }, 'openvpn management: lines skipped');
    });
    s.on('error', () => {});
    s.on('close', () => {
      const was = up;
      up = false;
      if (sock === s) sock = null;
      if (was) {
        log.warn('openvpn management connection lost');
        reset();
      }
      if (closing) return;
      timer = setTimeout(dial, retry);
      retry = Math.min(retry * 2, 2000);
    });
  };
  dial();

  return {
    get stats() {
      return { connected: up, ...counts, sessions: sessions.size, deciding: deciding.size };
    },
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        clearTimeout(timer);
        clearInterval(recheck);
        reset();
        if (!sock) return resolve();
        sock.once('close', () => resolve());
        sock.destroy();
      }),
  };
}
