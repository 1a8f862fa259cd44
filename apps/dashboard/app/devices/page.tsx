'use client';
import Link from 'next/link';
import { useSearchParams } from 'next/navigation';
import { memo, Suspense, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { api, errorMessage, mapLimit } from '@/lib/api';
import { applyPatch, devicePatchFromEvent, type DevicePatch } from '@/lib/devices';
import { formatSignal, signalLevel } from '@/lib/format';
import { useDebounced, useLiveEvents, usePolling } from '@/lib/live';
import { useResource } from '@/lib/resource';
import type { Device, List, Relay } from '@/lib/types';
import { Age, Empty, ErrorBanner, Loading, Notice, PageHeader, StatusBadge } from '@/components/ui';

type StatusFilter = 'all' | 'online' | 'offline';
type SortKey = 'name' | 'status' | 'last_seen' | 'battery' | 'signal' | 'ip';

const SORTS: Record<SortKey, (a: Device, b: Device) => number> = {
  name: (a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }),
  status: (a, b) => a.status.localeCompare(b.status),
  last_seen: (a, b) => Date.parse(b.last_seen_at ?? '0') - Date.parse(a.last_seen_at ?? '0'),
  battery: (a, b) => (a.metrics.battery ?? -1) - (b.metrics.battery ?? -1),
  signal: (a, b) => (a.metrics.signal ?? -999) - (b.metrics.signal ?? -999),
  ip: (a, b) => (a.current_ip ?? '').localeCompare(b.current_ip ?? '', undefined, { numeric: true }),
};

function listPath(status: StatusFilter, q: string) {
  // The API pages lists (default 100); an operator's fleet fits in its maximum page.
  const p = new URLSearchParams({ limit: '1000' });
  if (status !== 'all') p.set('status', status);
  if (q.trim()) p.set('q', q.trim());
  const s = p.toString();
  return `/api/devices${s ? `?${s}` : ''}`;
}

/** One row; memoised so a live batch re-renders only the devices it touched. */
const DeviceRow = memo(function DeviceRow({
  d,
  selected,
  relay,
  onToggle,
}: {
  d: Device;
  selected: boolean;
  relay: string;
  onToggle: (id: string) => void;
}) {
  return (
    <tr className={selected ? 'selected' : undefined}>
      <td>
        <input type="checkbox" aria-label={`Select ${d.name}`} checked={selected} onChange={() => onToggle(d.id)} />
      </td>
      <td className="nowrap">
        <Link href={`/devices/view/?id=${encodeURIComponent(d.id)}`} prefetch={false}>
          {d.name}
        </Link>
      </td>
      <td>
        <StatusBadge status={d.status} />
      </td>
      <td>
        <Age at={d.last_seen_at} />
      </td>
      <td className="mono">{d.current_ip ?? '—'}</td>
      <td>{d.metrics.carrier ?? '—'}</td>
      <td>{d.metrics.network_type ?? '—'}</td>
      <td className={`nowrap sig-${signalLevel(d.metrics.signal)}`}>{formatSignal(d.metrics.signal)}</td>
      <td className="nowrap">
        {d.metrics.battery === null ? '—' : `${d.metrics.battery}%`}
        {d.metrics.charging ? (
          <span title="charging" aria-label="charging">
            {' '}
            ⚡
          </span>
        ) : (
          ''
        )}
      </td>
      <td>{relay}</td>
    </tr>
  );
});

function DevicesInner() {
  const params = useSearchParams();
  const initialStatus = (
    ['online', 'offline'].includes(params.get('status') ?? '') ? params.get('status') : 'all'
  ) as StatusFilter;
  const [status, setStatus] = useState<StatusFilter>(initialStatus);
  const [query, setQuery] = useState(params.get('q') ?? '');
  const [q, setQ] = useState(query);
  const [sort, setSort] = useState<{ key: SortKey; dir: 1 | -1 }>({ key: 'name', dir: 1 });
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [notice, setNotice] = useState<{ tone: 'ok' | 'warn' | 'error'; text: React.ReactNode } | null>(null);
  const [busy, setBusy] = useState(false);

  // Debounce typing into a server-side search.
  useEffect(() => {
    const t = setTimeout(() => setQ(query), 250);
    return () => clearTimeout(t);
  }, [query]);

  // Keep the filter in the address bar so it can be bookmarked and shared.
  useEffect(() => {
    const p = new URLSearchParams();
    if (status !== 'all') p.set('status', status);
    if (q.trim()) p.set('q', q.trim());
    const s = p.toString();
    window.history.replaceState(null, '', `/devices/${s ? `?${s}` : ''}`);
  }, [status, q]);

  useEffect(() => {
    document.title = 'Devices · PocketProxy';
  }, []);

  const list = useResource<List<Device>>(listPath(status, q));
  const relays = useResource<List<Relay>>('/api/relays');
  const relayName = useMemo(() => new Map((relays.data?.items ?? []).map((r) => [r.id, r.name])), [relays.data]);

  // Live events arrive in bursts (a heartbeat per device); apply them in batches.
  const pending = useRef(new Map<string, DevicePatch>());
  const flushTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const refetch = useDebounced(list.reload, 1000);
  useEffect(
    () => () => {
      if (flushTimer.current) clearTimeout(flushTimer.current);
    },
    [],
  );
  useLiveEvents((ev) => {
    const change = devicePatchFromEvent(ev);
    if (!change) return;
    if (ev.type === 'device_paired' || (ev.type === 'device_updated' && !change.full)) return refetch();
    const prev = pending.current.get(change.id);
    pending.current.set(
      change.id,
      prev ? { ...prev, ...change.patch, metrics: { ...prev.metrics, ...change.patch.metrics } } : change.patch,
    );
    if (flushTimer.current) return;
    flushTimer.current = setTimeout(() => {
      flushTimer.current = null;
      const batch = pending.current;
      pending.current = new Map();
      let unknown = false;
      list.setData((prev) => {
        if (!prev) return prev;
        const seen = new Set<string>();
        const items = prev.items.map((d) => {
          const p = batch.get(d.id);
          if (!p) return d;
          seen.add(d.id);
          return applyPatch(d, p);
        });
        if (seen.size < batch.size) unknown = true;
        return { ...prev, items };
      });
      if (unknown && status === 'all' && !q) refetch();
    }, 300);
  });
  usePolling(list.reload);

  const rows = useMemo(() => {
    const items = (list.data?.items ?? []).filter((d) => status === 'all' || d.status === status);
    const cmp = SORTS[sort.key];
    return [...items].sort((a, b) => cmp(a, b) * sort.dir || SORTS.name(a, b));
  }, [list.data, status, sort]);

  // Drop selections that are no longer visible.
  useEffect(() => {
    setSelected((prev) => {
      const visible = new Set(rows.map((r) => r.id));
      const next = new Set([...prev].filter((id) => visible.has(id)));
      return next.size === prev.size ? prev : next;
    });
  }, [rows]);

  const allSelected = rows.length > 0 && rows.every((r) => selected.has(r.id));
  const toggle = useCallback(
    (id: string) =>
      setSelected((prev) => {
        const next = new Set(prev);
        if (next.has(id)) next.delete(id);
        else next.add(id);
        return next;
      }),
    [],
  );

  async function rotateSelected() {
    const targets = rows.filter((r) => selected.has(r.id));
    if (!targets.length) return;
    setBusy(true);
    setNotice(null);
    const results = await mapLimit(targets, 8, (d) =>
      api(`/api/devices/${encodeURIComponent(d.id)}/commands`, { method: 'POST', body: { type: 'rotate_ip' } }),
    );
    setBusy(false);
    const failed = results.filter((r) => !r.ok);
    const offline = targets.filter((d) => d.status === 'offline').length;
    const okCount = results.length - failed.length;
    setNotice({
      tone: failed.length ? (okCount ? 'warn' : 'error') : 'ok',
      text: (
        <>
          Rotation requested for {okCount} of {targets.length} device{targets.length === 1 ? '' : 's'}.
          {offline > 0 &&
            ` ${offline} ${offline === 1 ? 'is' : 'are'} offline: the command waits until the device reconnects, or expires.`}
          {failed.length > 0 && (
            <ul>
              {failed.slice(0, 10).map((f) => (
                <li key={f.item.id}>
                  {f.item.name}: {f.ok ? '' : errorMessage(f.error)}
                </li>
              ))}
              {failed.length > 10 && <li>…and {failed.length - 10} more</li>}
            </ul>
          )}
        </>
      ),
    });
    if (okCount) setSelected(new Set());
  }

  const sortHeader = (key: SortKey, label: string) => (
    <th aria-sort={sort.key === key ? (sort.dir === 1 ? 'ascending' : 'descending') : undefined}>
      <button
        type="button"
        className="sort"
        onClick={() => setSort((s) => ({ key, dir: s.key === key ? (s.dir === 1 ? -1 : 1) : 1 }))}
      >
        {label}
        {sort.key === key ? (sort.dir === 1 ? ' ▲' : ' ▼') : ''}
      </button>
    </th>
  );

  const total = list.data?.items.length ?? 0;
  const online = (list.data?.items ?? []).filter((d) => d.status === 'online').length;

  return (
    <>
      <PageHeader title="Devices">
        <button type="button" className="btn" disabled={!selected.size || busy} onClick={rotateSelected}>
          {busy ? 'Rotating…' : `Rotate IP${selected.size ? ` (${selected.size})` : ''}`}
        </button>
        <Link className="btn btn-primary" href="/pair/">
          Pair a device
        </Link>
      </PageHeader>
      <div className="toolbar">
        <input
          type="search"
          placeholder="Search name, IP, carrier…"
          aria-label="Search devices"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
        />
        <div className="seg" role="group" aria-label="Filter by status">
          {(['all', 'online', 'offline'] as const).map((s) => (
            <button
              key={s}
              type="button"
              className="btn btn-small"
              aria-pressed={status === s}
              onClick={() => setStatus(s)}
            >
              {s === 'all' ? 'All' : s === 'online' ? 'Online' : 'Offline'}
            </button>
          ))}
        </div>
        {list.data && (
          <span className="muted small">
            {status === 'all' ? `${online} online · ${total - online} offline` : `${rows.length} ${status}`}
          </span>
        )}
      </div>
      {notice && (
        <Notice tone={notice.tone} onClose={() => setNotice(null)}>
          {notice.text}
        </Notice>
      )}
      <ErrorBanner error={list.error} onRetry={list.reload} />
      {!list.data && !list.error && <Loading what="Loading devices" />}
      {list.data && rows.length === 0 && (
        <Empty>
          {q || status !== 'all' ? (
            'No devices match.'
          ) : (
            <>
              No devices yet. <Link href="/pair/">Pair your first device</Link>.
            </>
          )}
        </Empty>
      )}
      {rows.length > 0 && (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th>
                  <input
                    type="checkbox"
                    aria-label="Select all devices"
                    checked={allSelected}
                    onChange={() => setSelected(allSelected ? new Set() : new Set(rows.map((r) => r.id)))}
                  />
                </th>
                {sortHeader('name', 'Name')}
                {sortHeader('status', 'Status')}
                {sortHeader('last_seen', 'Last seen')}
                {sortHeader('ip', 'Current IP')}
                <th>Carrier</th>
                <th>Network</th>
                {sortHeader('signal', 'Signal')}
                {sortHeader('battery', 'Battery')}
                <th>Relay</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((d) => (
                <DeviceRow
                  key={d.id}
                  d={d}
                  selected={selected.has(d.id)}
                  relay={d.relay_id ? (relayName.get(d.relay_id) ?? d.relay_id) : '—'}
                  onToggle={toggle}
                />
              ))}
            </tbody>
          </table>
          {list.data && list.data.total > list.data.items.length && (
            <div className="table-foot">
              Showing {list.data.items.length} of {list.data.total}. Narrow the search to see the rest.
            </div>
          )}
        </div>
      )}
    </>
  );
}

export default function DevicesPage() {
  return (
    <Suspense fallback={<Loading />}>
      <DevicesInner />
    </Suspense>
  );
}
