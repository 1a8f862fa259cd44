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
