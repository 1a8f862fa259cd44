// Formatting helpers shared by the pages: bytes, ages, timestamps, signal.

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60 ? `${s % 60}s` : ''}`.trim();
  if (s < 86400) {
    const m = Math.floor((s % 3600) / 60);
    return `${Math.floor(s / 3600)}h${m ? ` ${m}m` : ''}`;
  }
  const h = Math.floor((s % 86400) / 3600);
  return `${Math.floor(s / 86400)}d${h ? ` ${h}h` : ''}`;
}

/** "12s ago", or "—" for never. */
export function formatAge(iso: string | null | undefined, now: number): string {
  if (!iso) return 'never';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '—';
  const s = (now - t) / 1000;
  if (s < 1) return 'just now';
  return `${formatDuration(s)} ago`;
}

export type Freshness = 'fresh' | 'stale' | 'dead';
/** green < 60 s, amber < 5 min, red otherwise (or never seen). */
export function freshness(iso: string | null | undefined, now: number): Freshness {
  if (!iso) return 'dead';
  const s = (now - Date.parse(iso)) / 1000;
  if (s < 60) return 'fresh';
  if (s < 300) return 'stale';
  return 'dead';
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

/** The date alone ("Jan 1, 2027"); formatTime gives the time too. */
export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}

export function formatSignal(signal: number | null | undefined): string {
  if (signal === null || signal === undefined) return '—';
  return signal < 0 ? `${signal} dBm` : `${signal}/4`;
}

export function signalLevel(signal: number | null | undefined): 'good' | 'fair' | 'poor' | 'none' {
  if (signal === null || signal === undefined) return 'none';
  if (signal >= 0) return signal >= 3 ? 'good' : signal >= 2 ? 'fair' : 'poor';
  return signal >= -95 ? 'good' : signal >= -110 ? 'fair' : 'poor';
}

export function formatInterval(s: number | null | undefined): string {
  if (!s) return 'off';
  return `every ${formatDuration(s)}`;
}
