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

/** Insert or replace by id, newest first. */
export function upsertCommand(list: Command[], c: Command): Command[] {
  const i = list.findIndex((x) => x.id === c.id);
  if (i === -1) return [c, ...list];
  const next = list.slice();
  next[i] = c;
  return next;
}
