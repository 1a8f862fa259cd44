'use client';
// Live updates: one WebSocket per tab (`/ws?token=…`) fanned out to the pages that subscribe.
// While the socket is down it reconnects with capped, jittered back-off, and pages fall back to
// polling every 10 s (usePolling), so the screen is never silently stale.
import { createContext, useContext, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { getToken } from './session';
import type { WsEvent, WsEventType } from './types';

export type LiveStatus = 'connecting' | 'live' | 'down';
type Listener = (ev: WsEvent) => void;

export const POLL_INTERVAL_MS = 10_000;
const MAX_BACKOFF_MS = 30_000;

// Checked by hand rather than with the zod WsEvent schema: the shell is on every page, and zod
// (~34 KB gzip) is then only downloaded by pages that have forms. The list is type-checked
// against the schema's enum, both ways.
const EVENT_TYPES = [
  'device_connected',
  'device_disconnected',
  'heartbeat',
  'command_updated',
  'ip_changed',
  'device_paired',
  'device_updated',
  'connection_updated',
] as const satisfies readonly WsEventType[];
type _AllListed = Exclude<WsEventType, (typeof EVENT_TYPES)[number]> extends never ? true : never;
const _allListed: _AllListed = true;
void _allListed;
const KNOWN = new Set<string>(EVENT_TYPES);

function asEvent(v: unknown): WsEvent | null {
  if (!v || typeof v !== 'object') return null;
  const e = v as Record<string, unknown>;
  if (typeof e.type !== 'string' || !KNOWN.has(e.type)) return null;
  if (!e.data || typeof e.data !== 'object' || Array.isArray(e.data)) return null;
  return {
    type: e.type as WsEventType,
    data: e.data as Record<string, unknown>,
    at: typeof e.at === 'string' ? e.at : new Date().toISOString(),
  };
}

class LiveHub {
  status: LiveStatus = 'connecting';
  private listeners = new Set<Listener>();
  private statusListeners = new Set<() => void>();
  private ws: WebSocket | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = true;

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.ws?.close();
    this.ws = null;
  }

  subscribe(fn: Listener) {
    this.listeners.add(fn);
    return () => void this.listeners.delete(fn);
  }

  onStatus(fn: () => void) {
    this.statusListeners.add(fn);
    return () => void this.statusListeners.delete(fn);
  }

  private setStatus(s: LiveStatus) {
    if (this.status === s) return;
    this.status = s;
    for (const fn of this.statusListeners) fn();
  }

  private connect() {
    const token = getToken();
    if (!token || this.stopped) return;
    const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws: WebSocket;
    try {
      ws = new WebSocket(
        `${process.env.NEXT_PUBLIC_POCKETPROXY_WS_ORIGIN ?? `${proto}//${window.location.host}`}/ws?token=${encodeURIComponent(token)}`,
      );
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.setStatus('live');
    };
    ws.onmessage = (msg) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(String(msg.data));
      } catch {
        return;
      }
      const ev = asEvent(parsed);
      if (!ev) return; // unknown event types are ignored, not fatal
      for (const fn of this.listeners) {
        try {
          fn(ev);
        } catch (err) {
          console.warn('live listener failed', err);
        }
      }
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.setStatus('down');
      this.scheduleReconnect();
    };
    ws.onerror = () => {
      /* onclose follows and handles reconnecting */
    };
  }

  private scheduleReconnect() {
    if (this.stopped) return;
    const base = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** this.attempt);
    this.attempt++;
    const delay = base / 2 + Math.random() * (base / 2);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }
}

const HubContext = createContext<LiveHub | null>(null);

export function LiveProvider({ children }: { children: React.ReactNode }) {
  const [hub] = useState(() => new LiveHub());
  useEffect(() => {
    hub.start();
    return () => hub.stop();
  }, [hub]);
  return <HubContext.Provider value={hub}>{children}</HubContext.Provider>;
}

const noop = () => () => {};

export function useLiveStatus(): LiveStatus {
  const hub = useContext(HubContext);
  return useSyncExternalStore(
    hub ? (fn) => hub.onStatus(fn) : noop,
    () => hub?.status ?? 'down',
    () => 'connecting',
  );
}

/** Call `handler` for every live event; the latest handler is used without resubscribing. */
export function useLiveEvents(handler: Listener): void {
  const hub = useContext(HubContext);
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => {
    if (!hub) return;
    return hub.subscribe((ev) => ref.current(ev));
  }, [hub]);
}

/**
 * Re-run `refresh` every 10 s while the socket is not live, and once when it comes back
 * (events sent while it was down are lost, so resynchronise).
 */
export function usePolling(refresh: () => void, intervalMs = POLL_INTERVAL_MS): void {
  const status = useLiveStatus();
  const ref = useRef(refresh);
  ref.current = refresh;
  const prev = useRef<LiveStatus>(status);
  useEffect(() => {
    const was = prev.current;
    prev.current = status;
    if (status === 'live') {
      if (was === 'down') ref.current();
      return;
    }
    const t = setInterval(() => ref.current(), intervalMs);
    return () => clearInterval(t);
  }, [status, intervalMs]);
}

/** Coalesce bursts (e.g. a heartbeat from every device) into one call after `ms`. */
export function useDebounced(fn: () => void, ms: number): () => void {
  const ref = useRef(fn);
  ref.current = fn;
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current);
    },
    [],
  );
  const [call] = useState(() => () => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      ref.current();
    }, ms);
  });
  return call;
}
