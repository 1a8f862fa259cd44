'use client';
// The app frame: navigation, live-connection indicator, sign-out, and the auth guard that sends
// visitors without a session to /login. The login page renders bare.
import Link from 'next/link';
import { usePathname } from 'next/navigation';
import { useEffect, useState } from 'react';
import { LiveProvider, useLiveStatus } from '@/lib/live';
import { endSession, getToken, goToLogin, msUntilExpiry, SESSION_EXPIRED } from '@/lib/session';
import { watchTables } from '@/lib/tables';

const NAV = [
  { href: '/', label: 'Overview' },
  { href: '/devices/', label: 'Devices' },
  { href: '/pair/', label: 'Pair a device' },
  { href: '/farms/', label: 'Farm hosts' },
  { href: '/connections/', label: 'Connections' },
  { href: '/customers/', label: 'Customers' },
  { href: '/relays/', label: 'Relays' },
];

function isActive(pathname: string, href: string) {
  if (href === '/') return pathname === '/';
  return pathname.startsWith(href);
}

function LiveIndicator() {
  const status = useLiveStatus();
  const text =
    status === 'live' ? 'Live' : status === 'connecting' ? 'Connecting…' : 'Reconnecting · polling every 10 s';
  return (
    <span className={`live live-${status}`} role="status" title="Live updates over WebSocket">
      <span className="dot" aria-hidden="true" />
      {text}
    </span>
  );
}

export function Shell({ children }: { children: React.ReactNode }) {
  const pathname = usePathname() || '/';
  const bare = pathname.startsWith('/login');
  const [authed, setAuthed] = useState<boolean | null>(null);

  // biome-ignore lint/correctness/useExhaustiveDependencies: the token is checked again on every navigation (pathname)
  useEffect(() => {
    if (bare) return;
    const ok = !!getToken();
    setAuthed(ok);
    if (!ok) goToLogin();
  }, [bare, pathname]);

  // Leave when the token expires, even if the page makes no request that would get the 401.
  useEffect(() => {
    if (bare || !authed) return;
    const ms = msUntilExpiry();
    if (ms === null) return;
    const t = setTimeout(
      () => {
        endSession(SESSION_EXPIRED);
        goToLogin();
      },
      Math.min(Math.max(ms, 0), 2 ** 31 - 1),
    );
    return () => clearTimeout(t);
  }, [bare, authed]);

  // Tables too wide for their box become stacked cards instead of scrolling sideways (lib/tables.ts).
  useEffect(() => {
    if (bare || !authed) return;
    const main = document.getElementById('content');
    return main ? watchTables(main) : undefined;
  }, [bare, authed]);

  if (bare) return <main className="main main-bare">{children}</main>;
  if (!authed) return <main className="main" aria-busy="true" />;

  return (
    <LiveProvider>
      <a className="skip" href="#content">
        Skip to content
      </a>
      <header className="topbar">
        <Link href="/" className="brand">
          PocketProxy
        </Link>
        <nav aria-label="Main">
          <ul>
            {NAV.map((n) => (
              <li key={n.href}>
                <Link href={n.href} aria-current={isActive(pathname, n.href) ? 'page' : undefined}>
                  {n.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="topbar-right">
          <LiveIndicator />
          <button
            type="button"
            className="btn btn-small btn-ghost"
            onClick={() => {
              endSession();
              window.location.assign('/login/');
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <main className="main" id="content">
        {children}
      </main>
    </LiveProvider>
  );
}
