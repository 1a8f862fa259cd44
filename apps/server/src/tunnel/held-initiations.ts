// Initiations from keys the relay does not know yet, kept for a few seconds so that the peer refresh
// they trigger can answer the very same initiation (a device paired a moment ago whose push did not
// arrive, or that was faster than it) instead of leaving it to the device's next retry.
//
//   unknown key -> dropped by the responder (after MAC1 and the per-source limit) -> hold(newest per endpoint)
//   peer list loaded -> take(known) -> responder.receive again -> reply (its timestamp rule answers it once)
//
// Bounded: the newest initiation per source endpoint (the device waits for its newest one only), at most
// `max` endpoints (oldest dropped), each for at most `ttlMs`. Only the unknown-key path touches it.
import type { Endpoint } from './transport.js';

export interface HeldInitiation {
  readonly frame: Buffer;
  readonly from: Endpoint;
  /** The static key it carried. */
  readonly publicKey: Buffer;
  readonly at: number;
}

export class HeldInitiations {
  private readonly byEndpoint = new Map<string | object, HeldInitiation>();
  held = 0;
  expired = 0;

  constructor(
    private readonly max = 256,
    private readonly ttlMs = 5_000,
  ) {}

  get size(): number {
    return this.byEndpoint.size;
  }

  /** Keeps a copy of `frame` (the receive buffer is reused) as the newest initiation from `from`. */
  hold(frame: Buffer, from: Endpoint, publicKey: Buffer, now: number): void {
    const k = endpointKey(from);
    this.byEndpoint.delete(k); // re-inserted last: the map's order is the age order
    if (this.byEndpoint.size >= this.max) {
      const oldest = this.byEndpoint.keys().next().value;
      if (oldest !== undefined) this.byEndpoint.delete(oldest);
      this.expired++;
    }
    this.byEndpoint.set(k, { frame: Buffer.from(frame), from, publicKey: Buffer.from(publicKey), at: now });
    this.held++;
  }

  /** Removes and returns the initiations whose key is known now; forgets those older than ttlMs. */
  take(isKnown: (publicKey: Buffer) => boolean, now: number): HeldInitiation[] {
    const out: HeldInitiation[] = [];
    for (const [k, h] of this.byEndpoint) {
      if (now - h.at > this.ttlMs) {
        this.byEndpoint.delete(k);
        this.expired++;
      } else if (isKnown(h.publicKey)) {
        this.byEndpoint.delete(k);
        out.push(h);
      }
    }
    return out;
  }
}

function endpointKey(e: Endpoint): string | object {
  return e.kind === 'udp' ? `${e.address}|${e.port}` : e.conn;
}
