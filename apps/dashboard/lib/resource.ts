'use client';
// useResource: GET a JSON resource, keep the last good value while refreshing, expose errors.
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, type ApiError } from './api';

export type Resource<T> = {
  data: T | undefined;
  error: ApiError | Error | null;
  loading: boolean;
  reload: () => void;
  setData: (update: (prev: T | undefined) => T | undefined) => void;
};

export function useResource<T>(path: string | null): Resource<T> {
  const [data, setDataState] = useState<T | undefined>(undefined);
  const [error, setError] = useState<ApiError | Error | null>(null);
  const [loading, setLoading] = useState(path !== null);
  const ctrl = useRef<AbortController | null>(null);
  const pathRef = useRef(path);
  pathRef.current = path;

  const load = useCallback(() => {
    const p = pathRef.current;
    if (p === null) return;
    ctrl.current?.abort();
    const c = new AbortController();
    ctrl.current = c;
    setLoading(true);
    api<T>(p, { signal: c.signal })
      .then((d) => {
        if (c.signal.aborted) return;
        setDataState(d);
        setError(null);
      })
      .catch((err: unknown) => {
        if (c.signal.aborted || (err as Error).name === 'AbortError') return;
        setError(err instanceof Error ? err : new Error(String(err)));
      })
      .finally(() => {
        if (!c.signal.aborted) setLoading(false);
      });
  }, []);

  useEffect(() => {
    if (path === null) return;
    setDataState(undefined);
    load();
    return () => ctrl.current?.abort();
  }, [path, load]);

  const setData = useCallback((update: (prev: T | undefined) => T | undefined) => setDataState(update), []);
  return { data, error, loading, reload: load, setData };
}
