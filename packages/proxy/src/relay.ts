// Byte pump between the customer socket and the target socket.
//
// Both sockets are created with allowHalfOpen, and each direction forwards its FIN on its own, so a
// client that shuts down its sending side still receives the whole answer. Our own pump instead of
// pipe(): the same backpressure (pause on a full write buffer, resume on 'drain') plus meter waits,
// counted per readable (limits/flow.ts) so the two never undo each other. Without a meter the
// per-chunk work is one write() and its return check, as with pipe(); byte counts come from the
// kernel-facing counters (bytesRead/bytesWritten) at the end.
import type { ProxySocket } from './socket.js';
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
}

export function relay(
  client: ProxySocket,
  target: ProxySocket,
  opts: RelayOptions,
  done: (r: RelayResult) => void,
): void {
  const meter = opts.meter;
  // Budget spent: no in-band answer is possible mid-stream, so both sides go at once.
  const kill = (): void => {
    client.destroy();
    target.destroy();
  };
  const up = pump(client, target, 'up', meter, kill);
  const down = pump(target, client, 'down', meter, kill);
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
}

/** One direction. Returns the metered feed (null without a meter: the plain path has no per-chunk extras). */
function pump(
  src: ProxySocket,
  dst: ProxySocket,
  dir: Direction,
  meter: Meter | undefined,
  kill: () => void,
): MeteredFeed | null {
  const hold = new Hold(src);
  let drainWait = false;
  const write = (chunk: Buffer): void => {
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
  if (!meter) {
    src.on('data', write);
    src.on('end', () => dst.end());
    return null;
  }
  const feed = new MeteredFeed(meter, dir, hold, write, kill);
  src.on('data', feed.push);
  // The FIN goes after the bytes the meter still holds back.
  src.on('end', () => feed.whenFlushed(() => dst.end()));
  return feed;
}
