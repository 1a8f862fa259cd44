// The admin session: the JWT lives in sessionStorage only (gone when the tab closes, never in
// localStorage, never in a URL except the WebSocket query the API requires).
const TOKEN = 'pp.token';
const EXPIRES = 'pp.token_expires_at';
const FLASH = 'pp.flash';

export const SESSION_EXPIRED = 'Your session expired, please sign in again';

function store(): Storage | null {
  try {
    return typeof window === 'undefined' ? null : window.sessionStorage;
  } catch {
    return null; // storage disabled by the browser
  }
}

export function getToken(): string | null {
  const s = store();
  const token = s?.getItem(TOKEN) ?? null;
  if (!token) return null;
  const exp = Date.parse(s?.getItem(EXPIRES) ?? '');
  if (Number.isFinite(exp) && exp <= Date.now()) {
    endSession(SESSION_EXPIRED);
    return null;
  }
  return token;
}

/** Milliseconds until the session's token expires, or null when unknown. */
export function msUntilExpiry(): number | null {
  const exp = Date.parse(store()?.getItem(EXPIRES) ?? '');
  return Number.isFinite(exp) ? exp - Date.now() : null;
}

export function startSession(token: string, expiresAt: string): void {
  const s = store();
  s?.setItem(TOKEN, token);
  s?.setItem(EXPIRES, expiresAt);
  s?.removeItem(FLASH);
}

/** Forget the token; `message` is shown once on the login page. */
export function endSession(message?: string): void {
  const s = store();
  s?.removeItem(TOKEN);
  s?.removeItem(EXPIRES);
  if (message) s?.setItem(FLASH, message);
}

export function takeFlash(): string | null {
  const s = store();
  const msg = s?.getItem(FLASH) ?? null;
  if (msg) s?.removeItem(FLASH);
  return msg;
}

/** Send the browser to the login page, remembering where it was. */
export function goToLogin(): void {
  if (typeof window === 'undefined') return;
  const here = window.location.pathname + window.location.search;
  if (window.location.pathname.startsWith('/login')) return;
  const next = here && here !== '/' ? `?next=${encodeURIComponent(here)}` : '';
  window.location.assign(`/login/${next}`);
}
