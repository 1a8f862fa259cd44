// Human-readable one-liners for stored events and live WebSocket events.
import { COMMAND_LABELS } from './commands';

const LABELS: Record<string, string> = {
  device_connected: 'Device connected',
  device_disconnected: 'Device disconnected',
  device_paired: 'Device paired',
  device_updated: 'Device updated',
  device_deleted: 'Device deleted',
  ip_changed: 'IP changed',
  command_updated: 'Command updated',
  connection_updated: 'Connection updated',
  command_failed: 'Command failed',
  heartbeat: 'Heartbeat',
};

/** Why a device went away or an address changed, in words (the raw value stays in the tooltip). */
const REASONS: Record<string, string> = {
  dead: 'tunnel went silent',
  expired: 'tunnel session expired',
  removed: 'removed from the relay',
  stale: 'no heartbeat',
  relay_stopped: 'relay stopped',
  disconnected: 'disconnected',
  rotation: 'rotation',
  observed: 'seen in a heartbeat',
};
export const reasonLabel = (r: string): string => REASONS[r] ?? r.replace(/_/g, ' ');
const STATUSES: Record<string, string> = { online: 'online', offline: 'offline' };

export function eventLabel(type: string): string {
  return LABELS[type] ?? type.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

export function eventTone(type: string): 'ok' | 'warn' | 'bad' | 'info' | 'muted' {
  if (type === 'device_connected' || type === 'device_paired') return 'ok';
  if (type === 'device_disconnected') return 'bad';
  if (type === 'ip_changed') return 'info';
  if (/fail|error|expired/.test(type)) return 'warn';
  return 'muted';
}

function str(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** A short description of an event's data. */
export function eventSummary(type: string, data: Record<string, unknown>): string {
  if ('old_ip' in data || 'new_ip' in data) {
    const why = typeof data.reason === 'string' ? ` (${reasonLabel(data.reason)})` : '';
    return `${str(data.old_ip)} → ${str(data.new_ip)}${why}`;
  }
  const parts: string[] = [];
  if (typeof data.name === 'string' && data.name) parts.push(data.name);
  if (typeof data.type === 'string') parts.push(COMMAND_LABELS[data.type as keyof typeof COMMAND_LABELS] ?? data.type);
  if (typeof data.reason === 'string') {
    const why = reasonLabel(data.reason);
    parts.push(
      data.reason === 'stale' && typeof data.silent_for_s === 'number' ? `${why} for ${data.silent_for_s} s` : why,
    );
  }
  if (typeof data.status === 'string') parts.push(STATUSES[data.status] ?? data.status.replace(/_/g, ' '));
  const result = data.result && typeof data.result === 'object' ? (data.result as Record<string, unknown>) : null;
  const error = typeof data.error === 'string' ? data.error : typeof result?.error === 'string' ? result.error : null;
  if (error) parts.push(error);
  if (typeof data.vpn_ip === 'string') parts.push(`tunnel address ${data.vpn_ip}`);
  if (typeof data.current_ip === 'string') parts.push(`IP ${data.current_ip}`);
  if (data.via === 'heartbeat') parts.push('by heartbeat');
  if (data.via === 'tunnel' && type === 'device_connected') parts.push('tunnel up');
  return parts.join(' · ');
}
