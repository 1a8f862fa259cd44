// Thin fetch wrapper for the PocketProxy REST API (same origin, relative URLs).
// Every admin call carries the session token; a 401 ends the session and returns to /login.
// Errors surface as ApiError carrying the RFC 9457 problem the server sent.
import type { Problem } from '@pocketproxy/api-schema';
import { endSession, getToken, goToLogin, SESSION_EXPIRED } from './session';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem | null,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
  /** Per-field messages keyed by a dotted path without the `body.` prefix. */
  get fieldErrors(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const e of this.problem?.errors ?? []) {
      const key = normalizePath(e.path);
      if (!(key in out)) out[key] = e.message;
    }
    return out;
  }
}

export function normalizePath(path: string): string {
  return path
    .replace(/^\/+/, '')
    .replace(/\//g, '.')
    .replace(/^body\./, '')
    .replace(/\[(\d+)\]/g, '.$1');
}

type Options = { method?: string; body?: unknown; signal?: AbortSignal; auth?: boolean };

async function request(path: string, opts: Options, accept: string): Promise<Response> {
  const headers: Record<string, string> = { accept };
  const auth = opts.auth ?? true;
  if (auth) {
    const token = getToken();
    if (!token) {
      goToLogin();
      throw new ApiError(401, null, SESSION_EXPIRED);
    }
    headers.authorization = `Bearer ${token}`;
  }
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  let res: Response;
  try {
    res = await fetch(path, { method: opts.method ?? 'GET', headers, body, signal: opts.signal, cache: 'no-store' });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, null, 'Cannot reach the PocketProxy API. Check that the server is running.');
  }
  if (res.ok) return res;
  let problem: Problem | null = null;
  try {
    const data: unknown = await res.json();
    if (data && typeof data === 'object' && 'status' in data) problem = data as Problem;
  } catch {
    /* not JSON */
  }
  if (res.status === 401 && auth) {
    endSession(SESSION_EXPIRED);
    goToLogin();
    throw new ApiError(401, problem, SESSION_EXPIRED);
  }
  const message = problem?.detail || problem?.title || `${res.status} ${res.statusText || 'request failed'}`;
  throw new ApiError(res.status, problem, message);
}

export async function api<T>(path: string, opts: Options = {}): Promise<T> {
  const res = await request(path, opts, 'application/json');
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Fetch a text resource (e.g. an .ovpn file) with the session token. */
export async function apiText(path: string, opts: Options = {}): Promise<string> {
  const res = await request(path, opts, 'text/plain, application/x-openvpn-profile, */*');
  return res.text();
}

/** Run `fn` over `items` with at most `limit` in flight; keeps per-item outcomes. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>) {
  const results: Array<{ item: T; ok: true; value: R } | { item: T; ok: false; error: unknown }> = new Array(
    items.length,
  );
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      const item = items[i] as T;
      try {
        results[i] = { item, ok: true, value: await fn(item) };
      } catch (error) {
        results[i] = { item, ok: false, error };
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
