// Fast detection of a relay that forgot us (restart): the protocol's dead-peer timer is 30 s, but
// a restarted relay answers nothing at all (unknown index), and customers should not wait that long.
//
// Rule: when the relay has been silent for `probeIdleMs`, send a probe (an ICMP echo to the relay's
// tunnel address, which its kernel answers through the tunnel); if anything we sent stays without
// any authenticated frame back for `replyTimeoutMs`, the session is presumed lost → re-handshake.
// With the defaults (2 s + 3 s) a silent relay is noticed within ~5 s.
//
// Safety valve: if a relay does not answer probes (ICMP filtered on its side), every re-handshake
// would succeed and then time out again. After `maxFalseAlarms` re-handshakes in a row that each
// completed at once, we fall back to the relay's own 10 s keepalive: the window becomes
// `slowTimeoutMs` of silence, until some probe is answered again.
export interface LivenessOptions {
  probeIdleMs?: number;
  replyTimeoutMs?: number;
  slowTimeoutMs?: number;
  maxFalseAlarms?: number;
}

export type LivenessAction = 'probe' | 'restart' | null;

export class Liveness {
  readonly probeIdleMs: number;
  readonly replyTimeoutMs: number;
  readonly slowTimeoutMs: number;
  readonly maxFalseAlarms: number;
  private lastRecvAt = 0;
  private lastProbeAt = 0;
  private unansweredSince: number | undefined;
  private probeOutstanding = false;
  private restartedAt: number | undefined;
  falseAlarms = 0;
  slow = false;
  restarts = 0;

  constructor(o: LivenessOptions = {}) {
    this.probeIdleMs = o.probeIdleMs ?? 2_000;
    this.replyTimeoutMs = o.replyTimeoutMs ?? 3_000;
    this.slowTimeoutMs = o.slowTimeoutMs ?? 15_000;
    this.maxFalseAlarms = o.maxFalseAlarms ?? 2;
  }

  onEstablished(now: number): void {
    this.lastRecvAt = now;
    this.unansweredSince = undefined;
    this.probeOutstanding = false;
  }

  onAuthenticated(now: number): void {
    if (this.probeOutstanding) {
      // A probe got an answer: the relay answers probes, fast detection is trustworthy.
      this.falseAlarms = 0;
      this.slow = false;
      this.restartedAt = undefined;
    }
    this.lastRecvAt = now;
    this.unansweredSince = undefined;
    this.probeOutstanding = false;
  }

  /** A transport frame (data, keepalive, probe) went out on the established session. */
  onSent(now: number): void {
    this.unansweredSince ??= now;
  }

  tick(now: number): LivenessAction {
    const timedOut = this.slow
      ? this.unansweredSince !== undefined && now - this.lastRecvAt >= this.slowTimeoutMs
      : this.unansweredSince !== undefined && now - this.unansweredSince >= this.replyTimeoutMs;
    if (timedOut) {
      // A restart that followed soon after the previous one's handshake looks like a false alarm.
      if (
        this.restartedAt !== undefined &&
        now - this.restartedAt <= this.replyTimeoutMs + this.probeIdleMs * 2 + 1_000
      )
        this.falseAlarms++;
      else this.falseAlarms = 0;
      if (this.falseAlarms >= this.maxFalseAlarms) this.slow = true;
      this.restartedAt = now;
      this.restarts++;
      this.unansweredSince = undefined;
      this.probeOutstanding = false;
      return 'restart';
    }
    const idle = this.slow ? this.slowTimeoutMs / 2 : this.probeIdleMs;
    if (now - Math.max(this.lastRecvAt, this.lastProbeAt) >= idle) {
      this.lastProbeAt = now;
      this.probeOutstanding = true;
      this.onSent(now);
      return 'probe';
    }
    return null;
  }
}
