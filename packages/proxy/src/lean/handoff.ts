// Handoff: once a CONNECT / SOCKS5 tunnel is established (customer authenticated, target
// connected, the success reply written), its two LeanSockets can leave JS: a native engine
// (@pocketproxy/tun SpliceEngine: splice() kernel to kernel, epoll in C++) relays their bytes until
// both FINs have passed, an error, the idle timeout or a kill. A short request then costs the
// proxy no JS work after its reply except the one call at the end, and a bulk stream no copies.
//
// Taken only when nothing of either socket lives in JS except bytes read and kept (handoffFd), and
// the connection's meter is unlimited (Meter.unlimited: no byte budget, no rate limit). Bytes are
// then counted after they moved: at most a second later (the engine's progress report) and at the
// end. A budget or a rate limit set while the pair runs ends it at its next report (within a second
// of moving bytes): the customer's next tunnel runs under the limit in the JS pump.
// Otherwise relay.ts pumps in JS, as before. Everything the rest of the proxy sees stays the same:
// the sockets' destroy() / resetAndDestroy() (revocation, max_connections, shutdown) kill the pair,
// 'close' comes once per socket at the end, bytesRead / bytesWritten hold the whole life's counts.
import type { Meter } from '../types.js';
import type { ProxySocket } from '../socket.js';
import { LeanSocket } from './socket.js';

/** How a native pair ended (@pocketproxy/tun SpliceEnd). */
export type PairEnd = 'clean' | 'error' | 'idle';

/** What the proxy needs of a native pair engine; @pocketproxy/tun's SpliceEngine has this shape. */
export interface PairEngine {
  start(
    o: {
      clientFd: number;
      targetFd: number;
      toTarget?: Buffer | null;
      toClient?: Buffer | null;
      clientEnded?: boolean;
      targetEnded?: boolean;
      idleMs?: number;
      resetOnError?: boolean;
    },
    events: { progress(up: number, down: number): void; done(up: number, down: number, end: PairEnd): void },
  ): number;
  kill(id: number, reset?: { client?: boolean; target?: boolean }): readonly [number, number] | null;
  /** One answer body of known length to a client that stays in JS (@pocketproxy/tun SpliceEngine.lend). */
  lend?(
    o: { clientFd: number; targetFd: number; toClient?: Buffer | null; length: number; idleMs?: number },
    events: { progress(up: number, down: number): void; done(up: number, down: number, end: PairEnd): void },
  ): number;
}

export interface HandoffRequest {
  readonly first?: Buffer;
  readonly idleTimeoutMs?: number;
  readonly meter?: Meter;
  readonly onIdle?: () => void;
  /** A side that fails or is reset takes the other down with a reset (default: a close, as relay.ts). */
  readonly resetOnError?: boolean;
}

/**
 * Takes the pair (true; `done` follows at its end) or declines (false: nothing changed). `body`, when
 * the engine can lend: the same engine for one answer body of an absolute-form request (BodyHandoff).
 */
export type RelayHandoff = ((
  client: ProxySocket,
  target: ProxySocket,
  req: HandoffRequest,
  done: (r: { bytesIn: number; bytesOut: number }) => void,
) => boolean) & { readonly body?: BodyHandoff };

export interface BodyHandoffRequest {
  /** The answer's head and the body bytes read with it, for the customer first. */
  readonly toClient: Buffer;
  /** Body bytes still to come from the origin. */
  readonly length: number;
  readonly idleTimeoutMs?: number;
  readonly meter?: Meter;
  /** The body is delivered (ok), or it ended early: 'error' (the origin cut it, the customer failed) or 'idle'. */
  readonly done: (end: PairEnd) => void;
}

/**
 * Offers the rest of an answer body of known length (http/forward.ts): the engine moves it from the
 * origin's socket to the customer's kernel to kernel while the customer's connection stays in JS for
 * its next request (keep-alive). Taken (true) only when both are LeanSockets with nothing in flight,
 * the origin's socket holds no kept bytes or FIN, and the meter is unlimited; the origin's socket is
 * then the engine's (its destroy() ends the transfer, without `done`), and the customer's must not be
 * written to until `done`. Declined (false): nothing changed.
 */
export type BodyHandoff = (client: ProxySocket, origin: ProxySocket, req: BodyHandoffRequest) => boolean;

export interface HandoffStats {
  /** Pairs handed to the engine / declined (a limited meter, a socket with JS state, the engine refused). */
  handedOff: number;
  declined: number;
  /** Answer bodies lent to the engine (BodyHandoff), when counted. */
  bodiesLent?: number;
}

export function createHandoff(engine: PairEngine, stats: HandoffStats = { handedOff: 0, declined: 0 }): RelayHandoff {
  const pair = (
    client: ProxySocket,
    target: ProxySocket,
    req: HandoffRequest,
    done: (r: { bytesIn: number; bytesOut: number }) => void,
  ): boolean => {
    const meter = req.meter;
    const c = client instanceof LeanSocket ? client : null;
    const t = target instanceof LeanSocket ? target : null;
    const cfd = c?.handoffFd() ?? null;
    const tfd = t?.handoffFd() ?? null;
    if (!c || !t || cfd === null || tfd === null || (meter && meter.unlimited?.() !== true)) {
      stats.declined++;
      return false;
    }
    const ck = c.keptForHandoff();
    const tk = t.keptForHandoff();
    const first = req.first && req.first.length > 0 ? req.first : null;
    const toTarget = first && ck.bytes ? Buffer.concat([first, ck.bytes]) : (first ?? ck.bytes);
    const toTargetLen = toTarget?.length ?? 0;
    const toClientLen = tk.bytes?.length ?? 0;
    // What the engine reported so far (progress), and whether the pair is over.
    let upTotal = 0;
    let downTotal = 0;
    let over = false;
    const finish = (up: number, down: number, err: boolean, later: boolean): void => {
      if (over) return;
      over = true;
      charge(up, down);
      upTotal += up;
      downTotal += down;
      c.nativeClosed(upTotal, downTotal + toClientLen, err, later);
      t.nativeClosed(downTotal, upTotal + toTargetLen, err, later);
      done({ bytesIn: c.bytesRead, bytesOut: c.bytesWritten });
    };
    // -1: the budget is spent (one was set after the handoff): the pair ends now.
    const charge = (up: number, down: number): boolean =>
      !meter || ((up === 0 || meter.take('up', up) !== -1) && (down === 0 || meter.take('down', down) !== -1));
    const kill = (reset: { client?: boolean; target?: boolean }): void => {
      const left = engine.kill(id, reset);
      finish(left?.[0] ?? 0, left?.[1] ?? 0, false, true);
    };
    let id: number;
    try {
      id = engine.start(
        {
          clientFd: cfd,
          targetFd: tfd,
          toTarget,
          toClient: tk.bytes,
          clientEnded: ck.ended,
          targetEnded: tk.ended,
          idleMs: req.idleTimeoutMs ?? 0,
          resetOnError: req.resetOnError ?? false,
        },
        {
          progress: (up, down) => {
            upTotal += up;
            downTotal += down;
            // A limit set since the handoff (budget or rate) cannot be applied out here: the pair
            // ends, and the customer's next tunnel runs under it in the JS pump.
            if (!charge(up, down) || meter?.unlimited?.() === false) kill({});
          },
          done: (up, down, end) => {
            if (end === 'idle') req.onIdle?.();
            finish(up, down, end === 'error', false);
          },
        },
      );
    } catch {
      // EMFILE and the like: the JS pump still can.
      stats.declined++;
      return false;
    }
    stats.handedOff++;
    c.handedOff((reset) => kill({ client: reset }));
    t.handedOff((reset) => kill({ target: reset }));
    // The bytes JS read and hands over count as relayed now, as the JS pump would count them.
    charge(toTargetLen, toClientLen);
    return true;
  };
  return engine.lend ? Object.assign(pair, { body: bodyHandoff(engine, engine.lend.bind(engine), stats) }) : pair;
}

function bodyHandoff(engine: PairEngine, lend: NonNullable<PairEngine['lend']>, stats: HandoffStats): BodyHandoff {
  return (client, origin, req) => {
    const meter = req.meter;
    const c = client instanceof LeanSocket ? client : null;
    const o = origin instanceof LeanSocket ? origin : null;
    const cfd = c?.handoffFd() ?? null;
    const ofd = o?.handoffFd() ?? null;
    if (!c || !o || cfd === null || ofd === null || (meter && meter.unlimited?.() !== true)) return false;
    const kept = o.keptForHandoff();
    if (kept.bytes !== null || kept.ended) return false;
    let down = 0;
    let over = false;
    // Bytes count as they reach the customer's socket: the meter (usage) once a second and at the end,
    // the customer socket's bytesWritten at the end, as if JS had written them.
    const finish = (moved: number, end: PairEnd, later: boolean): void => {
      if (over) return;
      over = true;
      if (moved > 0) meter?.take('down', moved);
      down += moved;
      c.bytesWritten += down + req.toClient.length;
      // The customer socket's own idle timeout again (the proxy's next state may keep or change it).
      if (!later && req.idleTimeoutMs) c.setTimeout(req.idleTimeoutMs);
      // `done` first: the origin socket's 'close' (nativeClosed) must find the answer settled.
      if (!later) req.done(end);
      o.nativeClosed(down, 0, end === 'error', later);
    };
    let id: number;
    try {
      id = lend(
        { clientFd: cfd, targetFd: ofd, toClient: req.toClient, length: req.length, idleMs: req.idleTimeoutMs ?? 0 },
        {
          progress: (_up, moved) => {
            down += moved;
            // A budget or rate limit set meanwhile: the answer cannot go on unmetered; the customer
            // connection ends (its body is cut, as a budget spent in the JS path cuts it).
            if ((meter && meter.take('down', moved) === -1) || meter?.unlimited?.() === false) {
              engine.kill(id);
              finish(0, 'error', false);
            }
          },
          done: (_up, moved, end) => finish(moved, end, false),
        },
      );
    } catch {
      return false;
    }
    stats.bodiesLent = (stats.bodiesLent ?? 0) + 1;
    // The origin's socket is the engine's now; its destroy() (the customer gone, a revocation) ends the transfer.
    o.handedOff(() => {
      const left = engine.kill(id);
      finish(left?.[1] ?? 0, 'error', true);
    });
    // The customer's socket stays ours: no timeout of its own while the engine writes (the engine's idle one
    // applies); it is set again at the end.
    c.setTimeout(0);
    return true;
  };
}
