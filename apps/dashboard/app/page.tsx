'use client';
import Link from 'next/link';
import { lazy, Suspense, useEffect, useMemo } from 'react';
import { useDebounced, useLiveEvents, usePolling } from '@/lib/live';
import { useResource } from '@/lib/resource';
import { formatBytes, formatTime } from '@/lib/format';
import { eventLabel, eventSummary, eventTone } from '@/lib/events';
import type { Device, List, Overview } from '@/lib/types';
import { Badge, Empty, ErrorBanner, Loading, PageHeader } from '@/components/ui';

// The fleet traffic chart (and uPlot after it) load with the page, outside the route's own chunk, so the
// other pages' prefetch of this route stays small.
const FleetTraffic = lazy(() => import('@/components/FleetTraffic').then((m) => ({ default: m.FleetTraffic })));

/** Events that change the counters or the event list; heartbeats alone do not. */
const RELEVANT = new Set([
  'device_connected',
  'device_disconnected',
  'device_paired',
  'device_updated',
  'ip_changed',
  'connection_updated',
  'command_updated',
]);

export default function OverviewPage() {
  const ov = useResource<Overview>('/api/overview');
  // Events carry device ids; show the names operators gave the devices.
  const devices = useResource<List<Device>>('/api/devices?limit=1000');
  const names = useMemo(() => new Map((devices.data?.items ?? []).map((x) => [x.id, x.name])), [devices.data]);
  const refresh = useDebounced(ov.reload, 1000);
  const refreshNames = useDebounced(devices.reload, 1000);
  useLiveEvents((ev) => {
    if (RELEVANT.has(ev.type)) refresh();
    if (ev.type === 'device_paired' || ev.type === 'device_updated') refreshNames();
  });
  usePolling(ov.reload);
  useEffect(() => {
    document.title = 'Overview · PocketProxy';
  }, []);

  const d = ov.data;
  return (
    <>
      <PageHeader title="Overview">
        <Link className="btn btn-primary" href="/pair/">
          Pair a device
        </Link>
      </PageHeader>
      <ErrorBanner error={ov.error} onRetry={ov.reload} />
      {!d && !ov.error && <Loading />}
      {d && (
        <>
          <div className="grid grid-stats">
            <div className="card stat">
              <Link href="/devices/?status=online">
                <div className="label">Devices online</div>
                <div className="value" style={{ color: 'var(--ok)' }}>
                  {d.devices.online}
                </div>
              </Link>
              <div className="sub">of {d.devices.total} total</div>
            </div>
            <div className="card stat">
              <Link href="/devices/?status=offline">
                <div className="label">Devices offline</div>
                <div className="value" style={{ color: d.devices.offline ? 'var(--bad)' : undefined }}>
                  {d.devices.offline}
                </div>
              </Link>
              <div className="sub">{d.devices.offline ? 'their proxies do not work' : 'all devices up'}</div>
            </div>
            <div className="card stat">
              <Link href="/devices/">
                <div className="label">Devices total</div>
                <div className="value">{d.devices.total}</div>
              </Link>
            </div>
            <div className="card stat">
              <Link href="/connections/">
                <div className="label">Connections</div>
                <div className="value">{d.connections.total}</div>
              </Link>
              <div className="sub">
                {d.connections.enabled} enabled
                {d.connections.blocked > 0 && (
                  <span title="Enabled, but held by the server: bandwidth limit reached or expired">
                    {' '}
                    · <span style={{ color: 'var(--warn)' }}>{d.connections.blocked} blocked</span>
                  </span>
                )}
                {d.connections.total > d.connections.enabled && (
                  <> · {d.connections.total - d.connections.enabled} disabled</>
                )}
              </div>
            </div>
            <div className="card stat">
              <Link href="/customers/">
                <div className="label">Customers</div>
                <div className="value">{d.customers}</div>
              </Link>
            </div>
            <div className="card stat">
              <div className="label">Traffic today</div>
              <div className="value">{formatBytes(d.traffic.today_bytes)}</div>
            </div>
            <div className="card stat">
              <div className="label">Traffic this month</div>
              <div className="value">{formatBytes(d.traffic.month_bytes)}</div>
            </div>
          </div>

          <Suspense fallback={<Loading what="Loading fleet traffic" />}>
            <FleetTraffic />
          </Suspense>
          <section className="section card" aria-labelledby="events-h">
            <h2 id="events-h">Recent events</h2>
            {d.recent_events.length === 0 ? (
              <Empty>No events yet. Pair a device to get started.</Empty>
            ) : (
              <ul className="events">
                {d.recent_events.map((e) => {
                  const name = e.device_id
                    ? (names.get(e.device_id) ?? (typeof e.data.name === 'string' ? e.data.name : e.device_id))
                    : null;
                  const { name: _shown, ...rest } = e.data;
                  return (
                    <li key={e.id}>
                      <time dateTime={e.created_at}>{formatTime(e.created_at)}</time>
                      <Badge tone={eventTone(e.type)}>{eventLabel(e.type)}</Badge>
                      {e.device_id && (
                        <Link
                          href={`/devices/view/?id=${encodeURIComponent(e.device_id)}`}
                          className={name === e.device_id ? 'mono' : undefined}
                          prefetch={false}
                        >
                          {name}
                        </Link>
                      )}
                      <span className="muted">{eventSummary(e.type, e.device_id ? rest : e.data)}</span>
                    </li>
                  );
                })}
              </ul>
            )}
          </section>
        </>
      )}
    </>
  );
}
