// Routes for the platform's own components (tunnel process, OpenVPN hooks), behind the internal token.
import { z } from 'zod';
import * as S from '@pocketproxy/api-schema';
import type { Ctx } from '../../context.js';
import type { Router } from '../route.js';
import { apiError } from '../../errors.js';
import { checkVerifier } from '../../security/crypto.js';
import { deviceCredentials, deviceForwarding } from '../../services/connections.js';
import { tunnelConnected, tunnelDisconnected } from '../../services/presence.js';
import { recordRelayUsage } from '../../services/usage.js';
import { newId } from '../../security/crypto.js';
import { ipInCidrs } from '../../services/ipam.js';

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
    }),
    response: S.RelayRegistered,
    handler: async ({ body }) => {
      const r0 = await ctx.db.query<{ id: string }>(
        `INSERT INTO relays (id, name, host, tunnel_port, push_url, public_key) VALUES ($1,$2,$3,$4,$5,$6)
         ON CONFLICT (name) DO UPDATE SET host = excluded.host, tunnel_port = excluded.tunnel_port, push_url = excluded.push_url, public_key = excluded.public_key, updated_at = now()
         RETURNING id`,
        [newId('rly'), body.name, body.host, body.tunnel_port, body.push_url, body.public_key],
      );
      return { relay_id: r0.rows[0]!.id };
    },
  });
  r.add({
    method: 'GET',
    url: '/api/internal/tunnel/peers',
    auth: 'internal',
    tag,
    summary: "Every device of a relay with its tunnel keys (with device_id: only that device, if it is this relay's)",
    query: z.object({ relay_id: S.RelayId, device_id: S.DeviceId.optional() }),
    response: S.TunnelPeers,
    handler: async ({ query }) => {
      // device_id: the relay checks one pushed device (paired, deleted, moved) without loading every key.
      const rows = await ctx.db.query<{ id: string; public_key: string; psk_enc: string; vpn_ip: string }>(
        'SELECT id, public_key, psk_enc, vpn_ip FROM devices WHERE relay_id = $1 AND public_key IS NOT NULL AND ($2::text IS NULL OR id = $2)',
        [query.relay_id, query.device_id ?? null],
      );
      return {
        items: rows.rows.map((d) => ({
          device_id: d.id,
          public_key: d.public_key,
          psk: ctx.box.open(d.psk_enc),
          vpn_ip: d.vpn_ip,
        })),
      };
    },
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
    handler: async ({ params }) => {
      const credentials = await deviceCredentials(ctx, ctx.db, params.id);
      return {
        connections: await deviceForwarding(ctx, ctx.db, params.id),
        credentials: credentials.items,
        credentials_version: credentials.version,
      };
    },
  });
  r.add({
    method: 'POST',
    url: '/api/internal/tunnel/forwarding',
    auth: 'internal',
    tag,
    summary: 'Forwarding of many connected devices at once (the tunnel polls this to apply changes)',
    body: z.strictObject({ device_ids: z.array(S.DeviceId).max(20_000) }),
    response: S.TunnelForwarding,
    handler: async ({ body }) => {
      const out: Record<string, { vpn_ip: string; connections: Awaited<ReturnType<typeof deviceForwarding>> }> = {};
      const devs = await ctx.db.query<{ id: string; vpn_ip: string }>(
        'SELECT id, vpn_ip FROM devices WHERE id = ANY($1::text[])',
        [body.device_ids],
      );
      for (const d of devs.rows)
        out[d.id] = { vpn_ip: d.vpn_ip, connections: await deviceForwarding(ctx, ctx.db, d.id) };
      return { devices: out };
    },
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

  // OpenVPN hooks: the customer signs in with a connection's username and password. Its traffic reaches
  // the device through the relay's transparent proxy (from the relay's address), so the connection's
  // allow-list is checked here, against the customer's real address (untrusted_ip).
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
    handler: async ({ body }) => {
      const c = (
        await ctx.db.query<{ id: string; device_id: string; password_verifier: string; allow_from: string[] }>(
          `SELECT id, device_id, password_verifier, allow_from FROM connections WHERE username = $1 AND enabled AND blocked_reason IS NULL AND (expires_at IS NULL OR expires_at > $2)`,
          [body.username, ctx.clock.now()],
        )
      ).rows[0];
      if (!c || !body.password || !checkVerifier(body.password, c.password_verifier))
        throw apiError('PP_ERR_API_FORBIDDEN');
      // A connection with an allow-list admits only customers from it; without an address, none.
      if (c.allow_from?.length && !(body.untrusted_ip && ipInCidrs(body.untrusted_ip, c.allow_from)))
        throw apiError('PP_ERR_API_FORBIDDEN');
      return { ok: true, connection_id: c.id, device_id: c.device_id };
    },
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
    handler: async ({ body }) => {
      const c = (
        await ctx.db.query<{
          id: string;
          device_id: string;
          vpn_ip: string;
          port: number;
          protocol: 'http' | 'socks5';
          password_enc: string;
        }>(
          `SELECT c.id, c.device_id, d.vpn_ip, c.port, c.protocol, c.password_enc FROM connections c JOIN devices d ON d.id = c.device_id
          WHERE c.username = $1 AND c.enabled AND c.blocked_reason IS NULL AND (c.expires_at IS NULL OR c.expires_at > $2)`,
          [body.username, ctx.clock.now()],
        )
      ).rows[0];
      if (!c) throw apiError('PP_ERR_API_FORBIDDEN');
      return {
        connection_id: c.id,
        device_id: c.device_id,
        device_vpn_ip: c.vpn_ip,
        proxy_port: Number(c.port),
        protocol: c.protocol,
        username: body.username,
        password: ctx.box.open(c.password_enc),
        client_ip: body.vpn_ip ?? null,
      };
    },
  });
  r.add({
    method: 'POST',
    url: '/api/internal/openvpn/disconnect',
    auth: 'internal',
    tag,
    summary: 'An OpenVPN customer left',
    body: Ovpn,
    response: S.Ok,
    handler: async () => ({ ok: true as const }),
  });
}
