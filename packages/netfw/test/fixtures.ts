// Shared desired states for the netfw tests.
import type { FirewallState, PortForward } from '../src/index.js';

export const base: FirewallState = {
  tunnelInterface: 'pp0',
  deviceSubnet: '192.168.255.0/24',
  tunnelAddress: '192.168.255.1',
  mssClamp: 'pmtu',
  ports: [],
};

/** The three ports a paired device gets: HTTP, SOCKS5, SOCKS5 UDP relay. */
export function device(vpnIp: string, basePort: number, extra: Partial<PortForward> = {}): PortForward[] {
  return [
    { port: basePort, proto: 'tcp', vpnIp, targetPort: 8080, enabled: true, ...extra },
    { port: basePort + 1, proto: 'tcp', vpnIp, targetPort: 1080, enabled: true, ...extra },
    { port: basePort + 2, proto: 'udp', vpnIp, targetPort: 1081, enabled: true, ...extra },
  ];
}

export const oneDevice: FirewallState = { ...base, ports: device('192.168.255.2', 30000) };

export const busy: FirewallState = {
  ...base,
  mssClamp: 1360,
  ports: [
    {
      port: 30001,
      proto: 'both',
      vpnIp: '192.168.255.2',
      targetPort: 1080,
      enabled: true,
      allowFrom: ['203.0.113.7', '10.0.0.0/8'],
    },
    { port: 30000, proto: 'tcp', vpnIp: '192.168.255.2', targetPort: 8080, enabled: true },
    { port: 30002, proto: 'udp', vpnIp: '192.168.255.3', targetPort: 1081, enabled: false },
  ],
  openvpn: { subnet: '10.9.0.0/24', interface: 'tun1', tproxyPort: 12345, dnsRedirectPort: 5353 },
};

/** Many devices: `n` devices x 3 ports in a /20 (the "thousands of devices" of docs/design.md §9). */
export function fleet(devices: number): FirewallState {
  const ports: PortForward[] = [];
  for (let i = 0; i < devices; i++) {
    const host = 2 + i;
    ports.push(...device(`10.200.${host >> 8}.${host & 255}`, 20000 + i * 3));
  }
  return { ...base, deviceSubnet: '10.200.0.0/16', tunnelAddress: '10.200.0.1', ports };
}
