// Admin routes for devices, their commands, IP history and usage, and pairing codes.
import { z } from 'zod';
import * as S from '@pocketproxy/api-schema';
import type { Ctx } from '../../context.js';
import type { Router } from '../route.js';
import type { RateLimiter } from '../ratelimit.js';
import { createDevice, deleteDevice, getDevice, listDevices, updateDevice } from '../../services/devices.js';
import { listCommands, queueCommand } from '../../services/commands.js';
import { createPairingCode } from '../../services/pairing.js';
import { deviceUsage } from '../../services/overview.js';
import { toIpHistory, type Row } from '../../services/rows.js';

const IdParams = z.object({ id: S.DeviceId });
const list = <T extends z.ZodType>(t: T) => z.object({ items: z.array(t), total: z.number().int() });

export function fleetRoutes(r: Router, ctx: Ctx, limits: { pairingCodes: RateLimiter }, onDeviceDeleted: (id: string) => void) {
  const tag = 'devices';
  r.add({
    method: 'GET', url: '/api/devices', auth: 'admin', tag, summary: 'List devices',
    query: S.Paging.extend({ status: S.DeviceStatus.optional(), q: z.string().max(100).optional() }),
    response: list(S.Device),
    handler: ({ query }) => listDevices(ctx.db, query),
  });
  r.add({
    method: 'POST', url: '/api/devices', auth: 'admin', tag, status: 201,
    summary: 'Register a device by hand (instead of a pairing code); returns its credentials once',
    body: S.DeviceCreate,
    handler: async ({ body, principal }) => {
      const s = await ctx.db.tx((q) => createDevice(ctx, q, { name: body.name, description: body.description, relayId: body.relay_id, strictName: true }, principal.id));
      return { device: s.device, auth_token: s.auth_token, relay: s.relay, tunnel: { server_public_key: s.relay.public_key, psk: s.psk, private_key: s.private_key, mtu: ctx.config.tunnelMtu, subnet: ctx.config.deviceSubnet, vpn_ip: s.device.vpn_ip } };
    },
  });
  r.add({ method: 'GET', url: '/api/devices/:id', auth: 'admin', tag, summary: 'Get a device', params: IdParams, response: S.Device, handler: ({ params }) => getDevice(ctx.db, params.id) });
  r.add({
    method: 'PATCH', url: '/api/devices/:id', auth: 'admin', tag, summary: 'Rename, describe, move or set auto-rotation',
    params: IdParams, body: S.DeviceUpdate, response: S.Device,
    handler: ({ params, body, principal }) => updateDevice(ctx, params.id, body, principal.id),
  });
  r.add({
    method: 'DELETE', url: '/api/devices/:id', auth: 'admin', tag, status: 204, summary: 'Delete a device, its connections and ports',
    params: IdParams,
    handler: async ({ params, principal }) => {
      await deleteDevice(ctx, params.id, principal.id);
      onDeviceDeleted(params.id);
    },
  });
  r.add({
    method: 'POST', url: '/api/devices/:id/commands', auth: 'admin', tag, status: 201, summary: 'Queue a command (pushed at once when the device is connected)',
    params: IdParams, body: S.CommandCreate, response: S.Command,
    handler: ({ params, body, principal }) => queueCommand(ctx, params.id, body, 'api', principal.id),
  });
  r.add({
    method: 'GET', url: '/api/devices/:id/commands', auth: 'admin', tag, summary: 'Commands of a device, newest first',
    params: IdParams, query: S.Paging, response: list(S.Command),
    handler: async ({ params, query }) => {
      await getDevice(ctx.db, params.id);
      return listCommands(ctx.db, params.id, query.limit, query.offset);
    },
  });
  r.add({
    method: 'GET', url: '/api/devices/:id/ip-history', auth: 'admin', tag, summary: 'Public addresses the device has had, newest first',
    params: IdParams, query: S.Paging, response: z.object({ items: z.array(S.IpHistoryEntry) }),
    handler: async ({ params, query }) => {
      await getDevice(ctx.db, params.id);
      const rows = await ctx.db.query<Row>('SELECT * FROM ip_history WHERE device_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3', [params.id, query.limit, query.offset]);
      return { items: rows.rows.map(toIpHistory) };
    },
  });
  r.add({
    method: 'GET', url: '/api/devices/:id/usage', auth: 'admin', tag, summary: 'Traffic: hourly for 24 h or daily for 30 days',
    params: IdParams, query: z.object({ granularity: z.enum(['hour', 'day']).default('hour') }), response: z.object({ items: z.array(S.UsagePoint) }),
    handler: ({ params, query }) => deviceUsage(ctx.db, params.id, query.granularity, ctx.clock.now()),
  });
  r.add({
    method: 'POST', url: '/api/pairing-codes', auth: 'admin', tag: 'pairing', status: 201, summary: 'Create a single-use pairing code with its QR code',
    body: S.PairingCodeCreate, response: S.PairingCode,
    handler: ({ body, principal }) => {
      limits.pairingCodes.hit(principal.id);
      return createPairingCode(ctx, body, principal.id);
    },
  });
}
