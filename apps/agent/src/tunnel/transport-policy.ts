// Which transport the tunnel uses, as a pure state machine over an injected clock.
//
// Rules (docs/protocol.md §6, §9):
//  - start on UDP; while no session is established, switch to the other transport after
//    `fallbackAfterMs` without a handshake response (≈ 2 initiations at the 5 s retry), so a network
//    that blocks UDP ends up on TCP and one that blocks TCP comes back to UDP;
//  - established on TCP: every `udpRetryMs` send one frame over UDP as well; the first authenticated
//    frame that arrives over UDP moves us back to UDP (the relay follows the newest authenticated
//    frame's address, so no handshake is needed either way);
//  - losing the session (dead peer, relay restart) restarts the fallback clock.
export type Transport = 'udp' | 'tcp';

export interface TransportPolicyOptions {
  fallbackAfterMs?: number;
  udpRetryMs?: number;
}

export type PolicyAction = { switchTo?: Transport; probeUdp?: boolean };

export class TransportPolicy {
  mode: Transport = 'udp';
  readonly fallbackAfterMs: number;
  readonly udpRetryMs: number;
  private connectingSince: number | undefined;
  private lastUdpProbeAt = 0;
  /** Switches so far (for stats/logs). */
  switches = 0;

  constructor(o: TransportPolicyOptions = {}, now = 0) {
    this.fallbackAfterMs = o.fallbackAfterMs ?? 10_000;
    this.udpRetryMs = o.udpRetryMs ?? 60_000;
    this.connectingSince = now;
  }

  get connecting(): boolean {
    return this.connectingSince !== undefined;
  }

  tick(now: number): PolicyAction {
    if (this.connectingSince !== undefined) {
      if (now - this.connectingSince >= this.fallbackAfterMs) return { switchTo: this.switchTo(this.mode === 'udp' ? 'tcp' : 'udp', now) };
      return {};
    }
    if (this.mode === 'tcp' && now - this.lastUdpProbeAt >= this.udpRetryMs) {
      this.lastUdpProbeAt = now;
      return { probeUdp: true };
    }
    return {};
  }

  onEstablished(now: number): void {
    this.connectingSince = undefined;
    this.lastUdpProbeAt = now;
  }

  onSessionLost(now: number): void {
    this.connectingSince ??= now;
  }

  /** An authenticated frame arrived over `via`. Returns a switch when UDP works again. */
  onAuthenticated(via: Transport, now: number): Transport | undefined {
    if (via === 'udp' && this.mode === 'tcp') return this.switchTo('udp', now);
    return undefined;
  }

  private switchTo(t: Transport, now: number): Transport {
    this.mode = t;
    this.switches++;
    if (this.connectingSince !== undefined) this.connectingSince = now;
    return t;
  }
}
