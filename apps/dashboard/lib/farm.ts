// Farm hosts and enrollment tokens (issue 14): the labels and the small derivations the farm pages, the
// devices list and the device page share. The types come from the shared schemas (lib/types.ts).
import type { Device, EnrollmentToken, FarmRotateResponse } from './types';

export type DeviceKind = Device['kind'];

export const KIND_LABELS: Record<DeviceKind, string> = {
  phone: 'Phone',
  modem: 'Modem',
  device: 'Device',
};

/** What an operator reads in a hardware id: an adb serial for a phone, the IMEI for a modem. */
export const HARDWARE_ID_LABEL: Record<DeviceKind, string> = {
  phone: 'adb serial',
  modem: 'IMEI',
  device: 'Hardware ID',
};

export function farmHostHref(id: string): string {
  return `/farms/view/?id=${encodeURIComponent(id)}`;
}

/** How a token's state (computed by the API: revoked, else expired, else exhausted) is shown. */
export const TOKEN_STATE_TONE: Record<EnrollmentToken['state'], 'ok' | 'muted' | 'bad' | 'warn'> = {
  active: 'ok',
  revoked: 'muted',
  expired: 'bad',
  exhausted: 'warn',
};

/** "3 / 10", or "3" with no limit. */
export function enrolledText(t: Pick<EnrollmentToken, 'devices_enrolled' | 'max_devices'>): string {
  return t.max_devices === null ? `${t.devices_enrolled} (no limit)` : `${t.devices_enrolled} / ${t.max_devices}`;
}

/** Expiry choices of the create form, in seconds (the API takes ttl_s; none: the token never expires). */
export const TTL_CHOICES: { label: string; ttl_s: number | null }[] = [
  { label: 'Never', ttl_s: null },
  { label: '1 hour', ttl_s: 3600 },
  { label: '1 day', ttl_s: 86400 },
  { label: '7 days', ttl_s: 7 * 86400 },
  { label: '30 days', ttl_s: 30 * 86400 },
];

export type Skipped = FarmRotateResponse['skipped'][number];

/** Why "Rotate all" left a device out (the API's `skipped`). */
export const SKIP_LABELS: Record<Skipped['reason'], string> = {
  offline: 'offline',
  no_rotate_capability: 'cannot rotate (its agent reports no rotate_ip: no rotation driver, or not reported yet)',
};
