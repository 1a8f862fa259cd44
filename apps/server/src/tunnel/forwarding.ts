// What the relay forwards, as netfw desired state. One entry per connected device; the firewall
// state is always rebuilt from all of them and handed to netfw's declarative apply (which diffs):
//
//   customer -> relay:base_port+0 (tcp) -> vpn_ip:8080   device HTTP proxy
//               relay:base_port+1 (tcp) -> vpn_ip:1080   device SOCKS5
//               relay:base_port+2 (udp) -> vpn_ip:1081   device SOCKS5 UDP relay
//               relay:conn.port (http)  -> vpn_ip:8080 tcp
//               relay:conn.port (socks5)-> vpn_ip:1080 tcp+udp (the agent serves SOCKS5-UDP there)
//
// One bad value from upstream (a port two devices claim, an allow-list netfw refuses) must not
// take every other device's ports down with it, so each port is checked alone and the offender is
// left out and reported.
import { validateState, type FirewallState, type OpenVpnState, type PortForward } from '@pocketproxy/netfw';
import type { DeviceForwarding } from './api-client.js';

export const DEVICE_HTTP_PORT = 8080;
export const DEVICE_SOCKS_PORT = 1080;
export const DEVICE_UDP_RELAY_PORT = 1081;

export interface BaseState {
  readonly tunnelInterface: string;
  readonly deviceSubnet: string;
  readonly tunnelAddress: string;
  readonly mssClamp: 'pmtu' | number;
  readonly openvpn?: OpenVpnState;
}

export interface Rejected {
  readonly deviceId: string;
  readonly port: number;
  readonly reason: string;
}

/** The ports one device should have, before validation. */
export function devicePorts(f: DeviceForwarding): PortForward[] {
  const out: PortForward[] = [];
  const vpnIp = f.vpn_ip;
  if (Number.isInteger(f.base_port) && f.base_port > 0) {
    out.push({ port: f.base_port, proto: 'tcp', vpnIp, targetPort: DEVICE_HTTP_PORT, enabled: true });
    out.push({ port: f.base_port + 1, proto: 'tcp', vpnIp, targetPort: DEVICE_SOCKS_PORT, enabled: true });
    out.push({ port: f.base_port + 2, proto: 'udp', vpnIp, targetPort: DEVICE_UDP_RELAY_PORT, enabled: true });
  }
  for (const c of f.connections) {
    const http = c.protocol === 'http';
    out.push({
      port: c.port,
      proto: http ? 'tcp' : 'both',
      vpnIp,
      targetPort: http ? DEVICE_HTTP_PORT : DEVICE_SOCKS_PORT,
      enabled: c.enabled,
      // An empty list in netfw means "nobody"; the API's empty list means "no restriction".
      ...(c.allow_from.length > 0 ? { allowFrom: [...c.allow_from] } : {}),
    });
  }
  return out;
}

/** Connection (not device-level) ports of a device: the only ones usage is reported for. */
export function connectionPorts(f: DeviceForwarding): number[] {
  return f.connections.map((c) => c.port);
}

/** Ports of one device that netfw accepts on their own, and the ones it refuses. */
export function checkedPorts(base: BaseState, deviceId: string, f: DeviceForwarding): { ports: PortForward[]; rejected: Rejected[] } {
  const ports: PortForward[] = [];
  const rejected: Rejected[] = [];
  const seen = new Set<number>();
  for (const p of devicePorts(f)) {
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
export function buildState(base: BaseState, perDevice: ReadonlyMap<string, readonly PortForward[]>): { state: FirewallState; conflicts: Rejected[] } {
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
