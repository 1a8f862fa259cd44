'use client';
// Fleet-scale helpers for the devices list: every page of a list (the API pages at 1000), per-device
// figures from GET /api/devices/stats, live throughput from heartbeats, and row virtualisation.
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, type ApiError } from './api';
import type { Resource } from './resource';
import type { List } from './types';

const PAGE = 1000;

/** Lists longer than this are virtualised (useVirtualRows). */
export const VIRTUAL_FROM = 150;

/** The first page when it is drawn before the rest arrives: a screenful and more, and past VIRTUAL_FROM. */
const FIRST_PAGE = 200;

/**
 * GET every page of a list (`path` without limit/offset); pages after the first in parallel.
 * `onFirst` gets the first page as soon as it is there (the page draws it while the rest loads); that
 * first page is a small one (FIRST_PAGE), which the API answers several times faster than 1000.
 */
export async function fetchAll<T>(
  path: string,
  signal?: AbortSignal,
  onFirst?: (first: List<T>) => void,
): Promise<List<T>> {
  const sep = path.includes('?') ? '&' : '?';
  const firstLimit = onFirst ? FIRST_PAGE : PAGE;
  const first = await api<List<T>>(`${path}${sep}limit=${firstLimit}&offset=0`, { signal });
  if (first.total <= first.items.length) return first;
  onFirst?.(first);
  const offsets: number[] = [];
  for (let o = firstLimit; o < first.total; o += PAGE) offsets.push(o);
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

export type { DeviceStats } from './types';

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
