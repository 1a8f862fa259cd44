// Answers of the internal routes (/api/internal/*, internal token): what the relay's tunnel process and
// the relay's OpenVPN logins get from the API. Published in /api/openapi.json like every other response.
import { z } from 'zod';
import { ConnectionId, DeviceId, Port, RelayId } from './common.js';
import { CredentialItem, Protocol } from './resources.js';

/** POST /api/internal/relays/register */
export const RelayRegistered = z.object({ relay_id: RelayId });

/** GET /api/internal/tunnel/peers */
export const TunnelPeers = z.object({
  items: z.array(
    z.object({
      device_id: DeviceId,
      public_key: z.string().describe("the device's X25519 key, base64"),
      psk: z.string().describe('the pre-shared key, base64'),
      vpn_ip: z.string(),
    }),
  ),
});

/** One connection as the relay forwards it: its port to the same port on the device. */
export const ForwardedConnection = z.object({
  connection_id: ConnectionId,
  protocol: Protocol,
  port: Port,
  allow_from: z.array(z.string()).describe('customer CIDRs; [] = anyone'),
  enabled: z.boolean().describe('enabled, not blocked and not expired'),
  username: z
    .string()
    .optional()
    .describe(
      "the relay's front answers a customer's credentials itself (SOCKS5's, and an HTTP CONNECT's through the front)",
    ),
  verifier: z.string().optional().describe('the password verifier, as the device gets it'),
  early_reply: z
    .boolean()
    .optional()
    .describe(
      "the relay's front may answer a CONNECT (SOCKS5, or HTTP through the front) success before the device has connected (no max_connections and no monthly data limit, so the device refuses one only for its destination)",
    ),
});

/** GET /api/internal/devices/:id/forwarding */
export const DeviceForwarding = z.object({
  connections: z.array(ForwardedConnection),
  credentials: z.array(CredentialItem).describe('as GET /api/devices/:id/credentials items'),
  credentials_version: z.string(),
});

/** POST /api/internal/vpn/connected: what the relay applies for the device right away. */
export const VpnConnected = DeviceForwarding.extend({ vpn_ip: z.string() });

/** POST /api/internal/tunnel/forwarding: per device id asked for that exists. */
export const TunnelForwarding = z.object({
  devices: z.record(z.string(), z.object({ vpn_ip: z.string(), connections: z.array(ForwardedConnection) })),
});

/** POST /api/internal/usage */
export const UsageRecorded = z.object({ recorded: z.number().int().describe('samples that matched a connection') });

/** vpn/disconnected */
export const Ok = z.object({ ok: z.literal(true) });

/** POST /api/internal/openvpn/auth: 200 admits the customer (403 refuses). */
export const OpenVpnAuth = z.object({ ok: z.literal(true), connection_id: ConnectionId, device_id: DeviceId });

/** POST /api/internal/openvpn/connect: the device proxy the relay's transparent proxy speaks to. */
export const OpenVpnConnect = z.object({
  connection_id: ConnectionId,
  device_id: DeviceId,
  device_vpn_ip: z.string(),
  proxy_port: Port.describe("the connection's own port on the device"),
  protocol: Protocol,
  username: z.string(),
  password: z.string(),
  client_ip: z.string().nullable().describe("the customer's OpenVPN address, the one the relay gave it"),
});
