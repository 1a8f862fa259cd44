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
  /** The handshake to write, with `peeked` behind it; undefined (only when not `final`): read more; null: refuse. */
  hello(
    clientIp: string,
    deviceIp: string,
    devicePort: number,
    dstIp: string,
    dstPort: number,
    peeked: Buffer,
    final: boolean,
  ): Buffer | undefined | null;
  /** The device's answer's length once complete; -1: more is needed; -2: refused. */
  answered(socks5: boolean, bytes: Buffer): number;
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
}

export interface TransparentListenStats {
  readonly accepted: number;
  readonly refused: number;
  readonly failed: number;
  /** Customer connections open: waiting (peek or handshake) plus joined. */
  readonly active: number;
  /** Joined pairs since the start. */
  readonly spliced: number;
  readonly waiting: number;
}

export class SpliceEngine {
  private readonly native: NativeSpliceRelay;
  private readonly pairs = new Map<number, SplicePairEvents>();

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
