// The heartbeat: every heartbeat_interval_s (server-controlled, default 30 s) report metrics, the
// public address and usage; the answer carries commands waiting for us and the credentials version.
import type { Logger } from 'pino';
import type { HeartbeatBody, HeartbeatReply } from '../api-client.js';
import type { Metrics } from './metrics.js';
import type { UsageMeter } from './usage.js';
import type { ListenerStats } from '../proxy/listeners.js';

export interface HeartbeatDeps {
  send: (body: HeartbeatBody) => Promise<HeartbeatReply>;
  metrics: () => Promise<Metrics>;
  publicIp: () => Promise<string>;
  usage: UsageMeter;
  /** The proxies' counters (slow clients, refusals), reported as `proxy`. */
  proxyStats?: () => ListenerStats | undefined;
  /** The tunnel's transport now, when it is up. */
  transport?: () => 'udp' | 'tcp' | undefined;
  /** The command types this agent can run (its driver's; ops/rotation.ts commandCapabilities). */
  capabilities?: readonly string[];
  /** Runs the usage drain and the send one at a time with credential fetches (agent.ts). */
  oneAtATime?: <T>(f: () => Promise<T>) => Promise<T>;
  onReply: (reply: HeartbeatReply) => void;
  agentVersion: string;
  startedAt: number;
  now?: () => number;
  logger: Logger;
  intervalS?: number;
  /**
   * How often the loop looks whether the process was frozen (ms, default 1000), and the gap between two
   * looks that says it was (default 5000): see HeartbeatLoop.
   */
  resumeCheckMs?: number;
  resumeGapMs?: number;
}

/** Everything but usage (slow: metrics and the public address are looked up). */
export async function buildHeartbeat(
  d: Pick<
    HeartbeatDeps,
    'metrics' | 'publicIp' | 'agentVersion' | 'startedAt' | 'now' | 'proxyStats' | 'transport' | 'capabilities'
  >,
): Promise<HeartbeatBody> {
  const now = d.now ?? Date.now;
  const [metrics, ip] = await Promise.all([d.metrics().catch(() => ({})), d.publicIp().catch(() => null)]);
  const p = d.proxyStats?.();
  const transport = d.transport?.();
  return {
    metrics,
    public_ip: ip,
    agent_version: d.agentVersion,
    uptime_s: Math.max(0, Math.floor((now() - d.startedAt) / 1000)),
    usage: [],
    ...(transport ? { tunnel_transport: transport } : {}),
    ...(d.capabilities ? { capabilities: [...d.capabilities] } : {}),
    ...(p
      ? {
          proxy: {
            listeners: p.listeners,
            open: p.open,
            admitted: p.admitted,
            handshake_timeouts: p.handshakeTimeouts,
            idle_closed: p.idleClosed,
            auth_failures: p.authFailures,
            denied: p.denied,
            unauth_refused_per_address: p.unauthRefusedPerAddress,
            unauth_refused_total: p.unauthRefusedTotal,
            unauth_active: p.unauthActive,
            listen_failures: p.listenFailures,
          },
        }
      : {}),
  };
}

/**
 * The heartbeat's loop. A process that was frozen (a phone's doze or suspend, SIGSTOP, a paused VM) and
 * runs again beats at once: in the meantime the API may have declared it offline (no heartbeat for
 * `POCKETPROXY_STALE_AFTER_S`) and the relay closed its ports while its tunnel session lived on, so it
 * would stay unreachable until its next heartbeat, up to an interval later (30 s by default). A timer that
 * fires every second notices the freeze by the wall clock's jump between two of its firings.
 */
export class HeartbeatLoop {
  private timer: NodeJS.Timeout | undefined;
  private watch: NodeJS.Timeout | undefined;
  private watchedAt = 0;
  /** Heartbeats sent because the process had been frozen. */
  resumes = 0;
  private stopped = true;
  intervalS: number;
  lastPublicIp: string | null = null;
  lastOkAt: number | undefined;
  private inFlight: Promise<void> | undefined;
  /** Bumped when the public address may have changed under a heartbeat being built (addressChanged). */
  private ipEpoch = 0;

  constructor(private readonly d: HeartbeatDeps) {
    this.intervalS = d.intervalS ?? 30;
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
    const now = this.d.now ?? Date.now;
    const gapMs = this.d.resumeGapMs ?? 5_000;
    this.watchedAt = now();
    if (this.watch) clearInterval(this.watch);
    this.watch = setInterval(() => {
      const t = now();
      const gap = t - this.watchedAt;
      this.watchedAt = t;
      if (gap < gapMs) return;
      this.resumes++;
      this.d.logger.info({ frozenMs: gap }, 'the process ran again after a freeze: heartbeat now');
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      void this.beat().finally(() => this.schedule(this.intervalS * 1000));
    }, this.d.resumeCheckMs ?? 1_000);
    this.watch.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.watch) clearInterval(this.watch);
  }

  /** Sends one heartbeat now (also used after a rotation so the server sees the new IP early). */
  beat(): Promise<void> {
    this.inFlight ??= this.once().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  /**
   * A rotation has just changed the public address (its result, which the server records as the change,
   * is reported next): a heartbeat whose address was looked up before now goes without one, so a stale
   * address never reaches the server after the result, and a fresh heartbeat follows.
   */
  addressChanged(): Promise<void> {
    this.ipEpoch++;
    const fresh = () => this.beat();
    return this.inFlight ? this.inFlight.then(fresh, fresh) : fresh();
  }

  setInterval(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 5 || seconds > 3600) return;
    const changed = seconds !== this.intervalS;
    this.intervalS = seconds;
    if (changed && !this.stopped) this.schedule(seconds * 1000);
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.beat().finally(() => this.schedule(this.intervalS * 1000));
    }, ms);
  }

  private async once(): Promise<void> {
    const epoch = this.ipEpoch;
    const body = await buildHeartbeat(this.d);
    const turn = this.d.oneAtATime ?? ((f) => f());
    const reply = await turn(async () => {
      if (epoch !== this.ipEpoch) body.public_ip = null;
      body.usage = this.d.usage.drain();
      try {
        return await this.d.send(body);
      } catch (e) {
        this.d.usage.restore(body.usage); // counted again next time, not lost
        this.d.logger.warn({ err: e }, 'heartbeat failed');
        return undefined;
      }
    });
    if (!reply) return;
    if (body.public_ip) this.lastPublicIp = body.public_ip;
    this.lastOkAt = (this.d.now ?? Date.now)();
    this.d.onReply(reply);
  }
}
