// The agent tunnel's native routes: which packets skip JS and go through the addon (@pocketproxy/tun)
// in C++, and the bookkeeping that keeps JS's timers and counters aware of them. One home for every
// native route kind of the agent's tunnel (today the seal route; an open route would sit beside it).
//
// Seal route: the agent has one peer, the relay, so once the tunnel is established over UDP with the
// native AEAD, every IPv4 packet read from the TUN would be sealed on the current session and sent to
// the relay's address and port from the tunnel's UDP socket. The TUN's 'default' seal route does
// exactly that in the read callback, without a call into JS (each one after the loop slept costs
// ~100-200 us here: docs/benchmarks.md, issue 13). The route is a cache of JS's choice: `sync`
// (after anything that may change it, and every tick) sets it to the current session and relay
// endpoint, or removes it when there is none, when the transport is TCP, when the session expired,
// on stop. A missing route only costs the JS path; a stale one would send where JS would not, so
// the client calls sync before it returns from every entry point that can change the choice.
//
// What C++ checks by itself per packet: the session's counter limit and reject-after time (then the
// packet goes to JS, which will not send either). What JS must learn from it: native frames count as
// sent for the keepalive (Initiator.noteSent) and for the relay liveness probe (Liveness.onSent), and
// in framesOut.udp. They are read as the TUN's sealNative count once per tick and dated to that tick:
// the liveness window starts at most one tick late, a keepalive is never sent while native frames flow.
//
// Open route (the other direction, same conditions): the tunnel's UDP socket gets the current
// session's receive state under our index (BatchUdpSocket.openPath), so a frame from the relay's
// address and port that authenticates on it and holds an IPv4 packet is written to the TUN in C++
// (any inner source: the relay forwards customers' packets). Keepalives, messages, replays and
// frames of the previous session still reach JS. The replay window is the session's own memory, so
// neither side accepts a counter the other did. What JS learns: the session's nativeReceivedAt
// (Initiator.tick counts it as heard; the client tells Liveness once per tick, takeHeard) and the
// socket's openNative count (framesIn.udp).
import type { TransportSession, TunnelTimers } from '@pocketproxy/protocol';
import type { BatchUdpSocket, OpenPath, SealPath } from '@pocketproxy/tun';
import type { Transport } from './transport-policy.js';

/** What the TUN offers the tunnel client (a kernel TUN, or FakeTun in tests). */
export interface NativeSealIo {
  /** The TUN's seal path, sending from the tunnel's UDP socket (one per TUN; a second call replaces it). */
  sealPath(udp: BatchUdpSocket): SealPath;
  /** Packets the seal path sealed and handed to the socket so far (TunStats.sealNative). */
  sealed(): number;
  /** The socket's open path into the TUN (kernel TUN only; absent: every frame through JS). */
  openPath?(udp: BatchUdpSocket): OpenPath | undefined;
}

/** What JS would do with an IPv4 packet from the TUN right now. */
export interface SealInputs {
  running: boolean;
  transport: Transport;
  session: TransportSession | undefined;
  /** The relay's resolved address (undefined before it is known) and the tunnel port. */
  relay: { address: string } | undefined;
  relayPort: number;
  timers: TunnelTimers;
  now: number;
}

interface SealRoute {
  session: TransportSession;
  address: string;
  port: number;
}

/** The route JS's choice implies, or undefined when JS would not send it over UDP on a live native session. */
export function sealRouteFor(i: SealInputs): SealRoute | undefined {
  const s = i.session;
  if (!i.running || i.transport !== 'udp' || !s || !i.relay) return undefined;
  // Only the native provider's key objects can be used from C++.
  if (s.aeadName !== 'openssl-native' || s.expired(i.now, i.timers)) return undefined;
  return { session: s, address: i.relay.address, port: i.relayPort };
}

export class NativeRoutes {
  private seal: SealPath | undefined;
  private route: SealRoute | undefined;
  private open: OpenPath | undefined;
  private udp: BatchUdpSocket | undefined;
  private heardAt = 0;
  private openedBefore = 0;
  private sealedAtTake = 0;
  private sealedBefore = 0;
  /** Times a seal route was set (tests and logs). */
  installs = 0;

  /** `io` undefined: no native path (node:dgram, a TUN without one, or POCKETPROXY_NATIVE_SEAL=0). */
  constructor(private readonly io: NativeSealIo | undefined) {}

  /** The tunnel's native UDP socket is open: seal routes may send from it. */
  attach(udp: BatchUdpSocket): void {
    if (!this.io) return;
    this.detach();
    this.seal = this.io.sealPath(udp);
    this.open = this.io.openPath?.(udp);
    this.udp = udp;
    this.openedBefore = udp.stats().openNative;
  }

  /** The socket goes away (stop): no route, nothing sealed natively from now on. */
  detach(): void {
    this.seal?.clear();
    this.seal = undefined;
    this.route = undefined;
    this.open?.clear();
    this.open = undefined;
    this.udp = undefined;
  }

  /** Whether frames from the relay are opened in C++ now (the open route is set beside the seal route). */
  get opening(): boolean {
    return this.route !== undefined && this.open !== undefined;
  }

  /** Frames the socket opened natively since it was attached. */
  get openedTotal(): number {
    return this.udp ? this.udp.stats().openNative - this.openedBefore : 0;
  }

  /** True when the open route authenticated a frame since the last call (the client tells Liveness per tick). */
  takeHeard(): boolean {
    const at = this.opening ? this.route!.session.nativeReceivedAt : 0;
    if (at <= this.heardAt) return false;
    this.heardAt = at;
    return true;
  }

  /** Whether packets read from the TUN are being sealed in C++ now. */
  get sealing(): boolean {
    return this.route !== undefined;
  }

  /** Makes the seal route and the open route beside it what `i` implies; cheap when nothing changed. */
  sync(i: SealInputs): void {
    if (!this.seal) return;
    const want = sealRouteFor(i);
    const r = this.route;
    if (r && want && r.session === want.session && r.address === want.address && r.port === want.port) return;
    if (r) {
      this.seal.delete('default');
      this.open?.delete(r.session.localIndex);
      this.route = undefined;
    }
    if (!want) return;
    try {
      this.seal.set('default', want.session.sendState(i.timers), want.address, want.port);
      this.open?.set(want.session.receiveState(i.timers), want.address, want.port);
    } catch {
      // e.g. a re-resolved relay address of the other family than the socket: JS (which fails to send too).
      this.seal.delete('default');
      return;
    }
    this.route = want;
    this.installs++;
  }

  /** Frames sealed natively since the last call (the client tells its timers about them per tick). */
  takeSealed(): number {
    const total = this.io ? this.io.sealed() : 0;
    const n = total - this.sealedAtTake;
    this.sealedAtTake = total;
    return Math.max(n, 0);
  }

  /** Frames sealed natively since this client started (its TUN may have counted some before). */
  get sealedTotal(): number {
    return this.io ? this.io.sealed() - this.sealedBefore : 0;
  }

  /** Counts from here (the TUN's count at the client's start). */
  resetCount(): void {
    this.sealedBefore = this.sealedAtTake = this.io ? this.io.sealed() : 0;
  }
}
