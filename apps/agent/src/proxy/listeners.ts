// One listener per connection, on the connection's own port of the tunnel address:
//
//   customer 192.0.2.1 -> relay:30001 --DNAT, port kept, no source NAT--> tunnel -> vpn_ip:30001
//     -> this connection's HTTP or SOCKS5 server -> egress (cellular) -> target
//   customer UDP (SOCKS5 only)  -> relay:30001/udp --DNAT--> vpn_ip:30001/udp -> this connection's UdpRelay
//   OpenVPN customer -> relay's transparent proxy (from the relay's tunnel address) -> vpn_ip:30001
//
// So the port a socket arrived on names its connection, and the socket's peer is the customer's
// real address. A listener checks credentials against its own connection only, then its state
// (disabled / expired / over its bandwidth: refused with a reason), its allow-list, its
// max_connections, and hands every relayed byte to the connection's meter (byte budget, rate
// limits, usage). Changes from the API (apply) open and close listeners and end the sockets of a
// connection whose password, state or allow-list no longer admit them (docs/security.md).
import * as dgram from 'node:dgram';
import type { BlockList } from 'node:net';
import type { Logger } from 'pino';
import { setTcpFlag } from '@pocketproxy/tun';
import {
  createHttpProxy,
  FrontServer,
  type FrontEngine,
  createSocks5Server,
  proxyError,
  UdpRelay,
  type AuthContext,
  type HandoffStats,
  type RelayHandoff,
  type HandshakeGuard,
  type Principal,
  type ProxyServer,
  type ProxySocket,
  type AssociationPort,
} from '@pocketproxy/proxy';
import type { CredentialItem } from '../api-client.js';
import { addressList, type CredentialStore } from '../credentials.js';
import type { Egress } from './egress.js';
import type { UsageMeter } from '../ops/usage.js';

export interface ListenerLimits {
  /** Absolute time for a request head / SOCKS5 handshake (ms). */
  readonly headTimeoutMs: number;
  /** An established tunnel with no traffic either way is closed after this (ms). */
  readonly idleTimeoutMs: number;
}

export interface ListenersOptions {
  /** The tunnel address (vpn_ip): every listener binds here. */
  readonly host: string;
  /** The relay's tunnel address: its transparent proxy (OpenVPN customers) connects from here. */
  readonly relayAddress?: string;
  /** BND.ADDR of UDP ASSOCIATE replies: the relay's public host, where customers send datagrams. */
  readonly relayHost: string;
  readonly credentials: CredentialStore;
  readonly usage: UsageMeter;
  readonly egress: Egress;
  readonly guard: HandshakeGuard;
  readonly limits: ListenerLimits;
  readonly logger: Logger;
  readonly now?: () => number;
  /** Customers' connections are LeanSockets (proxy/sockets.ts); default false (node:net). */
  readonly lean?: boolean;
  /**
   * Established CONNECT / SOCKS5 tunnels of unlimited connections leave JS (packages/proxy
   * lean/handoff.ts over @pocketproxy/tun's SpliceEngine); needs `lean`. Its counts go in stats().
   */
  readonly handoff?: { readonly relay: RelayHandoff; readonly stats: HandoffStats };
  /**
   * HTTP and SOCKS5 listeners accepted by this native engine (packages/proxy front/connection.ts):
   * CONNECTs (HTTP and SOCKS5) and last GETs of unlimited connections are served there, the rest
   * adopted by the JS path. Needs `lean` and an egress whose dial can `prepare`; its counts go in stats().
   */
  readonly front?: FrontEngine & { frontStats(): FrontCounts };
  /**
   * Listener threads (threads.ts) that accept from this thread's listeners of unlimited HTTP
   * connections too: told of every change before it is final here (sync), of the OpenVPN subnet, of
   * sockets to end after a rotation; their counts are added to stats().
   */
  readonly peers?: ListenerPeers;
  /**
   * The device's lanes (with `peers`, one thread per lane but this one): each listener the threads share is a
   * group of one socket per lane, picked by the TUN queue a SYN came in on (@pocketproxy/tun native/lanes.cc);
   * thread k gets lane k+1's socket rather than a duplicate of this thread's.
   */
  readonly lanes?: number;
  /**
   * On a listener thread: the main thread's listener of this connection to accept from (an fd of its
   * own, FrontServer.dupListener there), instead of opening one. Undefined: none was given (not opened).
   */
  readonly sharedFd?: (item: CredentialItem) => number | undefined;
  /**
   * On a listener thread: the stand-in for the main thread's UDP relay of a SOCKS5 connection, with which its
   * customers' UDP associations are registered (threads.ts). Needed for SOCKS5 connections to be shared.
   */
  readonly remoteUdp?: (item: CredentialItem) => AssociationPort;
}

/**
 * A listener another thread may accept from: its connection, the listener's identity, and for thread
 * `thread` (0 ..) a new fd of it, or with lanes the socket of its lane (thread + 1).
 */
export interface SharedListener {
  readonly item: CredentialItem;
  readonly listener: object;
  dup(thread: number): number;
}

/** What Listeners needs of its listener threads (threads.ts ListenerThreads). */
export interface ListenerPeers {
  /**
   * The listeners the threads accept from now, with the OpenVPN subnet; resolves once every thread
   * runs exactly these (a listener left out is closed there and its sockets there ended).
   */
  sync(shared: readonly SharedListener[], openvpnSubnet: string | null): Promise<void>;
  /** Ends the threads' customer sockets (after a rotation); how many is logged there. */
  closeCustomerSockets(): void;
  /** The threads' counters as they last reported them (at most a second old). */
  stats(): ListenerStats | undefined;
  /** Closes the threads' listeners and sockets, takes their last usage, ends the threads. */
  close(): Promise<void>;
}

/**
 * A connection a listener thread may serve too: without any meter that must be exact across its sockets
 * (byte budget, rates, max_connections). A SOCKS5 one's UDP associations are registered with this
 * thread's relay of it (its socket is bound here) by the thread that took the control connection.
 */
export function shareable(item: CredentialItem): boolean {
  return (
    item.bandwidth_limit_bytes === null &&
    item.rate_limit_up_kbps === null &&
    item.rate_limit_down_kbps === null &&
    item.max_connections === null
  );
}

/** The front engine's counters that stats() reports (@pocketproxy/tun FrontStats). */
export interface FrontCounts {
  readonly joined: number;
  readonly answered: number;
  readonly adopted: number;
  readonly refusedPerAddress: number;
  readonly refusedTotal: number;
  readonly headTimeouts: number;
}

interface Listener {
  item: CredentialItem;
  readonly server: ProxyServer;
  readonly udp?: { relay: UdpRelay; socket: dgram.Socket };
  /** Every accepted socket (closeCustomerSockets) and the authenticated ones (max_connections, revocation). */
  readonly open: Set<ProxySocket>;
  readonly admitted: Set<ProxySocket>;
}

export interface ListenerStats {
  readonly listeners: number;
  readonly open: number;
  readonly admitted: number;
  readonly handshakeTimeouts: number;
  readonly idleClosed: number;
  readonly authFailures: number;
  readonly denied: number;
  readonly unauthRefusedPerAddress: number;
  readonly unauthRefusedTotal: number;
  readonly unauthActive: number;
  readonly listenFailures: number;
  /** Established tunnels handed to the native relay / kept in JS (a limited meter, JS state). */
  readonly handedOff: number;
  readonly handoffDeclined: number;
  /** The native front (HTTP listeners): CONNECTs joined there, failures answered there, connections adopted by JS. */
  readonly front?: { readonly joined: number; readonly answered: number; readonly adopted: number };
}

/** Why an authenticated customer of this connection may not go on, or undefined. */
export function refusal(item: CredentialItem, now: number, budgetLeft: boolean): string | undefined {
  if (item.state !== 'active') return item.state;
  if (item.expires_at !== null && Date.parse(item.expires_at) <= now) return 'expired';
  if (!budgetLeft) return 'bandwidth';
  return undefined;
}

export class Listeners {
  private readonly byId = new Map<string, Listener>();
  private readonly log: Logger;
  private readonly now: () => number;
  private closedCounters = { handshakeTimeouts: 0, idleClosed: 0, authFailures: 0, denied: 0 };
  private listenFailures = 0;
  private expiryTimer: NodeJS.Timeout | undefined;
  private applying: Promise<void> = Promise.resolve();
  private closed = false;
  /**
   * The relay's OpenVPN customers' subnet (its `config`): their TCP comes to the connection's port with
   * the SYN stamped with where they were headed, and the relay checked their credentials and allow-list
   * at sign-in (docs/design.md §2.4). Unset: no stamped connection is admitted.
   */
  private openvpnSubnet: BlockList | null = null;
  private openvpnCidr: string | null = null;

  constructor(private readonly o: ListenersOptions) {
    this.log = o.logger.child({ subsys: 'proxy' });
    this.now = o.now ?? Date.now;
  }

  /** The subnet from the relay's `config` (a.b.c.d/n), or null: stamped connections are admitted from it only. */
  setOpenvpnSubnet(cidr: string | null): void {
    this.openvpnSubnet = cidr === null ? null : addressList([cidr]);
    this.openvpnCidr = cidr;
    if (this.o.peers)
      this.apply().catch((err: unknown) => this.log.warn({ err }, 'listener threads not told the OpenVPN subnet'));
    // Stamps come only from that subnet: without one, no listener keeps or reads SYNs (a copy per SYN in
    // the kernel and a getsockopt per accept spared). Before the caller tells the relay stamps are read.
    for (const [id, l] of this.byId) this.readStamps(id, l.server);
  }

  /** A listener reads SYN stamps as stampsRead says (a setsockopt, not seen to fail; logged if it does). */
  private readStamps(id: string, server: ProxyServer): void {
    try {
      server.readStamps(this.stampsRead);
    } catch (err) {
      this.log.warn(
        { err, connectionId: id },
        'listener could not switch reading SYN stamps; its OpenVPN customers may fail',
      );
    }
  }

  /** Whether the listeners read their connections' SYNs for stamps: only while there is an OpenVPN subnet. */
  private get stampsRead(): boolean {
    return this.openvpnSubnet !== null;
  }

  /** Its listeners read each connection's SYN for a stamp (the native front; TransparentFront). */
  get readsStamps(): boolean {
    return this.o.front !== undefined;
  }

  /** Whether the relay speaks for this customer address: its transparent proxy, or an OpenVPN customer. */
  private vouchedFor(remote: string): boolean {
    return remote === this.o.relayAddress || (this.openvpnSubnet?.check(remote, 'ipv4') ?? false);
  }

  /** Listening ports by connection id (tests, logs). */
  ports(): Map<string, number> {
    return new Map([...this.byId].map(([id, l]) => [id, l.item.port]));
  }

  /** Brings the listeners in line with the credential store; calls run one after another. */
  apply(): Promise<void> {
    const run = this.applying.then(() => this.applyNow());
    this.applying = run.catch(() => {});
    return run;
  }

  private async applyNow(): Promise<void> {
    if (this.closed) return;
    const wanted = new Map([...this.o.credentials.items()].map((i) => [i.connection_id, i]));
    const closing = [...this.byId].filter(([id, l]) => {
      const next = wanted.get(id);
      return !next || next.port !== l.item.port || next.protocol !== l.item.protocol;
    });
    // The threads first: they stop accepting from the listeners that close and end their sockets on
    // the connections they may no longer serve, before the listeners close here (a port closed here
    // while a thread still holds it stays open, and could not be opened again for another connection).
    await this.syncPeers(wanted);
    for (const [id, l] of closing) await this.closeListener(id, l, wanted.has(id) ? 'moved' : 'removed');
    for (const item of wanted.values()) {
      const usage = this.o.usage.of(item.connection_id);
      usage.limits.setRates({ upKbps: item.rate_limit_up_kbps, downKbps: item.rate_limit_down_kbps });
      const l = this.byId.get(item.connection_id);
      if (l) {
        const before = l.item;
        l.item = item;
        this.revokeChanged(l, before);
      } else {
        await this.openListener(item).catch((err: unknown) => {
          this.listenFailures++;
          this.log.error(
            { err, connectionId: item.connection_id, port: item.port },
            'cannot listen for connection; retried at the next change',
          );
        });
      }
    }
    this.armExpiry();
    await this.syncPeers(wanted);
  }

  /**
   * The listener threads serve, of the listeners open here, those of `wanted`'s connections that are
   * shareable, with `wanted`'s view of them (so a change is on the threads as soon as it is here).
   */
  private async syncPeers(wanted: ReadonlyMap<string, CredentialItem>): Promise<void> {
    const peers = this.o.peers;
    if (!peers) return;
    const shared: SharedListener[] = [];
    for (const [id, l] of this.byId) {
      const item = wanted.get(id);
      const ls = l.server.server;
      if (!item || item.port !== l.item.port || item.protocol !== l.item.protocol) continue;
      if (!shareable(item) || !(ls instanceof FrontServer)) continue;
      // A listener opened before its connection was shareable (it had a limit) has no lanes: the threads
      // accept from duplicates of its one socket, as listener threads do, until it is opened again.
      // So does a thread whose lane socket is gone (it let go of it while the connection had a limit).
      shared.push({
        item,
        listener: ls,
        dup: (k) => (ls.lanes > 1 ? ls.laneListener(k + 1) : undefined) ?? ls.dupListener(),
      });
    }
    await peers.sync(shared, this.openvpnCidr);
  }

  /**
   * Sets each connection's byte budget from the API's view of this month's usage. `reportedAt` is
   * what our heartbeats had carried when the API answered (none in flight), so the bytes counted
   * since are exactly the ones the API's figure lacks.
   */
  setBudgets(reportedAt: ReadonlyMap<string, number>): void {
    for (const item of this.o.credentials.items()) {
      const usage = this.o.usage.of(item.connection_id);
      if (item.bandwidth_limit_bytes === null) usage.limits.setBudget(null);
      else {
        // In the meter's own count: what it has taken so far plus what is left.
        const left =
          item.bandwidth_limit_bytes -
          item.bytes_used_month -
          (usage.counted - (reportedAt.get(item.connection_id) ?? 0));
        usage.limits.setBudget(Math.max(0, usage.limits.used + left));
      }
    }
  }

  /** Ends every customer socket (after a rotation the old address is gone anyway). */
  closeCustomerSockets(): number {
    this.o.peers?.closeCustomerSockets();
    let n = 0;
    for (const l of this.byId.values()) {
      n += l.open.size;
      for (const s of [...l.open]) s.destroy();
    }
    return n;
  }

  stats(): ListenerStats {
    const sum = { ...this.closedCounters };
    let open = 0;
    let admitted = 0;
    for (const l of this.byId.values()) {
      open += l.open.size;
      admitted += l.admitted.size;
      const s = l.server.stats;
      sum.handshakeTimeouts += s.handshakeTimeouts;
      sum.idleClosed += s.idleClosed;
      sum.authFailures += s.authFailures;
      sum.denied += s.denied;
    }
    const g = this.o.guard.stats;
    // The front's engine refuses and times out unauthenticated connections before JS hears of them.
    const f = this.o.front?.frontStats();
    if (f) sum.handshakeTimeouts += f.headTimeouts;
    const own: ListenerStats = {
      listeners: this.byId.size,
      open,
      admitted,
      ...sum,
      unauthRefusedPerAddress: g.refusedPerAddress + (f?.refusedPerAddress ?? 0),
      unauthRefusedTotal: g.refusedTotal + (f?.refusedTotal ?? 0),
      unauthActive: g.active,
      listenFailures: this.listenFailures,
      handedOff: this.o.handoff?.stats.handedOff ?? 0,
      handoffDeclined: this.o.handoff?.stats.declined ?? 0,
      ...(f ? { front: { joined: f.joined, answered: f.answered, adopted: f.adopted } } : {}),
    };
    const theirs = this.o.peers?.stats();
    return theirs ? addStats(own, theirs) : own;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    await this.applying;
    // The threads' listeners (this thread's, shared) and sockets first; then their last usage is here.
    await this.o.peers?.close();
    await Promise.all([...this.byId].map(([id, l]) => this.closeListener(id, l, 'stopping')));
  }

  // ---- one connection ---------------------------------------------------------------------

  private async openListener(item: CredentialItem): Promise<void> {
    const host = this.o.host;
    const id = item.connection_id;
    const authenticate = (user: string, pass: string, ctx: AuthContext) =>
      Promise.resolve(this.admit(id, user, pass, ctx));
    // OpenVPN customers the relay carried here (their SYN stamped): no credentials, the relay checked them.
    const transparent = { vouch: (ctx: AuthContext) => Promise.resolve(this.vouch(id, ctx)) };
    const common = {
      authenticate,
      dial: this.o.egress.dial,
      logger: this.log,
      guard: this.o.guard,
      idleTimeoutMs: this.o.limits.idleTimeoutMs,
      lean: this.o.lean ?? false,
      // Segment economy (every customer segment is a sealed tunnel frame both ways): an answer's
      // tail and its FIN leave together (HTTP: after the last answer; CONNECT and SOCKS5: when the
      // target's EOF follows its last bytes, packages/proxy relay.ts).
      beforeEnd: corkForFin,
      handoff: this.o.handoff?.relay,
    };
    let udp: Listener['udp'];
    let server: ProxyServer;
    // On a listener thread: the main thread's listener of this connection (or its lane's socket).
    const shared = this.o.sharedFd?.(item);
    if (this.o.sharedFd && shared === undefined) throw new Error('no listener of the main thread to share');
    const lanes = (this.o.lanes ?? 1) > 1 && this.o.peers && shareable(item) ? { lanes: this.o.lanes } : {};
    if (item.protocol === 'http') {
      server = createHttpProxy({
        ...common,
        headTimeoutMs: this.o.limits.headTimeoutMs,
        front: this.o.front && {
          engine: this.o.front,
          exempt: this.o.relayAddress,
          transparent,
          stamps: this.stampsRead,
          ...(shared === undefined ? {} : { shared }),
          ...lanes,
        },
      });
    } else {
      // The UDP relay's socket is bound here on the main thread; a listener thread registers its
      // customers' associations with it (remoteUdp, threads.ts).
      let relay: AssociationPort;
      if (shared !== undefined && this.o.remoteUdp) relay = this.o.remoteUdp(item);
      else {
        const socket = await bindUdp(item.port, host);
        const own = new UdpRelay({
          socket,
          createSocket: this.o.egress.createUdpSocket,
          resolve: this.o.egress.resolveUdp,
          logger: this.log,
        });
        udp = { relay: own, socket };
        relay = own;
      }
      server = createSocks5Server({
        ...common,
        handshakeTimeoutMs: this.o.limits.headTimeoutMs,
        udp: { relay, advertise: { address: this.o.relayHost, port: item.port } },
        front: this.o.front && {
          engine: this.o.front,
          exempt: this.o.relayAddress,
          transparent,
          stamps: this.stampsRead,
          ...(shared === undefined ? {} : { shared }),
          ...lanes,
        },
      });
    }
    const l: Listener = { item, server, udp, open: new Set(), admitted: new Set() };
    server.server.on('connection', (s: ProxySocket) => {
      l.open.add(s);
      s.once('close', () => {
        l.open.delete(s);
        l.admitted.delete(s);
      });
    });
    server.on('requestFailed', (e) =>
      this.log.debug({ code: e.code, connectionId: id, remote: e.remoteAddress }, 'request failed'),
    );
    try {
      await server.listen(item.port, host);
    } catch (e) {
      await server.close();
      if (udp) await closeUdp(udp);
      throw e;
    }
    // Accepted connections start in delayed-ACK mode (the kernel copies the listener's ACK state):
    // a request is acknowledged by its answer. And they are handed over only once their first bytes
    // are there (HTTP and SOCKS5 clients speak first): one wakeup instead of two. (A front's engine
    // sets all three on its own listener.)
    const ls = server.server;
    if (!(ls instanceof FrontServer)) {
      setTcpFlag(ls, 'quickack', false);
      setTcpFlag(ls, 'defer_accept', true);
      // Nagle off inherited the same way: one setsockopt per connection fewer (a system call costs
      // ~2-3 µs on the lab's VM). Without the addon Node keeps setting it per socket.
      if (setTcpFlag(ls, 'nodelay', true)) server.inheritNoDelay();
    }
    // setOpenvpnSubnet reaches the listeners in byId only. This one was made with the subnet of that moment,
    // which is still the one now (the native listen and this line run in one turn of the event loop); should
    // that ever change, this puts it right.
    this.readStamps(id, server);
    this.byId.set(id, l);
    this.log.info(
      { connectionId: id, protocol: item.protocol, port: item.port, state: item.state },
      'connection listening',
    );
  }

  private async closeListener(id: string, l: Listener, why: string): Promise<void> {
    this.byId.delete(id);
    const s = l.server.stats;
    this.closedCounters.handshakeTimeouts += s.handshakeTimeouts;
    this.closedCounters.idleClosed += s.idleClosed;
    this.closedCounters.authFailures += s.authFailures;
    this.closedCounters.denied += s.denied;
    const n = l.open.size;
    for (const s of l.open) cut(s);
    await l.server.close(); // and with the control sockets their UDP associations
    if (l.udp) await closeUdp(l.udp);
    this.log.info({ connectionId: id, port: l.item.port, closed: n, why }, 'connection listener closed');
  }

  /** Credentials, then the connection's state, allow-list and max_connections. */
  private admit(id: string, user: string, pass: string, ctx: AuthContext): Principal | null {
    const l = this.byId.get(id);
    if (!l) return null;
    const item = l.item;
    const store = this.o.credentials;
    if (!store.check(item, user, pass)) return null;
    const remote = ctx.remoteAddress;
    // The relay speaks for OpenVPN customers; their allow-list was checked at sign-in.
    if (!this.vouchedFor(remote) && !store.allowed(item, remote)) {
      return { principal: id, deny: proxyError('PP_ERR_PROXY_ACCESS_DENIED', { reason: 'address' }) };
    }
    return this.admitted(l, ctx);
  }

  /**
   * A listener thread's customer of a SOCKS5 connection asked UDP ASSOCIATE (threads.ts): its association on
   * this thread's relay of the connection, counted by the connection's meter here. Null: no such listener
   * here (gone meanwhile), or its relay is full; the thread then ends the control connection.
   */
  udpRegister(connectionId: string, clientIp: string, clientPort: number): ReturnType<AssociationPort['register']> {
    const l = this.byId.get(connectionId);
    if (!l?.udp) return null;
    return l.udp.relay.register({
      principal: connectionId,
      clientIp,
      clientPort,
      meter: this.o.usage.of(connectionId),
    });
  }

  /**
   * A stamped connection (an OpenVPN customer's TCP the relay carried here): admitted without credentials
   * only from the OpenVPN subnet the relay announced, then as any customer of the connection.
   */
  private vouch(id: string, ctx: AuthContext): Principal | null {
    const l = this.byId.get(id);
    if (!l || !this.openvpnSubnet?.check(ctx.remoteAddress, 'ipv4')) return null;
    return this.admitted(l, ctx);
  }

  /** The connection's state, budget and max_connections for a customer it knows. */
  private admitted(l: Listener, ctx: AuthContext): Principal {
    const item = l.item;
    const id = item.connection_id;
    const remote = ctx.remoteAddress;
    const usage = this.o.usage.of(id);
    const why = refusal(item, this.now(), !usage.limits.exhausted);
    if (why) return { principal: id, deny: proxyError('PP_ERR_PROXY_ACCESS_DENIED', { reason: why }) };
    if (!l.admitted.has(ctx.socket)) {
      if (item.max_connections !== null && l.admitted.size >= item.max_connections) {
        this.log.info({ connectionId: id, limit: item.max_connections, remote }, 'max_connections reached; refused');
        return {
          principal: id,
          deny: proxyError('PP_ERR_PROXY_TOO_MANY_CONNECTIONS', { limit: item.max_connections }),
        };
      }
      l.admitted.add(ctx.socket);
    }
    return { principal: id, meter: usage };
  }

  /** The API changed a connection: end the sockets it no longer admits. */
  private revokeChanged(l: Listener, before: CredentialItem): void {
    const item = l.item;
    const all =
      item.username !== before.username ||
      item.verifier !== before.verifier ||
      refusal(item, this.now(), true) !== undefined;
    const listChanged = item.allow_from.join(',') !== before.allow_from.join(',');
    if (!all && !listChanged) return;
    let n = 0;
    for (const s of [...l.admitted]) {
      const remote = s.remoteAddress?.startsWith('::ffff:') ? s.remoteAddress.slice(7) : (s.remoteAddress ?? '');
      if (all || (!this.vouchedFor(remote) && !this.o.credentials.allowed(item, remote))) {
        cut(s);
        n++;
      }
    }
    if (n > 0)
      this.log.info(
        { connectionId: item.connection_id, ended: n, state: item.state },
        'connection changed; its sockets ended',
      );
  }

  /** Re-applies at the next expiry, so an expired connection's sockets end on time. */
  private armExpiry(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    const now = this.now();
    let next = Infinity;
    for (const l of this.byId.values()) {
      const t = l.item.expires_at === null ? NaN : Date.parse(l.item.expires_at);
      if (l.item.state === 'active' && t > now) next = Math.min(next, t);
    }
    if (next === Infinity) return;
    this.expiryTimer = setTimeout(
      () => {
        for (const l of this.byId.values()) this.revokeChanged(l, l.item);
        this.armExpiry();
      },
      Math.min(next - now + 10, 2 ** 31 - 1),
    );
    this.expiryTimer.unref();
  }
}

/** Two threads' counters as one device's: the threads' listeners are the same ports, counted once. */
export function addStats(a: ListenerStats, b: ListenerStats): ListenerStats {
  const front =
    a.front || b.front
      ? {
          joined: (a.front?.joined ?? 0) + (b.front?.joined ?? 0),
          answered: (a.front?.answered ?? 0) + (b.front?.answered ?? 0),
          adopted: (a.front?.adopted ?? 0) + (b.front?.adopted ?? 0),
        }
      : undefined;
  return {
    listeners: a.listeners,
    open: a.open + b.open,
    admitted: a.admitted + b.admitted,
    handshakeTimeouts: a.handshakeTimeouts + b.handshakeTimeouts,
    idleClosed: a.idleClosed + b.idleClosed,
    authFailures: a.authFailures + b.authFailures,
    denied: a.denied + b.denied,
    unauthRefusedPerAddress: a.unauthRefusedPerAddress + b.unauthRefusedPerAddress,
    unauthRefusedTotal: a.unauthRefusedTotal + b.unauthRefusedTotal,
    unauthActive: a.unauthActive + b.unauthActive,
    listenFailures: a.listenFailures + b.listenFailures,
    handedOff: a.handedOff + b.handedOff,
    handoffDeclined: a.handoffDeclined + b.handoffDeclined,
    ...(front ? { front } : {}),
  };
}

/** TCP_CORK before the proxy's end(): the bytes still to be written and the FIN share a segment. */
function corkForFin(s: ProxySocket): void {
  setTcpFlag(s, 'cork', true);
}

/**
 * Ends a customer socket with a reset, not a FIN: a FIN queues behind everything still buffered
 * towards the customer (with a slow reader, megabytes: seconds of download after the revocation),
 * a reset makes the customer's kernel drop it and fail the next read at once.
 */
function cut(s: ProxySocket): void {
  if (s.destroyed) return;
  try {
    s.resetAndDestroy();
  } catch {
    s.destroy(); // not connected yet
  }
}

function bindUdp(port: number, host: string): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(port, host, () => {
      s.removeListener('error', reject);
      resolve(s);
    });
  });
}

async function closeUdp(u: { relay: UdpRelay; socket: dgram.Socket }): Promise<void> {
  await u.relay.close();
  await new Promise<void>((r) => {
    try {
      u.socket.close(() => r());
    } catch {
      r();
    }
  });
}
