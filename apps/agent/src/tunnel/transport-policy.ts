// Which transport the tunnel uses, as a pure state machine over an injected clock.
//
// Rules (docs/protocol.md §6, §9):
//  - start on UDP; while no session is established, switch to the other transport after
//    `fallbackAfterMs` without a handshake response (≈ 2 initiations at the 5 s retry), so a network
//    that blocks UDP ends up on TCP and one that blocks TCP comes back to UDP;
//  - established on TCP: send one frame over UDP as well, 1 s after the session came up, then 2, 4,
//    8, ... s apart, at most `udpRetryMs` (60 s); the first authenticated frame that arrives over UDP
//    moves us back to UDP (the relay follows the newest authenticated frame's address, so no
//    handshake is needed either way). A network that blocks UDP costs ~7 probes in the first minute,
//    then one a minute; one whose UDP was only briefly away is back on UDP within seconds;
//  - losing the session (dead peer, relay restart) restarts the fallback clock.
export type Transport = 'udp' | 'tcp';

export interface TransportPolicyOptions {
  /** No session for this long: try the other transport (default 10 s). */
  fallbackAfterMs?: number;
  /** Longest gap between two UDP probes while on TCP (default 60 s). */
  udpRetryMs?: number;
  /** First UDP probe this long after a session came up on TCP (default 1 s); the gap doubles after each probe. */
  udpRetryFirstMs?: number;
}

export type PolicyAction = { switchTo?: Transport; probeUdp?: boolean };

export class TransportPolicy {
  mode: Transport = 'udp';
  readonly fallbackAfterMs: number;
  readonly udpRetryMs: number;
  readonly udpRetryFirstMs: number;
  private connectingSince: number | undefined;
  private lastUdpProbeAt = 0;
  /** Gap before the next UDP probe while on TCP. */
  private udpProbeGapMs: number;
  /** Switches so far (for stats/logs). */
  switches = 0;

  constructor(o: TransportPolicyOptions = {}, now = 0) {
    this.fallbackAfterMs = o.fallbackAfterMs ?? 10_000;
    this.udpRetryMs = o.udpRetryMs ?? 60_000;
    this.udpRetryFirstMs = Math.min(o.udpRetryFirstMs ?? 1_000, this.udpRetryMs);
    this.udpProbeGapMs = this.udpRetryFirstMs;
    this.connectingSince = now;
  }

  get connecting(): boolean {
    return this.connectingSince !== undefined;
  }

  tick(now: number): PolicyAction {
    if (this.connectingSince !== undefined) {
      if (now - this.connectingSince >= this.fallbackAfterMs)
        return { switchTo: this.switchTo(this.mode === 'udp' ? 'tcp' : 'udp', now) };
      return {};
    }
    if (this.mode === 'tcp' && now - this.lastUdpProbeAt >= this.udpProbeGapMs) {
      this.lastUdpProbeAt = now;
      this.udpProbeGapMs = Math.min(this.udpRetryMs, this.udpProbeGapMs * 2);
      return { probeUdp: true };
    }
    return {};
  }

  /** A handshake completed. A new session (we were connecting) restarts the UDP probe schedule; a rekey does not. */
  onEstablished(now: number): void {
    if (this.connectingSince === undefined) return;
    this.connectingSince = undefined;
    this.lastUdpProbeAt = now;
    this.udpProbeGapMs = this.udpRetryFirstMs;
  }

  /** When the next UDP probe is due (while established on TCP), for logs and tests. */
  get nextUdpProbeAt(): number | undefined {
    return this.mode === 'tcp' && this.connectingSince === undefined
      ? this.lastUdpProbeAt + this.udpProbeGapMs
      : undefined;
  }

  onSessionLost(now: number): void {
    this.connectingSince ??= now;
  }

  /** An authenticated frame arrived over `via`. Returns a switch when UDP works again. */
  onAuthenticated(via: Transport, now: number): Transport | undefined {
    if (via === 'udp' && this.mode === 'tcp') return this.switchTo('udp', now);
    return undefined;
  }

  /**
   * Another lane of this device has a session over `t` (proxy/threads.ts): this lane uses `t` too rather
   * than try the other transport until its own fallback timer. Returns whether the mode changed.
   */
  adopt(t: Transport, now: number): boolean {
    if (this.mode === t) return false;
    this.switchTo(t, now);
    return true;
  }

  private switchTo(t: Transport, now: number): Transport {
    this.mode = t;
    this.switches++;
    if (this.connectingSince !== undefined) this.connectingSince = now;
    return t;
  }
}
