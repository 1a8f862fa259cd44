// Fleet tools (issue 12): bulk actions on connections, per-device statistics (traffic, uptime, rotation
// success rate) and the fleet's traffic over time.
import { z } from 'zod';
import { ConnectionId, DeviceId, Timestamp } from './common.js';
import { BulkRotateResponse, Connection, UsagePoint } from './resources.js';

export const ConnectionBulkAction = z.enum(['enable', 'disable', 'delete', 'rotate']);

/** POST /api/connections/bulk: one action on many connections; all or nothing (rotate: per device). */
export const ConnectionBulk = z.strictObject({
  ids: z
    .array(ConnectionId)
    .min(1, 'name at least one connection')
    .max(1000, 'at most 1000 connections at once')
    .describe('connection ids; repeats count once'),
  action: ConnectionBulkAction.describe(
    'enable / disable / delete: every connection in one transaction (an unknown id changes nothing); ' +
      'rotate: one rotation per device of the connections (a device already rotating joins that rotation)',
  ),
  ttl_s: z
    .number()
    .int()
    .min(10)
    .max(86400)
    .default(600)
    .describe('rotate only: how long the rotate_ip commands may wait for their device'),
});
export const ConnectionBulkResponse = z.object({
  action: ConnectionBulkAction,
  count: z.number().int().describe('connections the action applied to (repeats counted once)'),
  items: z.array(Connection).describe('enable / disable: the connections as they are now; delete, rotate: []'),
  deleted: z.array(ConnectionId).describe('delete: the ids deleted; otherwise []'),
  rotations: BulkRotateResponse.shape.items.describe(
    'rotate: one answer per device of the connections (as POST /api/devices/rotate); otherwise []',
  ),
});

const Ratio = z.number().min(0).max(1);

/** GET /api/devices/stats: figures per device that are not on the device object. */
export const DeviceStats = z.object({
  device_id: DeviceId,
  traffic_today_bytes: z
    .number()
    .int()
    .describe("bytes both ways since midnight (the database's time zone), the relay's figure where there is one"),
  traffic_month_bytes: z.number().int().describe('bytes both ways this calendar month, counted the same way'),
  uptime_24h: Ratio.nullable().describe(
    'share of the last 24 h the device was online (from its device_connected / device_disconnected events; ' +
      'since pairing when younger); null when none of the window is known',
  ),
  uptime_7d: Ratio.nullable().describe('the same over the last 7 days'),
  rotations_7d: z.object({
    succeeded: z.number().int(),
    failed: z.number().int(),
    expired: z.number().int(),
  }),
  rotation_success_rate_7d: Ratio.nullable().describe(
    'rotate_ip commands that finished in the last 7 days: succeeded / (succeeded + failed + expired); null when none finished',
  ),
});
export const DeviceStatsList = z.object({
  at: Timestamp.describe('the time the figures were computed at'),
  items: z.array(DeviceStats),
});
export const DeviceStatsQuery = z.object({
  device_id: DeviceId.optional().describe('one device only'),
});

/** GET /api/usage: the whole fleet's traffic, hourly for 24 h or daily for 30 days (zero-filled). */
export const FleetUsageQuery = z.object({ granularity: z.enum(['hour', 'day']).default('hour') });
export const FleetUsage = z.object({ items: z.array(UsagePoint) });
