// Byte pump between the customer socket and the target socket.
//
// Both sockets are created with allowHalfOpen, and each direction forwards its FIN on its own, so a
// client that shuts down its sending side still receives the whole answer. Our own pump instead of
// pipe(): the same backpressure (pause on a full write buffer, resume on 'drain') plus meter waits,
// counted per readable (limits/flow.ts) so the two never undo each other. Without a meter the
// per-chunk work is one write() and its return check, as with pipe(); byte counts come from the
// kernel-facing counters (bytesRead/bytesWritten) at the end.
//
// Segment economy toward the client (only with `beforeEnd`): a short answer through a tunnel is
// often its bytes and the target's FIN, read in two turns of the event loop (libuv reports the EOF
// on the poll after the read that emptied the socket). Written as they come, they leave as two
// segments; on the agent each is a sealed tunnel frame and a datagram. So a small chunk toward the
// client is held until the end of the next loop turn: if the target's EOF comes within it,
// `beforeEnd` corks the client socket (TCP_CORK) and the chunk and the FIN leave in one segment;
// otherwise, or as soon as more bytes follow, it is written. Held: at most one chunk of at most
// TAIL_MAX bytes, below a write's high-water mark, so holding never hides backpressure; and only
// TAIL_TRIES times per connection, so a stream (whose FIN is not behind its bytes) pays nothing.
import type { ProxySocket } from './socket.js';
import type { RelayHandoff } from './lean/handoff.js';
import { handoffByDefault } from './lean/default.js';
import { Hold, MeteredFeed } from './limits/flow.js';
import type { Direction, Meter } from './types.js';

export interface RelayResult {
  /** Bytes read from the client over the socket's whole life (handshake included). */
  readonly bytesIn: number;
  readonly bytesOut: number;
}

export interface RelayOptions {
  /** Destroy both sides after this long without traffic in either direction (0 = never). */
  readonly idleTimeoutMs?: number;
  /** Charged for every byte: up = client -> target, down = target -> client. */
  readonly meter?: Meter;
  /** Bytes already read from the client (sent right behind the handshake); forwarded first. */
  readonly first?: Buffer;
  /** The idle timeout fired (both sides are being destroyed). */
  readonly onIdle?: () => void;
  /**
   * Called just before the relay ends `client` while the target's last bytes are still held back
   * (see the top of this file); the agent sets TCP_CORK there, so those bytes and the FIN leave in
   * one segment. Without it no bytes are held.
   */
  readonly beforeEnd?: (client: ProxySocket) => void;
  /**
   * Offered the pair first (lean/handoff.ts: a native engine relays it kernel to kernel when both
   * are LeanSockets with no JS state and the meter is unlimited); when it declines, the pump below runs.
   * Default: lean/default.ts useHandoff (none).
   */
  readonly handoff?: RelayHandoff;
}

/** Largest chunk held back for its FIN (an answer's tail; bulk reads are up to 64 KiB). */
export const TAIL_MAX = 16 * 1024;
/** How many chunks a direction may hold in its life: after that it is a stream, written as it comes. */
export const TAIL_TRIES = 4;

/**
 * Bytes a client sent right behind its handshake go to the target at once, before the caller answers
 * the handshake, when nothing may hold them back (no meter, or an unlimited one): the target starts on
 * them while the answer is on its way to the client. The transparent proxy for OpenVPN customers sends
 * the customer's request behind its CONNECT / SOCKS5 CONNECT; written after the answer, it reached the
 * target ~0.13 ms later on this lab's device. Counted on the meter as relay() would. Returns what is
 * left for relay()'s `first`: nothing, or all of it when a limit applies (the metered pump charges and
 * paces it).
 */
export function forwardEarly(target: ProxySocket, first: Buffer, meter: Meter | undefined): Buffer {
  if (first.length === 0 || (meter && meter.unlimited?.() !== true)) return first;
  meter?.take('up', first.length);
  target.write(first);
  return first.subarray(first.length);
}

export function relay(
  client: ProxySocket,
  target: ProxySocket,
  opts: RelayOptions,
  done: (r: RelayResult) => void,
): void {
  const meter = opts.meter;
  const handoff = opts.handoff ?? handoffByDefault();
  if (handoff?.(client, target, opts, done)) return;
  // Budget spent: no in-band answer is possible mid-stream, so both sides go at once.
  const kill = (): void => {
    client.destroy();
    target.destroy();
  };
  const [up, upEnd] = pump(client, target, 'up', meter, kill);
  const [down] = pump(target, client, 'down', meter, kill, opts.beforeEnd);
  let open = 2;
  const finish = (): void => {
    if (--open > 0) return;
    up?.stop();
    down?.stop();
    done({ bytesIn: client.bytesRead, bytesOut: client.bytesWritten });
  };
  // A side that closes without having seen its readable end was torn down (reset, error,
  // destroy()): take the other side with it. A clean close (both FINs) lets the other drain.
  const onClose = (self: ProxySocket, other: ProxySocket) => () => {
    if (!self.readableEnded || self.errored) other.destroy();
    finish();
  };
  client.once('close', onClose(client, target));
  target.once('close', onClose(target, client));
  client.on('error', () => target.destroy());
  target.on('error', () => client.destroy());
  const idleMs = opts.idleTimeoutMs ?? 0;
  if (idleMs > 0) {
    // setTimeout on a socket is re-armed by socket activity without extra timers per chunk. A
    // socket silent because the meter holds (or just held) it is throttled, not idle: re-arm.
    const onTimeout = (self: ProxySocket) => (): void => {
      if (up?.throttledWithin(idleMs) || down?.throttledWithin(idleMs)) return void self.setTimeout(idleMs);
      opts.onIdle?.();
      kill();
    };
    client.on('timeout', onTimeout(client));
    target.on('timeout', onTimeout(target));
    client.setTimeout(idleMs);
    target.setTimeout(idleMs);
  }
  // Either may have been paused by the handshake (the client while we dialed). Resume first: from
  // here on only the pumps' holds pause them (resume() takes effect on the next tick, so a hold
  // taken below for the early bytes still wins).
  client.resume();
  target.resume();
  if (opts.first && opts.first.length > 0) {
    if (up) up.push(opts.first);
    else target.write(opts.first);
  }
  // The client's FIN came with its handshake (a net.Socket emits 'end' even while paused), before
  // this relay listened for it: it follows the first bytes.
  if (client.readableEnded) upEnd();
}

/**
 * One direction. Returns the metered feed (null without a meter: the plain path has no per-chunk
 * extras) and what the source's 'end' does (the FIN after every byte, for a FIN seen before).
 */
function pump(
  src: ProxySocket,
  dst: ProxySocket,
  dir: Direction,
  meter: Meter | undefined,
  kill: () => void,
  beforeEnd?: (dst: ProxySocket) => void,
): [MeteredFeed | null, () => void] {
  const hold = new Hold(src);
  let drainWait = false;
  const send = (chunk: Buffer): void => {
    if (!dst.write(chunk) && !drainWait) {
      drainWait = true;
      hold.hold();
    }
  };
  dst.on('drain', () => {
    if (!drainWait) return;
    drainWait = false;
    hold.release();
  });
  let write = send;
  let end = (): void => void dst.end();
  if (beforeEnd) {
    const tail = new Tail(dst, send, beforeEnd);
    write = tail.write;
    end = tail.end;
  }
  if (!meter) {
    src.on('data', write);
    src.on('end', end);
    return [null, end];
  }
  const feed = new MeteredFeed(meter, dir, hold, write, kill);
  src.on('data', feed.push);
  // The FIN goes after the bytes the meter still holds back.
  const flushedEnd = (): void => feed.whenFlushed(end);
  src.on('end', flushedEnd);
  return [feed, flushedEnd];
}

/** Holds a direction's last small chunk for its FIN (see the top of this file). */
class Tail {
  private held: Buffer | null = null;
  /** The held chunk came after the armed immediate was queued: it waits for one more poll. */
  private fresh = false;
  private armed = false;
  /** Chunks it may still hold: a short answer's tail is one of its first few reads, a stream's never. */
  private tries = TAIL_TRIES;

  constructor(
    private readonly dst: ProxySocket,
    private readonly send: (chunk: Buffer) => void,
    private readonly beforeEnd: (dst: ProxySocket) => void,
  ) {}

  readonly write = (chunk: Buffer): void => {
    // More bytes within the window: what was held goes first, in order.
    if (this.held) this.flush();
    if (chunk.length > TAIL_MAX || this.tries === 0) return void this.send(chunk);
    this.tries--;
    this.held = chunk;
    this.fresh = true;
    if (!this.armed) {
      this.armed = true;
      setImmediate(this.turn);
    }
  };

  readonly end = (): void => {
    if (this.held && !this.dst.destroyed) {
      this.beforeEnd(this.dst);
      this.flush();
    }
    this.dst.end();
  };

  /**
   * The check phase. An immediate queued here runs in the next turn's check phase, after its poll:
   * by then libuv has reported an EOF that was already waiting behind the held bytes.
   */
  private readonly turn = (): void => {
    if (this.held && this.fresh) {
      this.fresh = false;
      setImmediate(this.turn);
      return;
    }
    this.armed = false;
    if (this.held) this.flush();
  };

  private flush(): void {
    const h = this.held!;
    this.held = null;
    if (!this.dst.destroyed && this.dst.writable) this.send(h);
  }
}
