// The connections page's search (kept apart from lib/export.ts, which loads only with the export panel).
import type { Named } from './export';
import type { Connection } from './types';

/**
 * Does the connection match the search? Every word must match one of: username, port, protocol, the
 * device's name or id, the customer's name or id, the connection id (case-insensitive substrings).
 */
export function matchesSearch(c: Connection, query: string, names: Named = {}): boolean {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return true;
  const hay = [
    c.username,
    String(c.port),
    c.protocol,
    c.id,
    c.device_id,
    names.deviceName?.(c.device_id) ?? '',
    c.customer_id ?? '',
    c.customer_id ? (names.customerName?.(c.customer_id) ?? '') : '',
  ]
    .join('\n')
    .toLowerCase();
  return words.every((w) => hay.includes(w));
}
