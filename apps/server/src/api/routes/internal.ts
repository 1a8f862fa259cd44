// Routes for the platform's own components (the tunnel process, its OpenVPN logins too), behind the internal token.
import { z } from 'zod';
import * as S from '@pocketproxy/api-schema';
import type { Ctx } from '../../context.js';
import type { Router } from '../route.js';
import { openvpnAuth, openvpnConnect, relayForwarding, relayForwardingMany } from '../../services/connections.js';
import { relayPeers } from '../../services/devices.js';
import { tunnelConnected, tunnelDisconnected } from '../../services/presence.js';
import { registerRelay } from '../../services/relays.js';
import { recordRelayUsage } from '../../services/usage.js';

const B64Key = z.string().regex(/^[A-Za-z0-9+/]{43}=$/);

export function internalRoutes(r: Router, ctx: Ctx) {
  const tag = 'internal';
  r.add({
    method: 'POST',
    url: '/api/internal/relays/register',
    auth: 'internal',
    tag,
    summary: 'A tunnel process announces itself and its public key',
    body: z.strictObject({
      name: S.Name,
      host: S.Hostname,
      tunnel_port: S.Port,
      push_url: z.string().url(),
      public_key: B64Key,
      // Absent: a relay from before lanes (one session per device).
      max_lanes: z.number().int().min(1).max(16).optional(),
    }),
    response: S.RelayRegistered,
    handler: ({ body }) => registerRelay(ctx.db, body),
  });
  r.add({
    method: 'GET',
    url: '/api/internal/tunnel/peers',
    auth: 'internal',
    tag,
    summary: "Every device of a relay with its tunnel keys (with device_id: only that device, if it is this relay's)",
    query: z.object({ relay_id: S.RelayId, device_id: S.DeviceId.optional() }),
    response: S.TunnelPeers,
    // device_id: the relay checks one pushed device (paired, deleted, moved) without loading every key.
    handler: ({ query }) => relayPeers(ctx, query.relay_id, query.device_id ?? null),
  });
  r.add({
    method: 'POST',
    url: '/api/internal/vpn/connected',
    auth: 'internal',
    tag,
    summary: 'The tunnel reports a device connected; answers what to forward to it',
    body: z.strictObject({
      device_id: S.DeviceId,
      vpn_ip: S.IPv4,
      relay_id: S.RelayId.optional(),
      endpoint: z.string().max(80).optional(),
    }),
    response: S.VpnConnected,
    handler: ({ body }) =>
      tunnelConnected(ctx, { deviceId: body.device_id, relayId: body.relay_id, endpoint: body.endpoint }),
  });
  r.add({
    method: 'POST',
    url: '/api/internal/vpn/disconnected',
    auth: 'internal',
    tag,
    summary: 'The tunnel reports a device gone',
    body: z.strictObject({ device_id: S.DeviceId, reason: z.string().max(100).default('disconnected') }),
    response: S.Ok,
    handler: async ({ body }) => {
      await tunnelDisconnected(ctx, body.device_id, body.reason);
      return { ok: true };
    },
  });
  r.add({
    method: 'GET',
    url: '/api/internal/devices/:id/forwarding',
    auth: 'internal',
    tag,
    summary: "A device's connections as the relay forwards them",
    params: z.object({ id: S.DeviceId }),
    response: S.DeviceForwarding,
    handler: ({ params }) => relayForwarding(ctx, params.id),
  });
  r.add({
    method: 'POST',
    url: '/api/internal/tunnel/forwarding',
    auth: 'internal',
    tag,
    summary: 'Forwarding of many connected devices at once (the tunnel polls this to apply changes)',
    body: z.strictObject({ device_ids: z.array(S.DeviceId).max(20_000) }),
    response: S.TunnelForwarding,
    handler: ({ body }) => relayForwardingMany(ctx, body.device_ids),
  });
  r.add({
    method: 'POST',
    url: '/api/internal/usage',
    auth: 'internal',
    tag,
    summary:
      "Byte counters per relay port since the last report (nftables; bytes_relay_month, for information: limits use the device's count)",
    body: z.strictObject({
      samples: z
        .array(z.strictObject({ port: S.Port, bytes_in: z.number().int().min(0), bytes_out: z.number().int().min(0) }))
        .max(100_000),
    }),
    response: S.UsageRecorded,
    handler: ({ body }) => recordRelayUsage(ctx, body.samples),
  });

  // OpenVPN logins (services/connections.ts openvpnAuth, openvpnConnect): the allow-list is checked against
  // the customer's real address (untrusted_ip).
  const Ovpn = z.strictObject({
    username: z.string().min(1).max(64),
    password: z.string().max(256).optional(),
    vpn_ip: S.IPv4.optional(),
    untrusted_ip: z.string().max(64).optional(),
  });
  r.add({
    method: 'POST',
    url: '/api/internal/openvpn/auth',
    auth: 'internal',
    tag,
    summary:
      "Check an OpenVPN customer login (password, state, and the allow-list against untrusted_ip, the customer's address)",
    body: Ovpn,
    response: S.OpenVpnAuth,
    handler: ({ body }) => openvpnAuth(ctx, body),
  });
  r.add({
    method: 'POST',
    url: '/api/internal/openvpn/connect',
    auth: 'internal',
    tag,
    summary:
      "An OpenVPN customer got an address: answers the device proxy to use (the connection's own port and protocol on the device)",
    body: Ovpn,
    response: S.OpenVpnConnect,
    handler: ({ body }) => openvpnConnect(ctx, body),
  });
}
