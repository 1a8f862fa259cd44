// What the relay forwards, as netfw desired state. One entry per connected device; the firewall
// state is always rebuilt from all of them and handed to netfw's declarative apply (which diffs):
//
//   customer -> relay:conn.port (http)   -> vpn_ip:conn.port tcp      the device's listener for that connection
//   customer -> relay:conn.port (socks5) -> vpn_ip:conn.port tcp+udp  (SOCKS5 and its UDP datagrams)
//
// The port is kept and the customer's address is not rewritten, so the device knows for every socket
// which connection it belongs to and who the customer is (docs/security.md). There are no
// device-level ports: every forwarded port belongs to one connection with its own credentials. A
// disabled, expired or blocked connection stays forwarded: its device refuses the customer with a
// reason (403 / SOCKS5 0x02) instead of letting them wait for a timeout. Deleted ones are not.
//
// One bad value from upstream (a port two devices claim, an allow-list netfw refuses) must not
// take every other device's ports down with it, so each port is checked alone and the offender is
// left out and reported.
import {
  validateState,
  type FirewallState,
  type OpenVpnState,
  type PortForward,
  type Socks5FrontState,
} from '@pocketproxy/netfw';
import type { DeviceForwarding } from './api-client.js';

export interface BaseState {
  readonly tunnelInterface: string;
  readonly deviceSubnet: string;
  readonly tunnelAddress: string;
  readonly mssClamp: 'pmtu' | number;
  readonly openvpn?: OpenVpnState;
  readonly socks5Front?: Socks5FrontState;
}

export interface Rejected {
  readonly deviceId: string;
  readonly port: number;
  readonly reason: string;
}

/** The forwards of one device's connections (one per connection port), before validation. */
export function connectionForwards(f: DeviceForwarding): PortForward[] {
  return f.connections.map((c) => ({
    port: c.port,
    proto: c.protocol === 'http' ? 'tcp' : 'both',
    vpnIp: f.vpn_ip,
    targetPort: c.port,
    enabled: true,
    // An empty list in netfw means "nobody"; the API's empty list means "no restriction".
    ...(c.allow_from.length > 0 ? { allowFrom: [...c.allow_from] } : {}),
  }));
}

/** The public ports of a device's connections (what usage is reported for). */
export function connectionPorts(f: DeviceForwarding): number[] {
  return f.connections.map((c) => c.port);
}

/** Ports of one device that netfw accepts on their own, and the ones it refuses. */
export function checkedPorts(
  base: BaseState,
  deviceId: string,
  f: DeviceForwarding,
): { ports: PortForward[]; rejected: Rejected[] } {
  const ports: PortForward[] = [];
  const rejected: Rejected[] = [];
  const seen = new Set<number>();
  for (const p of connectionForwards(f)) {
    if (seen.has(p.port)) {
      rejected.push({ deviceId, port: p.port, reason: 'port listed twice for this device' });
      continue;
    }
    try {
      validateState({ ...base, ports: [p] });
      ports.push(p);
      seen.add(p.port);
    } catch (e) {
      rejected.push({ deviceId, port: p.port, reason: (e as Error).message });
    }
  }
  return { ports, rejected };
}

/** Desired state from every device's checked ports; a port two devices claim goes to the first. */
export function buildState(
  base: BaseState,
  perDevice: ReadonlyMap<string, readonly PortForward[]>,
): { state: FirewallState; conflicts: Rejected[] } {
  const taken = new Map<number, string>();
  const ports: PortForward[] = [];
  const conflicts: Rejected[] = [];
  for (const [deviceId, list] of perDevice) {
    for (const p of list) {
      const owner = taken.get(p.port);
      if (owner !== undefined) {
        conflicts.push({ deviceId, port: p.port, reason: `port already forwarded to ${owner}` });
        continue;
      }
      taken.set(p.port, deviceId);
      ports.push(p);
    }
  }
  return { state: { ...base, ports }, conflicts };
}
