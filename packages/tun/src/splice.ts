// A connected pair of TCP sockets relayed kernel to kernel (native/splice_relay.cc): the proxy hands
// both over after its handshake and hears back once per second with the bytes moved (usage) and
// once at the end. One engine per thread; every pair it runs shares one epoll instance, watched by
// the thread's libuv loop through one poll handle.
import { loadAddon } from './native.js';

/** How a pair ended: both FINs passed on; a socket failed or was reset; no byte either way for idleMs. */
export type SpliceEnd = 'clean' | 'error' | 'idle';
const ENDS: readonly SpliceEnd[] = ['clean', 'error', 'idle'];

export interface SplicePairEvents {
  /** Bytes moved since the last report (up = client -> target). At most once a second. */
  progress(up: number, down: number): void;
  /** The pair is over and both sockets are closed; the bytes not reported by progress yet. */
  done(up: number, down: number, end: SpliceEnd): void;
}

export interface SplicePairStart {
  readonly clientFd: number;
  readonly targetFd: number;
  /** Bytes already read from the client / the target, written to the other side first. */
  readonly toTarget?: Buffer | null;
  readonly toClient?: Buffer | null;
  /** The client's / the target's FIN was already read. */
  readonly clientEnded?: boolean;
  readonly targetEnded?: boolean;
  /** Close both after this long without a byte either way (0 = never). */
  readonly idleMs?: number;
  /** When one side fails or is reset, reset the other too (default: close it, a FIN). */
  readonly resetOnError?: boolean;
}

export interface SpliceLend {
  readonly clientFd: number;
  readonly targetFd: number;
  /** Bytes of the answer already read from the target, written to the client first. */
  readonly toClient?: Buffer | null;
  /** Bytes still to come from the target (>= 1). */
  readonly length: number;
  /** Ends it as 'idle' after this long without a byte (0 = never). */
  readonly idleMs?: number;
}

export interface SpliceStats {
  /** Pairs running, and started since the engine was made. */
  readonly active: number;
  readonly started: number;
  /** Times a direction gave the event loop back after its slice (256 KiB) with bytes still waiting. */
  readonly yields: number;
  /** Empty pipes kept for the next bytes; pipes held by a direction with bytes on their way. */
  readonly pooledPipes: number;
  readonly pipesInUse: number;
  /** splice() was refused outright (a kernel or sandbox without it): start() throws, callers stay in JS. */
  readonly unsupported: boolean;
}

interface NativeSpliceRelay {
  start(
    clientFd: number,
    targetFd: number,
    toTarget: Buffer | null,
    toClient: Buffer | null,
    clientEnded: boolean,
    targetEnded: boolean,
    idleMs: number,
    resetOnError: boolean,
  ): number;
  kill(id: number, reset: number): [number, number] | null;
  lend(clientFd: number, targetFd: number, toClient: Buffer | null, length: number, idleMs: number): number;
  stats(): SpliceStats;
  close(): void;
  listen(
    host: string,
    port: number,
    options: TransparentListenOptions,
    route: TransparentHooks['route'],
    hello: TransparentHooks['hello'],
    answered: TransparentHooks['answered'],
    event: TransparentHooks['event'],
  ): number;
  listenStats(): TransparentListenStats;
  cut(deviceIp: string, port: number): number;
  setFrontRoutes(routes: [number, string, number, boolean, string, boolean][]): void;
  frontInit(
    options: FrontOptions,
    head: NativeFrontHead,
    failed: (id: number, errno: number, answering: boolean) => void,
    answered: (id: number, bytes: Buffer) => FrontAnswered,
  ): void;
  frontListen(
    host: string,
    port: number,
    headMs: number,
    exempt: string,
    socks: boolean,
    stamps?: boolean,
    fd?: number,
    lanes?: number,
  ): number[];
  frontDup(tag: number): number;
  frontStamps(tag: number, on: boolean): boolean;
  frontClose(tag: number): void;
  frontConnect(
    id: number,
    fd: number,
    ip: string,
    port: number,
    timeoutMs: number,
    toTarget: Buffer | null,
    toClient: Buffer | null,
    idleMs: number,
    request: boolean,
  ): number;
  frontAnswer(id: number, bytes: Buffer): boolean;
  frontReply(id: number, bytes: Buffer): boolean;
  frontAdopt(id: number): number;
  frontHeadLeft(id: number): number;
  frontStats(): FrontStats;
}

/** Why a front asks about a connection: its head is complete, or it stopped short (FIN, 16 KiB, deadline). */
export type FrontHeadEnd = 'complete' | 'eof' | 'full' | 'timeout';
/** The engine's head() call (native/splice_relay.cc AskHead): `why` indexes HEAD_ENDS. */
type NativeFrontHead = (
  id: number,
  tag: number,
  ip: string,
  port: number,
  bytes: Buffer,
  why: number,
  stamp: readonly [string, number] | undefined,
) => void;

const HEAD_ENDS: readonly FrontHeadEnd[] = ['complete', 'eof', 'full', 'timeout'];

/**
 * What a front listener asks of JS (native/splice_relay.cc, "HTTP front"). Each connection is
 * decided with frontConnect, frontAnswer or frontAdopt, during head() or later.
 */
export interface FrontHandler {
  /**
   * A new connection's first bytes (its request head and what followed it). Returns the events of
   * the pair it may become: they also hear of its end when it ends in the engine first (done with
   * 'error' on a reset or a deadline, 'clean' once an answer was delivered); undefined when it was
   * adopted or killed during the call. On a SOCKS5 front it is called at every read with the bytes
   * read since the last call (after a frontReply), the same id each time.
   * `stamp`: the destination its SYN was stamped with (native/syn_stamp.h; a listener made with `stamps`):
   * asked at once, with what came so far; nothing of the protocol is answered at its join.
   */
  head(
    id: number,
    ip: string,
    port: number,
    bytes: Buffer,
    why: FrontHeadEnd,
    stamp?: readonly [string, number],
  ): FrontPairEvents | undefined;
}

export interface FrontPairEvents extends SplicePairEvents {
  /**
   * Its connect failed with this errno (ETIMEDOUT at its deadline): frontConnect again or frontAnswer.
   * `answering`: a request's origin failed after the connect, before its answer head (reset, closed,
   * ETIMEDOUT at the idle deadline, EPROTO for an answer JS could not take): frontAnswer only.
   */
  failed(errno: number, answering: boolean): void;
  /**
   * A request's answer so far (frontConnect with `request`): -1 to read more; [consumed, toClient,
   * bodyLength] to join (the first `consumed` bytes replaced by `toClient`, the pair over after
   * `bodyLength` body bytes, or at the origin's close when -1); undefined once JS answered or ended it.
   */
  answered?(bytes: Buffer): FrontAnswered;
}

/** What answered() decides: see FrontPairEvents.answered. */
export type FrontAnswered = -1 | readonly [number, Buffer, number] | undefined;

export interface FrontOptions {
  /** How long JS may take to decide (head() until frontConnect / frontAnswer / frontAdopt; default 15 s). */
  readonly decideMs?: number;
  /**
   * Connections whose head is still being read, per customer address and in all (default 64 and
   * 2048), counted per listen address: a farm host's devices, each on its own address, have their own.
   */
  readonly maxPerAddress?: number;
  readonly maxTotal?: number;
}

export interface FrontStats {
  readonly listeners: number;
  readonly accepted: number;
  /** Refused at accept by the unauthenticated caps (per address, in all). */
  readonly refusedPerAddress: number;
  readonly refusedTotal: number;
  /** Closed at the head deadline without a byte (with bytes, JS answers and counts the timeout). */
  readonly headTimeouts: number;
  /** Became pairs / were answered and closed here / went to JS's own path. */
  readonly joined: number;
  readonly answered: number;
  readonly adopted: number;
  /** Connections not joined yet; of which still reading their head. */
  readonly waiting: number;
  readonly unauthenticated: number;
}

/**
 * The transparent listener (native/splice_relay.cc, "Transparent listener"): accept, the original
 * destination, the peek, the device socket and the handshake in C++; what needs a parser or a policy
 * is asked of these hooks, one call each per connection (route at accept, hello per read of the
 * customer's first bytes until it has a handshake, answered per read of the device's answer).
 */
export interface TransparentHooks {
  /**
   * The device connection for a customer: [deviceIp, devicePort, socks5, dstIp, dstPort], or undefined
   * to refuse. `dstIp` is '' unless the engine read it from the kernel (`kernelDst`); `fd` is the
   * customer's socket (for a destination found another way).
   */
  route(
    clientIp: string,
    fd: number,
    dstIp: string,
    dstPort: number,
  ): [string, number, boolean, string, number] | undefined;
  /**
   * The handshake to write, with `peeked` behind it; undefined (only when not `final`): read more; null:
   * refuse; `[bytes]` (only when not `final`): bytes to answer the customer with from here, then read
   * more; `[reply, handshake]` (only when not `final`, an HTTP port with listen's httpEarlyReply): `reply`
   * to the customer from here, `handshake` to the device, and the pair forms at once (the device's answer
   * head is read and dropped: a 200, or the customer is reset). `replied`: every `[bytes]` answer given so
   * far (answered() gets it too).
   */
  hello(
    clientIp: string,
    deviceIp: string,
    devicePort: number,
    dstIp: string,
    dstPort: number,
    peeked: Buffer,
    final: boolean,
    replied: Buffer,
  ): Buffer | [Buffer] | [Buffer, Buffer] | undefined | null;
  /**
   * The device's answer's length once complete (what the customer does not get: the rest goes to them);
   * -1: more is needed; -2: refused (the customer is reset); `[bytes]`: refused, these bytes to the
   * customer and then a close. `replied`: what hello() answered this customer from the relay.
   */
  answered(socks5: boolean, bytes: Buffer, replied: Buffer): number | [Buffer];
  /** A refusal or failure, for the log: kind 'nodst' | 'badroute' | 'failed'. */
  event(kind: string, clientIp: string, dstIp: string, dstPort: number, detail: string): void;
}

export interface TransparentListenOptions {
  /** How long the customer's first bytes are waited for (default 300 ms). */
  readonly peekMs?: number;
  /** How long the device has to answer the handshake (default 10,000 ms). */
  readonly connectMs?: number;
  /** Device sockets opened at accept, before their customer spoke, per device (default 256). */
  readonly earlyDialsPerDevice?: number;
  /** Customer connections at once; past it new ones are closed at accept (default 20,000). */
  readonly maxConnections?: number;
  /** Read the original destination with SO_ORIGINAL_DST (default true); false: `route` gets '' and finds it. */
  readonly kernelDst?: boolean;
  /**
   * The device socket is bound to the customer's own address and port (IP_TRANSPARENT), so the device
   * sees them as through a DNAT; the relay routes the answers to it (`socket transparent` mark). Default false.
   */
  readonly transparentSource?: boolean;
  /**
   * The device socket's SYN waits for the handshake and carries it (TCP_FASTOPEN_CONNECT): one round trip
   * less once the device has given the source address a cookie. Default false.
   */
  readonly fastOpen?: boolean;
  /**
   * A connection hello() did not answer from here joins as soon as its bytes are written (what the device
   * says, or its close, is the customer's, as through a DNAT) instead of after answered(). Default false.
   */
  readonly passUnreplied?: boolean;
  /**
   * Connections of one customer address not joined yet (reading their first bytes or waiting for the device),
   * past which new ones are closed at accept without a question to JS; 0 (default): no cap.
   */
  readonly maxWaitingPerAddress?: number;
  /** TCP_DEFER_ACCEPT: a customer is accepted once its first bytes are there (customers that speak first). Default false. */
  readonly deferAccept?: boolean;
  /**
   * The relay's SOCKS5 front (apps/server tunnel/socks5-front.ts): the ports of setFrontRoutes() are routed
   * here, and the happy paths of its SOCKS5 handshake (a greeting offering username/password, credentials
   * its check accepted before, the request behind credentials answered here, the device's matching answer)
   * are answered here without asking `hello` / `answered`, as they would answer (socks5FrontStep); an HTTP
   * port's first bytes go to the device as they came, as `hello` sends them. Default false.
   */
  readonly socks5Front?: boolean;
  /**
   * With socks5Front: a CONNECT behind credentials answered here is answered success here too (BND
   * 0.0.0.0:0) and the pair forms at once, so the customer's first bytes follow the request to the device
   * instead of waiting for its reply to come back through the customer; the device's answers are read and
   * dropped, and anything but a success (or none by connectMs) resets the customer. Default false.
   */
  readonly earlyReply?: boolean;
  /**
   * With socks5Front: an HTTP port whose route says earlyReply asks `hello` about its first bytes, which
   * may answer a CONNECT here (`[reply, handshake]`, JS having checked its credentials): the pair forms at
   * once and the device's answer head is read and dropped, anything but a 200 (or none by connectMs)
   * resetting the customer, as earlyReply does for SOCKS5. The listener remembers the Proxy-Authorization
   * value of such a CONNECT under the route's credentials tag and answers the next CONNECT carrying it
   * without asking `hello`. Default false.
   */
  readonly httpEarlyReply?: boolean;
}

/** A SOCKS5 front's port: the device listener its customers go to, and the tag of its credentials. */
export interface FrontRoute {
  readonly port: number;
  readonly deviceIp: string;
  readonly devicePort: number;
  /** SOCKS5 (false: an HTTP port through the front, nothing answered here). */
  readonly socks: boolean;
  /** The credentials the relay checks there (username and verifier), '' when none: a change is a new tag. */
  readonly credentialsTag: string;
  /** listen's earlyReply (SOCKS5) or httpEarlyReply (HTTP) may answer this port's CONNECTs (default false). */
  readonly earlyReply?: boolean;
}

/** The native decision alone (socks5FrontStep): answer these bytes, pass the peek to the device, or ask JS. */
export type Socks5FrontStep = ['ask'] | ['reply', Buffer] | ['pass'];

export interface TransparentListenStats {
  readonly accepted: number;
  readonly refused: number;
  /** Closed at accept by maxWaitingPerAddress. */
  readonly refusedPerAddress: number;
  readonly failed: number;
  /** Customer connections open: waiting (peek or handshake) plus joined. */
  readonly active: number;
  /** Joined pairs since the start. */
  readonly spliced: number;
  readonly waiting: number;
  /** socks5Front: customers answered here without JS (greetings and credentials), of which credentials; handshakes passed so. */
  readonly answeredHere: number;
  readonly credentialsAnsweredHere: number;
  readonly passedHere: number;
  /** earlyReply and httpEarlyReply: CONNECTs answered success here; of those, the device refused or did not answer (reset). */
  readonly earlyReplies: number;
  readonly earlyFailed: number;
}

export class SpliceEngine {
  private readonly native: NativeSpliceRelay;
  private readonly pairs = new Map<number, SplicePairEvents | FrontPairEvents>();
  private readonly fronts = new Map<number, FrontHandler>();
  private frontReady = false;

  constructor() {
    const Ctor = (loadAddon() as unknown as { SpliceRelay: new (...a: unknown[]) => NativeSpliceRelay }).SpliceRelay;
    this.native = new Ctor(this.onDone, this.onProgress);
  }

  /**
   * Starts relaying; the fds are duplicated, so the caller closes its own handles right after
   * (without shutdown or reset: the connection lives on in the duplicates). Returns the pair's id.
   * Throws a system error (EMFILE, ...) and keeps nothing when it cannot.
   */
  start(o: SplicePairStart, events: SplicePairEvents): number {
    const id = this.native.start(
      o.clientFd,
      o.targetFd,
      o.toTarget && o.toTarget.length > 0 ? o.toTarget : null,
      o.toClient && o.toClient.length > 0 ? o.toClient : null,
      o.clientEnded ?? false,
      o.targetEnded ?? false,
      o.idleMs ?? 0,
      o.resetOnError ?? false,
    );
    this.pairs.set(id, events);
    return id;
  }

  /**
   * One answer body to a client that stays with the caller (an HTTP keep-alive connection): exactly
   * `o.length` bytes from the target to the client, after `o.toClient`, then done(0, down, 'clean')
   * with the client open and untouched otherwise (never read, never shut down here; the caller keeps
   * its handle and must not write to it meanwhile). The target is the engine's from here, as with
   * start() (the caller closes its own handle). A target FIN before `length` bytes or a failed client
   * write ends it with 'error'; kill() ends it early (no client reset from here: the caller owns it).
   */
  lend(o: SpliceLend, events: SplicePairEvents): number {
    const id = this.native.lend(
      o.clientFd,
      o.targetFd,
      o.toClient && o.toClient.length > 0 ? o.toClient : null,
      o.length,
      o.idleMs ?? 0,
    );
    this.pairs.set(id, events);
    return id;
  }

  /**
   * Closes both sockets now (a TCP reset on the client and/or the target when asked) and returns the
   * bytes not reported yet, or null when the pair had ended already. No done() follows.
   */
  kill(id: number, reset: { client?: boolean; target?: boolean } = {}): readonly [number, number] | null {
    this.pairs.delete(id);
    return this.native.kill(id, (reset.client ? 1 : 0) | (reset.target ? 2 : 0));
  }

  stats(): SpliceStats {
    return this.native.stats();
  }

  /**
   * Listens on host:port (IPv4) as a transparent proxy whose sockets stay in C++ (TransparentHooks);
   * returns the port. One listener per engine; close() closes it with everything else.
   */
  listen(host: string, port: number, options: TransparentListenOptions, hooks: TransparentHooks): number {
    return this.native.listen(host, port, options, hooks.route, hooks.hello, hooks.answered, hooks.event);
  }

  listenStats(): TransparentListenStats {
    return this.native.listenStats();
  }

  /** The SOCKS5 front's ports as they are routed now (listen's `socks5Front`); replaces the last list. */
  setFrontRoutes(routes: readonly FrontRoute[]): void {
    this.native.setFrontRoutes(
      routes.map((r) => [r.port, r.deviceIp, r.devicePort, r.socks, r.credentialsTag, r.earlyReply === true]),
    );
  }

  /** The native SOCKS5 front's decision for a peek (for tests against frontHello); `known`: credentials accepted. */
  static socks5FrontStep(peeked: Buffer, replied: Buffer, known: readonly Buffer[]): Socks5FrontStep {
    const Ctor = (loadAddon() as unknown as { SpliceRelay: { socks5FrontStep: (...a: unknown[]) => Socks5FrontStep } })
      .SpliceRelay;
    return Ctor.socks5FrontStep(peeked, replied, [...known]);
  }

  /**
   * The native check of the device's answers behind an early reply (earlyReply): the length of 05 02 01 00
   * and a success reply, 0 while more is needed, -1 for anything else (for its fuzz test).
   */
  static socks5EarlyAnswer(bytes: Buffer): number {
    const Ctor = (loadAddon() as unknown as { SpliceRelay: { socks5EarlyAnswer: (b: Buffer) => number } }).SpliceRelay;
    return Ctor.socks5EarlyAnswer(bytes);
  }

  /**
   * The native check of the device's answer behind an HTTP early reply (httpEarlyReply): the length of a
   * whole `HTTP/1.x 200` head (at most 1 KiB), 0 while more is needed, -1 for anything else (its fuzz test).
   */
  static httpEarlyAnswer(bytes: Buffer): number {
    const Ctor = (loadAddon() as unknown as { SpliceRelay: { httpEarlyAnswer: (b: Buffer) => number } }).SpliceRelay;
    return Ctor.httpEarlyAnswer(bytes);
  }

  /**
   * The Proxy-Authorization value the listener reads off a whole CONNECT head to answer it without JS
   * (httpEarlyReply, with a value JS accepted before for the port), or null (its differential test).
   */
  static httpConnectAuth(bytes: Buffer): Buffer | null {
    const Ctor = (loadAddon() as unknown as { SpliceRelay: { httpConnectAuth: (b: Buffer) => Buffer | null } })
      .SpliceRelay;
    return Ctor.httpConnectAuth(bytes);
  }

  /**
   * Resets the transparent listener's connections to a device, joined or still waiting (`port` 0: to any
   * of its ports); returns how many.
   */
  cut(deviceIp: string, port = 0): number {
    return this.native.cut(deviceIp, port);
  }

  /**
   * Sets the front's engine-wide options; the first call only counts (frontListen makes it with the
   * defaults when nobody did).
   */
  frontInit(options: FrontOptions = {}): void {
    if (this.frontReady) return;
    this.frontReady = true;
    this.native.frontInit(options, this.onFrontHead, this.onFrontFailed, this.onFrontAnswered);
  }

  /**
   * An HTTP front listener on host:port (IPv4), or with `socks` a SOCKS5 one. `headMs`: the deadline
   * for a request head (or a SOCKS5 handshake) from accept; `exempt`: an address the per-address cap
   * does not apply to (the relay's transparent proxy). `stamps`: each connection's SYN is kept by the
   * kernel (TCP_SAVE_SYN) and read at accept for a stamp (head()'s `stamp`). `fd`: no new socket, this
   * engine accepts from another thread's engine's listener too (that engine's frontDup): a listening
   * IPv4 socket on host:port, this engine's from the call on (closed by frontClose, or at once if the
   * call throws). The kernel hands each new connection to whichever engine accepts it first. `lanes` > 1
   * (no `fd`): a device's lanes (native/lanes.cc), that many listening sockets in one SO_REUSEPORT group
   * picking by the TUN queue a SYN came in on; this engine accepts from the first, `laneFds` are the others'
   * (in lane order, for the lanes' engines' `fd`; the caller's to hand on or close).
   */
  frontListen(
    host: string,
    port: number,
    headMs: number,
    handler: FrontHandler,
    exempt?: string,
    socks = false,
    stamps = false,
    fd?: number,
    lanes = 1,
  ): { port: number; tag: number; laneFds: number[] } {
    this.frontInit();
    const [bound, tag, ...laneFds] =
      lanes > 1
        ? this.native.frontListen(host, port, headMs, exempt ?? '', socks, stamps, -1, lanes)
        : fd === undefined
          ? this.native.frontListen(host, port, headMs, exempt ?? '', socks, stamps)
          : this.native.frontListen(host, port, headMs, exempt ?? '', socks, stamps, fd);
    this.fronts.set(tag!, handler);
    return { port: bound!, tag: tag!, laneFds };
  }

  /** A new descriptor of front listener `tag` for another thread's engine (its frontListen's `fd`); the caller's to close or hand on. */
  frontDup(tag: number): number {
    return this.native.frontDup(tag);
  }

  /**
   * Whether a front listener's connections' SYNs are kept and read for a stamp from now on (frontListen's
   * `stamps`, changed: a SYN that came before is read only if it was kept then). False: no such listener.
   */
  frontStamps(tag: number, on: boolean): boolean {
    return this.native.frontStamps(tag, on);
  }

  /** Closes the listener; connections it handed to JS already stay (their owners end them). */
  frontClose(tag: number): void {
    this.fronts.delete(tag);
    this.native.frontClose(tag);
  }

  /**
   * Connects `fd` (an unconnected socket, ours from here on) to ip:port for connection `id`; once
   * connected `toClient` and `toTarget` go first and the two become a pair under `id`. With
   * `request`, `toTarget` is a request: it is written, and the pair forms once the events' answered()
   * has rewritten the answer's head. 0, or the errno of a connect() that failed at once, or -1 when the
   * connection is gone.
   */
  frontConnect(
    id: number,
    fd: number,
    ip: string,
    port: number,
    timeoutMs: number,
    toTarget: Buffer | null,
    toClient: Buffer | null,
    idleMs: number,
    request = false,
  ): number {
    return this.native.frontConnect(id, fd, ip, port, timeoutMs, toTarget, toClient, idleMs, request);
  }

  /** Writes `bytes` and closes (after the customer's FIN, or 5 s). False: the connection is gone. */
  frontAnswer(id: number, bytes: Buffer): boolean {
    return this.native.frontAnswer(id, bytes);
  }

  /**
   * A SOCKS5 front's connection: writes `bytes` (a handshake answer, may be empty) and reads on; its
   * next bytes come to head() again. False: it is gone, or the bytes could not go whole (end it).
   */
  frontReply(id: number, bytes: Buffer): boolean {
    return this.native.frontReply(id, bytes);
  }

  /** Takes the customer's socket out of the engine: its fd, now the caller's, or -1 when it is gone. */
  frontAdopt(id: number): number {
    this.pairs.delete(id);
    return this.native.frontAdopt(id);
  }

  /** The ms left of a connection's handshake deadline, counted from accept (0 once past); -1: gone. */
  frontHeadLeft(id: number): number {
    return this.native.frontHeadLeft(id);
  }

  frontStats(): FrontStats {
    return this.native.frontStats();
  }

  private readonly onFrontHead: NativeFrontHead = (id, tag, ip, port, bytes, why, stamp) => {
    const h = this.fronts.get(tag);
    if (!h) {
      this.native.kill(id, 1);
      return;
    }
    const events = h.head(id, ip, port, bytes, HEAD_ENDS[why] ?? 'timeout', stamp);
    if (events) this.pairs.set(id, events);
  };

  private readonly onFrontFailed = (id: number, errno: number, answering: boolean): void => {
    const e = this.pairs.get(id);
    if (e && 'failed' in e) e.failed(errno, answering);
  };

  private readonly onFrontAnswered = (id: number, bytes: Buffer): FrontAnswered => {
    const e = this.pairs.get(id);
    return e && 'answered' in e ? e.answered?.(bytes) : undefined;
  };

  /** Closes every pair (no callbacks) and the engine. */
  close(): void {
    this.pairs.clear();
    this.native.close();
  }

  private readonly onDone = (id: number, up: number, down: number, end: number): void => {
    const e = this.pairs.get(id);
    if (!e) return;
    this.pairs.delete(id);
    e.done(up, down, ENDS[end] ?? 'error');
  };

  private readonly onProgress = (moved: Float64Array): void => {
    for (let i = 0; i + 2 < moved.length; i += 3) this.pairs.get(moved[i]!)?.progress(moved[i + 1]!, moved[i + 2]!);
  };
}
