// Human-readable one-liners for stored events and live WebSocket events.

const LABELS: Record<string, string> = {
  device_connected: 'Device connected',
  device_disconnected: 'Device disconnected',
  device_paired: 'Device paired',
  device_updated: 'Device updated',
  device_deleted: 'Device deleted',
  ip_changed: 'IP changed',
  command_updated: 'Command updated',
  connection_updated: 'Connection updated',
  heartbeat: 'Heartbeat',
};

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
  if ('old_ip' in data || 'new_ip' in data) return `${str(data.old_ip)} → ${str(data.new_ip)}`;
  const parts: string[] = [];
  for (const key of ['name', 'reason', 'type', 'status', 'vpn_ip', 'current_ip', 'error']) {
    if (data[key] !== undefined && data[key] !== null && data[key] !== '')
      parts.push(key === 'name' ? str(data[key]) : `${key.replace(/_/g, ' ')}: ${str(data[key])}`);
  }
  return parts.join(' · ');
}
