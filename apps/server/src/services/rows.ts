// Row → API object mappers. One place decides what leaves the server: no token hash, no sealed secret.
import type { z } from 'zod';
import type { CommandStatus, CommandType } from '@pocketproxy/api-schema';

const iso = (d: unknown): string | null => (d == null ? null : new Date(d as string).toISOString());
const isoReq = (d: unknown): string => new Date(d as string).toISOString();
const num = (v: unknown): number | null => (v == null ? null : Number(v));

export type Row = Record<string, unknown>;

/** What the agent reported in its last heartbeat's `proxy` (api-schema ProxyStats). */
export type ProxyStatsView = Record<
  | 'listeners'
  | 'open'
  | 'admitted'
  | 'handshake_timeouts'
  | 'idle_closed'
  | 'auth_failures'
  | 'denied'
  | 'unauth_refused_per_address'
  | 'unauth_refused_total'
  | 'unauth_active'
  | 'listen_failures',
  number
>;

export function toDevice(r: Row) {
  return {
    id: r.id as string,
    name: r.name as string,
    description: r.description as string,
    status: r.status as 'online' | 'offline',
    tunnel_connected: Boolean(r.tunnel_connected),
    relay_id: (r.relay_id as string | null) ?? null,
    vpn_ip: (r.vpn_ip as string | null) ?? null,
    current_ip: (r.current_ip as string | null) ?? null,
    last_seen_at: iso(r.last_seen_at),
    paired_at: isoReq(r.paired_at),
    agent_version: (r.agent_version as string | null) ?? null,
    rotation_interval_s: num(r.rotation_interval_s),
    next_rotation_at: iso(r.next_rotation_at),
    metrics: {
      battery: num(r.battery),
      charging: r.charging == null ? null : Boolean(r.charging),
      signal: num(r.signal),
      carrier: (r.carrier as string | null) ?? null,
      network_type: (r.network_type as string | null) ?? null,
      temperature: num(r.temperature),
    },
    proxy_stats: (r.proxy_stats ?? null) as ProxyStatsView | null,
    tunnel_transport: (r.tunnel_transport ?? null) as 'udp' | 'tcp' | null,
    capabilities: (r.capabilities ?? null) as z.infer<typeof CommandType>[] | null,
    // farm_host_name comes from a join with farm_hosts (DEVICE_SELECT in devices.ts)
    farm_host_id: (r.farm_host_id as string | null) ?? null,
    farm_host_name: (r.farm_host_name as string | null) ?? null,
    kind: ((r.kind as string | null) ?? 'device') as 'device' | 'phone' | 'modem',
    hardware_id: (r.hardware_id as string | null) ?? null,
    model: (r.model as string | null) ?? null,
    created_at: isoReq(r.created_at),
    updated_at: isoReq(r.updated_at),
  };
}

export function toCommand(r: Row) {
  return {
    id: r.id as string,
    device_id: r.device_id as string,
    type: r.type as z.infer<typeof CommandType>,
    payload: (r.payload ?? {}) as Record<string, unknown>,
    status: r.status as z.infer<typeof CommandStatus>,
    result: (r.result ?? null) as Record<string, unknown> | null,
    source: r.source as string,
    created_at: isoReq(r.created_at),
    sent_at: iso(r.sent_at),
    acked_at: iso(r.acked_at),
    finished_at: iso(r.finished_at),
    expires_at: isoReq(r.expires_at),
  };
}

export function toCustomer(r: Row) {
  return {
    id: r.id as string,
    name: r.name as string,
    email: (r.email as string | null) ?? null,
    notes: r.notes as string,
    connections: Number(r.connections ?? 0),
    created_at: isoReq(r.created_at),
    updated_at: isoReq(r.updated_at),
  };
}

export function toRelay(r: Row) {
  return {
    id: r.id as string,
    name: r.name as string,
    host: r.host as string,
    tunnel_port: Number(r.tunnel_port),
    push_url: r.push_url as string,
    public_key: (r.public_key as string | null) ?? null,
    enabled: Boolean(r.enabled),
    devices_online: Number(r.devices_online ?? 0),
    created_at: isoReq(r.created_at),
  };
}

export function toIpHistory(r: Row) {
  return {
    id: Number(r.id),
    old_ip: (r.old_ip as string | null) ?? null,
    new_ip: r.new_ip as string,
    reason: r.reason as string,
    changed_at: isoReq(r.changed_at),
  };
}

export { iso, isoReq };
