// Forwarding: which ports each device has (from vpn/connected, the API's pushes and the forwarding
// poll) and the firewall kept in step with it. forwarding.ts turns devices into netfw state; this
// module decides when: coalesced syncs after device changes, `syncDevice` when the API pushes a
// change of one device's connections (POST /sync: applied before it answers, so a new port answers
// and a deleted one is cut within a second), and the poll every forwardingMs as the safety net for
// pushes that did not arrive (it also retries a failed apply).
//
//   API (connection changed) -> POST /sync {device_id} -> GET forwarding -> nft apply -> device: refetch credentials
//
// With POCKETPROXY_HTTP_FRONT=auto the path of a device's HTTP ports follows its link: each handshake's
// round trip (protocol responder.ts handshakeRttMs, at connect and every rekey) goes to `noteRtt`; at or
// above `rttMs` the device is far and its HTTP ports' new connections go through the relay's front (one
// cellular round trip less per connection, tunnel/socks5-front.ts), below half of it they go back to the
// DNAT. A path changes at most once per `holdMs` within an up period, so a link whose round trip jitters
// around the line (or a device that handshakes often) cannot make the firewall churn. Flows already open
// keep their path (netfw state.ts frontServes).
//
// An answer is applied only if it was asked for after the one applied last (`fwdSeq`), so a slow
// poll can never put back a port that a push has just removed.
import type { Firewall } from '@pocketproxy/netfw';
import type { JsonMessage } from '@pocketproxy/protocol';
import type { DeviceForwarding, InternalApi } from './api-client.js';
import type { TunnelLogs } from './context.js';
import type { DeviceEntry, DeviceTable } from './devices.js';
import { buildState, checkedPorts, type BaseState } from './forwarding.js';
import type { UsageReport } from './usage-report.js';

export interface FirewallSyncContext extends TunnelLogs {
  readonly base: BaseState;
  readonly devices: DeviceTable;
  readonly firewall: Pick<Firewall, 'apply'>;
  readonly api: Pick<InternalApi, 'forwarding'>;
  readonly usage: Pick<UsageReport, 'owe' | 'countersReset'>;
  readonly sendTo: (deviceId: string, message: JsonMessage) => boolean;
  /** The poll asks the API only once the relay is registered. */
  readonly isRegistered: () => boolean;
  /** POCKETPROXY_HTTP_FRONT=auto: far from this round trip (ms), near again below half of it. */
  readonly httpFrontAuto?: { readonly rttMs: number; readonly holdMs: number };
}

export interface FirewallSync {
  /** Takes a device's forwarding and checks its ports; false when nothing changed or `seq` is stale. */
  setForwarding(e: DeviceEntry, f: DeviceForwarding, seq?: number): boolean;
  /** The device forwards nothing any more (down, or deleted upstream); its usage stays owed. */
  clearForwarding(e: DeviceEntry): void;
  /** Applies the ports of all up and reported devices, shared with other calls within 25 ms. */
  syncFirewall(): Promise<void>;
  pollForwarding(): Promise<void>;
  /**
   * The API says this device's connections changed: fetch them, apply the firewall, tell the device
   * to refetch its credentials. Resolves once applied; false when the device has no session here.
   */
  syncDevice(deviceId: string): Promise<boolean>;
  /** A sequence number for an API answer about to be asked for (see setForwarding). */
  nextSeq(): number;
  /**
   * After a (re)start: forward every known device's ports for `warmMs` while they reconnect, then
   * let the firewall apply for the first time. Until then nothing is applied, so a restarted relay
   * never shows its customers an empty table (the open flows of every port would be cut).
   */
  warmStart(warmMs: number): Promise<void>;
  /** Lets the firewall apply without (or after) the warm start. */
  openGate(): void;
  /** Removes warm ports of devices that did not come back in time (from tick). */
  expireWarm(t: number): void;
  /**
   * A handshake of this device measured its link's round trip (ms): with POCKETPROXY_HTTP_FRONT=auto its
   * HTTP ports may change path (a sync follows when they do).
   */
  noteRtt(e: DeviceEntry, rttMs: number | undefined): void;
  /** How many devices' HTTP ports go through the front because their link is far. */
  farDevices(): number;
}

/**
 * Far or near after a handshake that measured `rttMs`: far at or above `limit`, near again below half of
 * it, unchanged in between; and a change waits until `holdMs` after the last one (`changedAt`).
 */
export function nextFar(
  far: boolean,
  rttMs: number,
  limit: number,
  holdMs: number,
  changedAt: number | undefined,
  t: number,
): boolean {
  const want = far ? rttMs >= limit / 2 : rttMs >= limit;
  if (want === far) return far;
  return changedAt === undefined || t - changedAt >= holdMs ? want : far;
}

export function createFirewallSync(c: FirewallSyncContext): FirewallSync {
  const { now, log, devLog, logLimit, devices } = c;

  let seqCounter = 0;
  const nextSeq = (): number => ++seqCounter;

  function setForwarding(e: DeviceEntry, f: DeviceForwarding, seq = nextSeq()): boolean {
    if (seq < e.fwdSeq) return false;
    e.fwdSeq = seq;
    const before = JSON.stringify(e.forwarding ?? null);
    // Unchanged, with or without ports: no apply, no credentials hint (a portless device was told to
    // refetch at every poll).
    if (before === JSON.stringify(f)) return false;
    c.usage.owe(e.forwarding);
    const { ports, rejected } = checkedPorts(c.base, e.id, { ...f, vpn_ip: e.vpnIp });
    for (const r of rejected) devLog(e).warn({ port: r.port, reason: r.reason }, 'port not forwarded');
    e.forwarding = f;
    e.ports = ports;
    return true;
  }

  function clearForwarding(e: DeviceEntry): void {
    c.usage.owe(e.forwarding);
    e.forwarding = undefined;
    e.ports = [];
  }

  function noteRtt(e: DeviceEntry, rttMs: number | undefined): void {
    const auto = c.httpFrontAuto;
    if (!auto || rttMs === undefined) return;
    const t = now();
    const far = nextFar(e.far, rttMs, auto.rttMs, auto.holdMs, e.farChangedAt, t);
    if (far === e.far) return;
    e.far = far;
    e.farChangedAt = t;
    devLog(e).info(
      { rttMs, limitMs: auto.rttMs },
      far ? "far link: HTTP ports through the relay's front" : "near link: HTTP ports DNAT'ed",
    );
    if (e.ports.length) void syncFirewall();
  }

  /** A far device's HTTP ports, marked for the front (netfw viaFront). */
  const portsOf = (e: DeviceEntry): DeviceEntry['ports'] =>
    e.far ? e.ports.map((p) => (p.proto === 'tcp' ? { ...p, viaFront: true } : p)) : e.ports;

  let openGate!: () => void;
  const gate = new Promise<void>((r) => (openGate = r));
  const forwarded = (e: DeviceEntry, t: number): boolean => (e.up && e.reported) || e.warmUntil > t;

  async function warmStart(warmMs: number): Promise<void> {
    const ids = [...devices.byId.values()].filter((e) => !e.up).map((e) => e.id);
    const seq = nextSeq();
    for (let i = 0; i < ids.length; i += 5_000) {
      const got = await c.api.forwarding(ids.slice(i, i + 5_000));
      for (const [id, f] of got) {
        const e = devices.byId.get(id);
        if (!e || e.up || seq < e.fwdSeq) continue;
        setForwarding(e, f, seq);
        e.warmUntil = now() + warmMs;
      }
    }
    log.info(
      {
        devices: ids.length,
        ports: [...devices.byId.values()].reduce((n, e) => n + (e.warmUntil ? e.ports.length : 0), 0),
        warmMs,
      },
      'warm start: ports kept while devices reconnect',
    );
  }

  function expireWarm(t: number): void {
    let changed = false;
    for (const e of devices.byId.values()) {
      if (e.warmUntil === 0 || e.warmUntil > t) continue;
      e.warmUntil = 0;
      if (!(e.up && e.reported)) {
        clearForwarding(e);
        changed = true;
        devLog(e).info('device did not reconnect after the restart; its ports are closed');
      }
    }
    if (changed) void syncFirewall();
  }

  // Many devices connect at once after a relay restart: building the whole desired state is O(ports), so
  // doing it once per device is quadratic. Calls within 25 ms share one build and one nft transaction.
  let syncQueued: Promise<void> | null = null;
  function syncFirewall(): Promise<void> {
    syncQueued ??= new Promise<void>((resolve) => {
      setTimeout(() => {
        syncQueued = null;
        void syncFirewallNow().finally(resolve);
      }, 25);
    });
    return syncQueued;
  }

  async function syncFirewallNow(): Promise<void> {
    await gate;
    const t = now();
    const perDevice = new Map<string, DeviceEntry['ports']>();
    for (const e of devices.byId.values()) if (forwarded(e, t) && e.ports.length) perDevice.set(e.id, portsOf(e));
    const { state, conflicts } = buildState(c.base, perDevice);
    for (const x of conflicts)
      if (logLimit.allow(`conflict:${x.port}`, now()) !== undefined)
        devLog(x.deviceId).warn({ port: x.port, reason: x.reason }, 'port not forwarded');
    try {
      const r = await c.firewall.apply(state);
      if (r.kind === 'full') c.usage.countersReset();
    } catch (err) {
      log.error(
        { err: String(err), ports: state.ports.length },
        'firewall apply failed; retried at the next forwarding poll',
      );
    }
  }

  let polling = false;
  async function pollForwarding(): Promise<void> {
    if (polling || !c.isRegistered()) return;
    polling = true;
    try {
      const ids = devices
        .connected()
        .filter((e) => e.reported)
        .map((e) => e.id);
      if (ids.length > 0) {
        const seq = nextSeq();
        const got = await c.api.forwarding(ids);
        for (const id of ids) {
          const e = devices.byId.get(id);
          if (!e?.up || !e.reported) continue;
          const f = got.get(id);
          if (seq < e.fwdSeq) continue; // a push answered after this poll asked
          if (f) {
            if (setForwarding(e, f, seq)) {
              devLog(e).info({ ports: e.ports.length }, 'device forwarding changed');
              // A connection was added, removed or re-enabled: the device needs its verifiers now,
              // not at its next heartbeat (up to 30 s later), or the new port answers 407.
              c.sendTo(e.id, { kind: 'control', control: { type: 'credentials', payload: { refetch: true } } });
            }
          } else if (e.ports.length) {
            // Deleted upstream: stop forwarding; the next peer refresh ends its session.
            e.fwdSeq = seq;
            clearForwarding(e);
            devLog(e).info('device no longer known to the API; ports removed');
          }
        }
      }
      await syncFirewall();
    } catch (err) {
      if (logLimit.allow('forwarding', now()) !== undefined) log.warn({ err: String(err) }, 'forwarding poll failed');
    } finally {
      polling = false;
    }
  }

  function syncDevice(deviceId: string): Promise<boolean> {
    const e = devices.byId.get(deviceId);
    if (!e?.up) return Promise.resolve(false);
    const gen = e.gen;
    // After vpn/connected of this period (same chain): before it, the device has nothing forwarded yet.
    const run = e.chain.then(async (): Promise<boolean> => {
      if (e.gen !== gen || !e.up || !e.reported) return false;
      const seq = nextSeq();
      const f = (await c.api.forwarding([deviceId])).get(deviceId);
      if (e.gen !== gen || !e.up) return false;
      if (f) setForwarding(e, f, seq);
      else if (seq >= e.fwdSeq) {
        e.fwdSeq = seq;
        clearForwarding(e);
      }
      await syncFirewall();
      // Also when no port changed: a password, state or limit change is the device's business only.
      c.sendTo(deviceId, { kind: 'control', control: { type: 'credentials', payload: { refetch: true } } });
      return true;
    });
    e.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  return {
    setForwarding,
    clearForwarding,
    syncFirewall,
    pollForwarding,
    syncDevice,
    nextSeq,
    warmStart,
    openGate: () => openGate(),
    expireWarm,
    noteRtt,
    farDevices: () => {
      let n = 0;
      for (const e of devices.byId.values()) if (e.up && e.far) n++;
      return n;
    },
  };
}
