// Applying live events to device objects, shared by the device list and the device page.
import type { Device, DeviceMetrics, WsEvent } from './types';

export type DevicePatch = Partial<Omit<Device, 'metrics'>> & { metrics?: Partial<DeviceMetrics> };

/** The change a live event makes to one device, or null when the event is not about devices. */
export function devicePatchFromEvent(ev: WsEvent): { id: string; patch: DevicePatch; full: boolean } | null {
  const d = ev.data;
  const id =
    typeof d.device_id === 'string' ? d.device_id : typeof d.id === 'string' && d.id.startsWith('dev_') ? d.id : null;
  if (!id) return null;
  switch (ev.type) {
    case 'heartbeat': {
      const patch: DevicePatch = {};
      if (d.metrics && typeof d.metrics === 'object') patch.metrics = d.metrics as Partial<DeviceMetrics>;
      if (typeof d.current_ip === 'string' || d.current_ip === null) patch.current_ip = d.current_ip as string | null;
      patch.last_seen_at = typeof d.last_seen_at === 'string' ? d.last_seen_at : ev.at;
      return { id, patch, full: false };
    }
    case 'device_connected':
      return {
        id,
        patch: { status: 'online', last_seen_at: ev.at, ...(typeof d.vpn_ip === 'string' ? { vpn_ip: d.vpn_ip } : {}) },
        full: false,
      };
    case 'device_disconnected':
      return { id, patch: { status: 'offline' }, full: false };
    case 'ip_changed':
      return { id, patch: typeof d.new_ip === 'string' ? { current_ip: d.new_ip } : {}, full: false };
    case 'device_updated':
    case 'device_paired': {
      // A full Device in the event replaces ours; otherwise the caller refetches.
      const full =
        typeof d.id === 'string' &&
        typeof d.status === 'string' &&
        typeof d.paired_at === 'string' &&
        typeof d.metrics === 'object';
      return { id, patch: full ? (d as unknown as DevicePatch) : {}, full };
    }
    default:
      return null;
  }
}

export function applyPatch(dev: Device, patch: DevicePatch): Device {
  return { ...dev, ...patch, metrics: { ...dev.metrics, ...(patch.metrics ?? {}) } } as Device;
}
