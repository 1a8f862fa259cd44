// Admin routes for devices, their commands, IP history and usage, and pairing codes.
import { z } from 'zod';
import * as S from '@pocketproxy/api-schema';
import type { Ctx } from '../../context.js';
import type { Router } from '../route.js';
import type { RateLimiter } from '../ratelimit.js';
import { addDevice, deleteDevice, getDevice, ipHistory, listDevices, updateDevice } from '../../services/devices.js';
import { listCommands, queueCommand } from '../../services/commands.js';
import { requestRotation, rotateMany } from '../../services/rotation.js';
import { createPairingCode } from '../../services/pairing.js';
import { deviceUsage } from '../../services/usage.js';

const IdParams = z.object({ id: S.DeviceId });
const list = <T extends z.ZodType>(t: T) => z.object({ items: z.array(t), total: z.number().int() });

export function fleetRoutes(
  r: Router,
  ctx: Ctx,
  limits: { pairingCodes: RateLimiter },
  onDeviceDeleted: (id: string) => void,
) {
  const tag = 'devices';
  r.add({
    method: 'GET',
    url: '/api/devices',
    auth: 'admin',
    tag,
    summary: 'List devices',
    query: S.Paging.extend({
      status: S.DeviceStatus.optional(),
      q: z
        .string()
        .max(100)
        .optional()
        .describe('part of the name, id, current IP, carrier, hardware id or model (any case)'),
      farm_host_id: S.FarmHostId.optional().describe("only this farm host's devices"),
    }),
    response: list(S.Device),
    handler: ({ query }) => listDevices(ctx.db, query),
  });
  r.add({
    method: 'POST',
    url: '/api/devices',
    auth: 'admin',
    tag,
    status: 201,
    summary: 'Register a device by hand (instead of a pairing code); returns its credentials once',
    body: S.DeviceCreate,
    response: S.DeviceCreated,
    handler: async ({ body, principal }) => {
      const s = await addDevice(ctx, body, principal.id);
      return {
        device: s.device,
        auth_token: s.auth_token,
        relay: s.relay,
        tunnel: {
          server_public_key: s.relay.public_key,
          psk: s.psk,
          private_key: s.private_key,
          mtu: ctx.config.tunnelMtu,
          subnet: ctx.config.deviceSubnet,
          vpn_ip: s.device.vpn_ip,
        },
      };
    },
  });
  r.add({
    method: 'GET',
    url: '/api/devices/:id',
    auth: 'admin',
    tag,
    summary: 'Get a device',
    params: IdParams,
    response: S.Device,
    handler: ({ params }) => getDevice(ctx.db, params.id),
  });
  r.add({
    method: 'PATCH',
    url: '/api/devices/:id',
    auth: 'admin',
    tag,
    summary: 'Rename, describe, move or set auto-rotation',
    params: IdParams,
    body: S.DeviceUpdate,
    response: S.Device,
    handler: ({ params, body, principal }) => updateDevice(ctx, params.id, body, principal.id),
  });
  r.add({
    method: 'DELETE',
    url: '/api/devices/:id',
    auth: 'admin',
    tag,
    status: 204,
    summary: 'Delete a device, its connections and ports',
    params: IdParams,
    handler: async ({ params, principal }) => {
      await deleteDevice(ctx, params.id, principal.id);
      onDeviceDeleted(params.id);
    },
  });
  r.add({
    method: 'POST',
    url: '/api/devices/:id/commands',
    auth: 'admin',
    tag,
    status: 201,
    summary: 'Queue a command (pushed at once when the device is connected)',
    params: IdParams,
    body: S.CommandCreate,
    response: S.Command,
    handler: async ({ params, body, principal }) => {
      // An operator's explicit rotate_ip is always a command of its own (the device runs rotations one
      // after the other); it goes through the one rotation path like every other rotation.
      if (body.type === 'rotate_ip')
        return (
          await requestRotation(ctx, params.id, {
            source: 'api',
            actor: principal.id,
            ttl_s: body.ttl_s,
            payload: body.payload,
            join: false,
          })
        ).command;
      return queueCommand(ctx, params.id, body, 'api', principal.id);
    },
  });
  r.add({
    method: 'POST',
    url: '/api/devices/rotate',
    auth: 'admin',
    tag,
    summary:
      'Rotate many devices: one rotate_ip each (a device already rotating joins that rotation); an answer per device, in the order asked',
    body: S.BulkRotate,
    response: S.BulkRotateResponse,
    handler: async ({ body, principal }) => ({
      items: await rotateMany(ctx, [...new Set(body.device_ids)], { actor: principal.id, ttl_s: body.ttl_s }),
    }),
  });
  r.add({
    method: 'GET',
    url: '/api/devices/:id/commands',
    auth: 'admin',
    tag,
    summary: 'Commands of a device, newest first',
    params: IdParams,
    query: S.Paging,
    response: list(S.Command),
    handler: async ({ params, query }) => {
      await getDevice(ctx.db, params.id);
      return listCommands(ctx.db, params.id, query.limit, query.offset);
    },
  });
  r.add({
    method: 'GET',
    url: '/api/devices/:id/ip-history',
    auth: 'admin',
    tag,
    summary: 'Public addresses the device has had, newest first',
    params: IdParams,
    query: S.Paging,
    response: z.object({ items: z.array(S.IpHistoryEntry) }),
    handler: ({ params, query }) => ipHistory(ctx.db, params.id, query.limit, query.offset),
  });
  r.add({
    method: 'GET',
    url: '/api/devices/:id/usage',
    auth: 'admin',
    tag,
    summary: 'Traffic: hourly for 24 h or daily for 30 days',
    params: IdParams,
    query: z.object({ granularity: z.enum(['hour', 'day']).default('hour') }),
    response: z.object({ items: z.array(S.UsagePoint) }),
    handler: ({ params, query }) => deviceUsage(ctx.db, params.id, query.granularity, ctx.clock.now()),
  });
  r.add({
    method: 'POST',
    url: '/api/pairing-codes',
    auth: 'admin',
    tag: 'pairing',
    status: 201,
    summary: 'Create a single-use pairing code with its QR code',
    body: S.PairingCodeCreate,
    response: S.PairingCode,
    handler: ({ body, principal }) => {
      limits.pairingCodes.hit(principal.id);
      return createPairingCode(ctx, body, principal.id);
    },
  });
}
