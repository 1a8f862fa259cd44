// Forwarding: which ports each device has (from vpn/connected and the forwarding poll) and the
// firewall kept in step with it. forwarding.ts turns devices into netfw state; this module decides
// when: coalesced syncs after device changes, and the poll every forwardingMs that picks up
// connections added, removed or re-enabled upstream (and retries a failed apply).
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
}

export interface FirewallSync {
  /** Takes a device's forwarding and checks its ports; false when nothing changed. */
  setForwarding(e: DeviceEntry, f: DeviceForwarding): boolean;
  /** The device forwards nothing any more (down, or deleted upstream); its usage stays owed. */
  clearForwarding(e: DeviceEntry): void;
  /** Applies the ports of all up and reported devices, shared with other calls within 25 ms. */
  syncFirewall(): Promise<void>;
  pollForwarding(): Promise<void>;
}

export function createFirewallSync(c: FirewallSyncContext): FirewallSync {
  const { now, log, devLog, logLimit, devices } = c;

  function setForwarding(e: DeviceEntry, f: DeviceForwarding): boolean {
    const before = JSON.stringify(e.forwarding ?? null);
    if (before === JSON.stringify(f) && e.ports.length > 0) return false;
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
    const perDevice = new Map<string, DeviceEntry['ports']>();
    for (const e of devices.byId.values()) if (e.up && e.reported && e.ports.length) perDevice.set(e.id, e.ports);
    const { state, conflicts } = buildState(c.base, perDevice);
    for (const x of conflicts) if (logLimit.allow(`conflict:${x.port}`, now()) !== undefined) devLog(x.deviceId).warn({ port: x.port, reason: x.reason }, 'port not forwarded');
    try {
      const r = await c.firewall.apply(state);
      if (r.kind === 'full') c.usage.countersReset();
    } catch (err) {
      log.error({ err: String(err), ports: state.ports.length }, 'firewall apply failed; retried at the next forwarding poll');
    }
  }

  let polling = false;
  async function pollForwarding(): Promise<void> {
    if (polling || !c.isRegistered()) return;
    polling = true;
    try {
      const ids = devices.connected().filter((e) => e.reported).map((e) => e.id);
      if (ids.length > 0) {
        const got = await c.api.forwarding(ids);
        for (const id of ids) {
          const e = devices.byId.get(id);
          if (!e || !e.up || !e.reported) continue;
          const f = got.get(id);
          if (f) {
            if (setForwarding(e, f)) {
              devLog(e).info({ ports: e.ports.length }, 'device forwarding changed');
              // A connection was added, removed or re-enabled: the device needs its verifiers now,
              // not at its next heartbeat (up to 30 s later), or the new port answers 407.
              c.sendTo(e.id, { kind: 'control', control: { type: 'credentials', payload: { refetch: true } } });
            }
          } else if (e.ports.length) {
            // Deleted upstream: stop forwarding; the next peer refresh ends its session.
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

  return { setForwarding, clearForwarding, syncFirewall, pollForwarding };
}
