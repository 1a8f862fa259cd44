// Response types inferred from the shared schemas, so the dashboard and API cannot drift apart.
import type { z } from 'zod';
import type * as S from '@pocketproxy/api-schema';

export type Device = z.infer<typeof S.Device>;
export type DeviceStatus = z.infer<typeof S.DeviceStatus>;
export type DeviceMetrics = z.infer<typeof S.DeviceMetrics>;
export type Connection = z.infer<typeof S.Connection>;
export type Customer = z.infer<typeof S.Customer>;
export type Relay = z.infer<typeof S.Relay>;
export type Command = z.infer<typeof S.Command>;
export type CommandStatus = z.infer<typeof S.CommandStatus>;
export type CommandType = z.infer<typeof S.CommandType>;
export type IpHistoryEntry = z.infer<typeof S.IpHistoryEntry>;
export type UsagePoint = z.infer<typeof S.UsagePoint>;
export type DeviceStats = z.infer<typeof S.DeviceStats>;
export type Overview = z.infer<typeof S.Overview>;
export type PairingCode = z.infer<typeof S.PairingCode>;
export type WsEvent = z.infer<typeof S.WsEvent>;
export type WsEventType = z.infer<typeof S.WsEventType>;
export type BulkRotateItem = z.infer<typeof S.BulkRotateResponse>['items'][number];
// Farm hosts and enrollment tokens (issue 14).
export type EnrollmentToken = z.infer<typeof S.EnrollmentToken>;
export type EnrollmentTokenCreated = z.infer<typeof S.EnrollmentTokenCreated>;
export type FarmHost = z.infer<typeof S.FarmHost>;
export type FarmHostDetail = z.infer<typeof S.FarmHostDetail>;
export type FarmRotateResponse = z.infer<typeof S.FarmHostRotateResponse>;
export type List<T> = { items: T[]; total: number };

/** The list with `item` replaced (same id) or added (at the end, or the start with `prepend`). */
export function upsertById<T extends { id: string }>(
  list: List<T> | undefined,
  item: T,
  prepend = false,
): List<T> | undefined {
  if (!list) return list;
  if (list.items.some((x) => x.id === item.id))
    return { total: list.total, items: list.items.map((x) => (x.id === item.id ? item : x)) };
  return { total: list.total + 1, items: prepend ? [item, ...list.items] : [...list.items, item] };
}
