'use client';
// Fleet-scale helpers for the devices list: every page of a list (the API pages at 1000), per-device
// figures from GET /api/devices/stats, live throughput from heartbeats, and row virtualisation.
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { api, type ApiError } from './api';
import type { Resource } from './resource';
import type { List } from './types';

const PAGE = 1000;

/** Lists longer than this are virtualised (useVirtualRows). */
export const VIRTUAL_FROM = 150;

/**
 * GET every page of a list (`path` without limit/offset); pages after the first in parallel.
 * `onFirst` gets the first page as soon as it is there (the page draws it while the rest loads).
 */
export async function fetchAll<T>(
  path: string,
  signal?: AbortSignal,
  onFirst?: (first: List<T>) => void,
): Promise<List<T>> {
  const sep = path.includes('?') ? '&' : '?';
  const first = await api<List<T>>(`${path}${sep}limit=${PAGE}&offset=0`, { signal });
  if (first.total <= first.items.length) return first;
  onFirst?.(first);
  const offsets: number[] = [];
  for (let o = PAGE; o < first.total; o += PAGE) offsets.push(o);
  const rest = await Promise.all(
    offsets.map((o) => api<List<T>>(`${path}${sep}limit=${PAGE}&offset=${o}`, { signal })),
  );
  return { total: first.total, items: first.items.concat(...rest.map((r) => r.items)) };
}

/**
 * useResource over every page of a list. On the first load the first page is shown at once (items
 * fewer than total) and the rest replaces it when every page is in; `complete` says when.
 */
export function useAllPages<T>(path: string): Resource<List<T>> & { complete: boolean } {
  const [complete, setComplete] = useState(false);
  const [data, setDataState] = useState<List<T> | undefined>(undefined);
  const [error, setError] = useState<ApiError | Error | null>(null);
  const [loading, setLoading] = useState(true);
  const ctrl = useRef<AbortController | null>(null);
  const pathRef = useRef(path);
  pathRef.current = path;
  const load = useCallback(() => {
    ctrl.current?.abort();
    const c = new AbortController();
    ctrl.current = c;
    setLoading(true);
    fetchAll<T>(pathRef.current, c.signal, (first) => {
      if (!c.signal.aborted) setDataState((prev) => prev ?? first);
    })
      .then((d) => {
        if (c.signal.aborted) return;
        setDataState(d);
        setError(null);
        setComplete(true);
      })
      .catch((err: unknown) => {
        if (c.signal.aborted || (err as Error).name === 'AbortError') return;
        setError(err instanceof Error ? err : new Error(String(err)));
      })
      .finally(() => {
        if (!c.signal.aborted) setLoading(false);
      });
  }, []);
  // biome-ignore lint/correctness/useExhaustiveDependencies: a new path fetches afresh (load reads it through pathRef)
  useEffect(() => {
    setDataState(undefined);
    load();
    return () => ctrl.current?.abort();
  }, [path, load]);
  const setData = useCallback((u: (prev: List<T> | undefined) => List<T> | undefined) => setDataState(u), []);
  return { data, error, loading, reload: load, setData, complete };
}

export type DeviceStats = {
  device_id: string;
  traffic_today_bytes: number;
  traffic_month_bytes: number;
  uptime_24h: number | null;
  uptime_7d: number | null;
  rotations_7d: { succeeded: number; failed: number; expired: number };
  rotation_success_rate_7d: number | null;
};

/** Live figures from heartbeat events: bytes of the last heartbeat over the time since the one before. */
export type LiveFigures = { bps?: number; open?: number; at: number };

/**
 * Throughput of one heartbeat: (bytes_in + bytes_out) reported by it, over the time since the device's
 * previous heartbeat (its last_seen_at before this one). null when the interval is unknown or absurd.
 */
export function throughputOf(bytes: number, at: string, previousSeen: string | null | undefined): number | null {
  if (!previousSeen) return null;
  const dt = (Date.parse(at) - Date.parse(previousSeen)) / 1000;
  if (!(dt >= 1) || dt > 600) return null;
  return (bytes * 8) / dt;
}

export function formatBps(bps: number | null | undefined): string {
  if (bps == null) return '—';
  if (bps < 1000) return `${Math.round(bps)} bit/s`;
  const units = ['kbit/s', 'Mbit/s', 'Gbit/s'];
  let v = bps / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

export const percent = (r: number | null | undefined) =>
  r == null ? '—' : `${r >= 0.999 || r === 0 ? Math.round(r * 100) : (Math.floor(r * 1000) / 10).toFixed(1)}%`;

/**
 * Row virtualisation for a table in the page's normal flow (the window scrolls): renders only the rows
 * in view plus `overscan` each side, with spacer rows keeping the scroll height. Row height is measured
 * from a rendered row (tables stacked as cards on narrow screens have taller rows). Below `threshold`
 * rows every row is rendered.
 */
export function useVirtualRows(count: number, threshold = 150, overscan = 6) {
  const bodyRef = useRef<HTMLTableSectionElement>(null);
  const [rowH, setRowH] = useState(41);
  const [range, setRange] = useState<[number, number]>([0, Math.min(count, 60)]);
  const virtual = count > threshold;

  const compute = useCallback(() => {
    const body = bodyRef.current;
    if (!body || !virtual) return;
    const top = body.getBoundingClientRect().top; // viewport y of the first row (spacer included)
    const first = Math.max(0, Math.floor(-top / rowH) - overscan);
    const visible = Math.ceil(window.innerHeight / rowH) + 2 * overscan;
    const last = Math.min(count, first + visible);
    setRange((r) => (r[0] === first && r[1] === last ? r : [first, last]));
  }, [count, rowH, overscan, virtual]);

  useEffect(() => {
    if (!virtual) return;
    let frame = 0;
    const onScroll = () => {
      if (!frame)
        frame = requestAnimationFrame(() => {
          frame = 0;
          compute();
        });
    };
    window.addEventListener('scroll', onScroll, { passive: true });
    window.addEventListener('resize', onScroll);
    compute();
    return () => {
      cancelAnimationFrame(frame);
      window.removeEventListener('scroll', onScroll);
      window.removeEventListener('resize', onScroll);
    };
  }, [compute, virtual]);

  // Measure a real row once rows are there (and when the layout may have changed them).
  useLayoutEffect(() => {
    const body = bodyRef.current;
    if (!body || !virtual) return;
    const row = body.querySelector<HTMLTableRowElement>('tr[data-row]');
    const h = row?.getBoundingClientRect().height;
    if (h && Math.abs(h - rowH) > 0.5) setRowH(h);
  });

  const [start, end] = virtual ? [Math.min(range[0], count), Math.min(range[1], count)] : [0, count];
  return {
    bodyRef,
    start,
    end,
    virtual,
    padTop: virtual ? start * rowH : 0,
    padBottom: virtual ? (count - end) * rowH : 0,
  };
}
