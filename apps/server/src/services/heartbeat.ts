// The device heartbeat: the hottest API path (every device, every 30 s; goal ≥ 5,000/s on 2 cores).
// One batched statement records metrics, takes the commands to deliver and returns the previous status
// and address; state changes and usage rows, when there are any, follow in a transaction of their own.
import { CommandType } from '@pocketproxy/api-schema';
import type { Ctx } from '../context.js';
import { apiError } from '../errors.js';
import { toCommand } from './rows.js';
import { recordObservedIp } from './devices.js';
import { announceHeartbeatSeen, heartbeatBringsOnline, heartbeatSeen } from './presence.js';
import { credentialsVersion } from './connections.js';
import { recordDeviceUsage, type Blocked } from './usage.js';
import { syncDevice } from './push.js';

export interface HeartbeatInput {
  metrics: {
    battery?: number | null | undefined;
    charging?: boolean | null | undefined;
    signal?: number | null | undefined;
    carrier?: string | null | undefined;
    network_type?: string | null | undefined;
    temperature?: number | null | undefined;
  };
  public_ip?: string | null | undefined;
  agent_version?: string | undefined;
  usage: { connection_id: string; bytes_in: number; bytes_out: number }[];
  proxy?: object | undefined;
  tunnel_transport?: 'udp' | 'tcp' | undefined;
  capabilities?: string[] | undefined;
}

const COMMAND_TYPES: ReadonlySet<string> = new Set(CommandType.options);

/** The command types the agent says it can run, those this server knows (a newer agent may list more), once each. */
export function knownCapabilities(reported: readonly string[] | undefined): string[] | null {
  return reported ? [...new Set(reported.filter((t) => COMMAND_TYPES.has(t)))] : null;
}

export async function heartbeat(ctx: Ctx, deviceId: string, hb: HeartbeatInput) {
  const m = hb.metrics;
  // The common case: metrics recorded, commands taken, previous status/address and credentials version read
  // back — batched with every other heartbeat arriving meanwhile (heartbeat-batch.ts).
  const prev = await ctx.heartbeats.submit(
    deviceId,
    m,
    hb.agent_version ?? null,
    hb.proxy ?? null,
    hb.tunnel_transport ?? null,
    knownCapabilities(hb.capabilities),
  );
  const now = prev.at;
  if (prev.old_status === null) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'device' });
  const cameOnline = heartbeatBringsOnline(prev.old_status);
  const ipChanged = !!hb.public_ip && hb.public_ip !== prev.old_ip;
  // The rare parts (state changes, usage) in a transaction of their own.
  let blocked: Blocked[] = [];
  let credVersion = prev.cred_version;
  if (cameOnline || ipChanged || hb.usage.length) {
    await ctx.db.tx(async (q) => {
      // Limits apply to the device's own count: a connection this report took to its limit is blocked now.
      blocked = await recordDeviceUsage(q, deviceId, now, hb.usage);
      if (blocked.length) credVersion = await credentialsVersion(q, deviceId, now);
      if (cameOnline) await heartbeatSeen(q, deviceId, now);
      // Not a change when a rotation result recorded it since the batch read the row, or a rotation is running.
      if (ipChanged) await recordObservedIp(ctx, q, deviceId, hb.public_ip!);
    });
  }
  if (cameOnline) announceHeartbeatSeen(ctx, deviceId, now);
  if (blocked.length) {
    for (const c of blocked)
      ctx.bus.publish('connection_updated', { id: c.id, device_id: c.device_id, blocked: true }, now);
    await syncDevice(ctx, deviceId);
  }
  const commands = prev.commands.map(toCommand);
  for (const c of commands) ctx.bus.publish('command_updated', c, now);
  // bytes_in / bytes_out: what this heartbeat reported (since the previous one), so a page can show the
  // device's throughput; proxy_open: customer sockets open on the device now (the dashboard's columns).
  let bytesIn = 0;
  let bytesOut = 0;
  for (const u of hb.usage) {
    bytesIn += u.bytes_in;
    bytesOut += u.bytes_out;
  }
  const open = (hb.proxy as { open?: unknown } | undefined)?.open;
  ctx.bus.publish(
    'heartbeat',
    {
      device_id: deviceId,
      metrics: m,
      current_ip: hb.public_ip ?? prev.old_ip,
      last_seen_at: now.toISOString(),
      bytes_in: bytesIn,
      bytes_out: bytesOut,
      ...(typeof open === 'number' ? { proxy_open: open } : {}),
    },
    now,
  );
  return {
    commands: commands.map((c) => ({ id: c.id, type: c.type, payload: c.payload })),
    heartbeat_interval_s: ctx.config.heartbeatIntervalS,
    credentials_version: credVersion,
  };
}
