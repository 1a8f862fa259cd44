// Command presentation: labels, state colours, one-line results.
import type { Command, CommandStatus, CommandType } from './types';

export const COMMAND_LABELS: Record<CommandType, string> = {
  rotate_ip: 'Rotate IP',
  wifi_toggle: 'Toggle Wi-Fi',
  airplane_mode: 'Airplane mode cycle',
  reboot: 'Reboot',
  config_update: 'Config update',
};

export function commandTone(s: CommandStatus): 'ok' | 'warn' | 'bad' | 'info' | 'muted' {
  switch (s) {
    case 'succeeded':
      return 'ok';
    case 'failed':
      return 'bad';
    case 'expired':
      return 'warn';
    case 'pending':
      return 'muted';
    default:
      return 'info';
  }
}

export const TERMINAL: ReadonlySet<CommandStatus> = new Set(['succeeded', 'failed', 'expired']);

export function commandResult(c: Command): string {
  const r = c.result;
  if (!r) return c.status === 'pending' ? 'waiting for the device' : '';
  if (typeof r.old_ip === 'string' || typeof r.new_ip === 'string') return `${r.old_ip ?? '?'} → ${r.new_ip ?? '?'}`;
  if (typeof r.error === 'string') return r.error;
  if (typeof r.message === 'string') return r.message;
  const s = JSON.stringify(r);
  return s === '{}' ? '' : s.length > 120 ? `${s.slice(0, 117)}…` : s;
}

// A command only moves forward (pending → sent → acked → succeeded | failed | expired), but its
// copies reach the page out of order: the answer to our own POST or a list refetch can arrive after
// the WebSocket already delivered a later state. The further state wins, whoever delivers it last.
const RANK: Record<CommandStatus, number> = { pending: 0, sent: 1, acked: 2, succeeded: 3, failed: 3, expired: 3 };

/** The further along of two copies of one command (b on a tie: the fresher copy of the same state). */
export function furthest(a: Command | undefined, b: Command): Command {
  if (!a) return b;
  return (RANK[a.status] ?? 0) > (RANK[b.status] ?? 0) ? a : b;
}

/** Insert, or merge by id keeping the further state; newest first. */
export function upsertCommand(list: Command[], c: Command): Command[] {
  const i = list.findIndex((x) => x.id === c.id);
  if (i === -1) return [c, ...list];
  const merged = furthest(list[i], c);
  if (merged === list[i]) return list;
  const next = list.slice();
  next[i] = merged;
  return next;
}

/** Remember the furthest copy of each command the page was handed (bounded to the latest 500). */
export function remember(seen: Map<string, Command>, c: Command): void {
  const m = furthest(seen.get(c.id), c);
  seen.delete(c.id);
  seen.set(c.id, m);
  if (seen.size > 500) seen.delete(seen.keys().next().value as string);
}

/**
 * A fetched list with every command at least as far as `seen` (the copies the page got meanwhile),
 * plus the ones created after the fetch began; newest first.
 */
export function mergeSeen(items: Command[], seen: ReadonlyMap<string, Command>): Command[] {
  let changed = false;
  const ids = new Set<string>();
  const out = items.map((c) => {
    ids.add(c.id);
    const m = furthest(seen.get(c.id), c);
    if (m !== c) changed = true;
    return m;
  });
  const newest = items[0]?.created_at ?? '';
  for (const c of seen.values())
    if (!ids.has(c.id) && c.created_at > newest) {
      out.push(c);
      changed = true;
    }
  if (!changed) return items;
  return out.sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
}

/**
 * Whether the device's agent can run this command type: the types it reported (`capabilities`, its
 * driver's); a device that has reported none (an older agent) is offered everything, as the API accepts.
 */
export function canRun(d: { capabilities?: readonly CommandType[] | null }, type: CommandType): boolean {
  return d.capabilities == null || d.capabilities.includes(type);
}
