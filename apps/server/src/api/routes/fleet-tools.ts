// Fleet tools (issue 12): bulk actions on connections, per-device statistics and the fleet's traffic.
import * as S from '@pocketproxy/api-schema';
import type { Ctx } from '../../context.js';
import type { Router } from '../route.js';
import { bulkConnections } from '../../services/connections-bulk.js';
import { deviceStats } from '../../services/fleet-stats.js';
import { fleetUsage } from '../../services/usage.js';
import { getDevice } from '../../services/devices.js';
import { ovpnPath } from './sales.js';

/** `ovpnOn`: OpenVPN profiles exist (connections then carry their ovpn_url, as in sales.ts). */
export function fleetToolRoutes(r: Router, ctx: Ctx, ovpnOn: boolean) {
  r.add({
    method: 'POST',
    url: '/api/connections/bulk',
    auth: 'admin',
    tag: 'connections',
    summary:
      'One action on many connections: enable, disable or delete all in one transaction ' +
      '(an unknown id: 400 naming it, nothing changed), or rotate their devices',
    body: S.ConnectionBulk,
    response: S.ConnectionBulkResponse,
    handler: async ({ body, principal }) => {
      const out = await bulkConnections(ctx, body, principal.id);
      return { ...out, items: out.items.map((c) => ({ ...c, ovpn_url: ovpnOn ? ovpnPath(c.id) : null })) };
    },
  });
  r.add({
    method: 'GET',
    url: '/api/devices/stats',
    auth: 'admin',
    tag: 'devices',
    summary: 'Per device: traffic today and this month, uptime over 24 h and 7 days, rotation success rate over 7 days',
    query: S.DeviceStatsQuery,
    response: S.DeviceStatsList,
    handler: async ({ query }) => {
      const now = ctx.clock.now();
      if (query.device_id) await getDevice(ctx.db, query.device_id);
      return { at: now.toISOString(), items: await deviceStats(ctx.db, now, query.device_id) };
    },
  });
  r.add({
    method: 'GET',
    url: '/api/usage',
    auth: 'admin',
    tag: 'overview',
    summary: "The whole fleet's traffic: hourly for 24 h or daily for 30 days",
    query: S.FleetUsageQuery,
    response: S.FleetUsage,
    handler: ({ query }) => fleetUsage(ctx.db, query.granularity, ctx.clock.now()),
  });
}
