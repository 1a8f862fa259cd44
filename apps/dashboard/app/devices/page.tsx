'use client';
import Link from 'next/link';
import { useSearchParams } from 'next/navigation';
import { lazy, Suspense, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { api, errorMessage, mapLimit } from '@/lib/api';
import { applyPatch, devicePatchFromEvent, type DevicePatch } from '@/lib/devices';
import { type DeviceStats, type LiveFigures, throughputOf, useAllPages, VIRTUAL_FROM } from '@/lib/fleet';
import { useDebounced, useLiveEvents, usePolling } from '@/lib/live';
import { useResource } from '@/lib/resource';
import type { Device, FarmHost, List, Relay } from '@/lib/types';
import { Empty, ErrorBanner, Loading, Notice, PageHeader } from '@/components/ui';

// The table body, with the page (see components/DeviceTable.tsx); its chunk is asked for when the page
// mounts, alongside the list, not once the list is in.
const loadBody = () => import('@/components/DeviceTable');
const DeviceBody = lazy(loadBody);
// A row's Copy dialog loads when first opened (it stays out of the list's first load).
const DeviceCopyDialog = lazy(() => import('@/components/DeviceCopy').then((m) => ({ default: m.DeviceCopyDialog })));

type StatusFilter = 'all' | 'online' | 'offline';
type SortKey = 'name' | 'status' | 'last_seen' | 'battery' | 'signal' | 'ip';

const collator = new Intl.Collator(undefined, { numeric: true });
const SORTS: Record<SortKey, (a: Device, b: Device) => number> = {
  name: (a, b) => collator.compare(a.name, b.name),
  status: (a, b) => (a.status < b.status ? -1 : a.status > b.status ? 1 : 0),
  last_seen: (a, b) => Date.parse(b.last_seen_at ?? '0') - Date.parse(a.last_seen_at ?? '0'),
  battery: (a, b) => (a.metrics.battery ?? -1) - (b.metrics.battery ?? -1),
  signal: (a, b) => (a.metrics.signal ?? -999) - (b.metrics.signal ?? -999),
  ip: (a, b) => collator.compare(a.current_ip ?? '', b.current_ip ?? ''),
};
/** The value a sort looks at, to tell whether a live change can move a row. */
const SORT_VALUE: Record<SortKey, (d: Device) => unknown> = {
  name: (d) => d.name,
  status: (d) => d.status,
  last_seen: (d) => d.last_seen_at,
  battery: (d) => d.metrics.battery,
  signal: (d) => d.metrics.signal,
  ip: (d) => d.current_ip,
};

function listPath(status: StatusFilter, q: string, farmHostId: string) {
  // Every page of the list is fetched (fetchAll: the API pages at 1000); rows are virtualised.
  const p = new URLSearchParams();
  if (status !== 'all') p.set('status', status);
  if (q.trim()) p.set('q', q.trim());
  if (farmHostId) p.set('farm_host_id', farmHostId);
  const s = p.toString();
  return `/api/devices${s ? `?${s}` : ''}`;
}

function DevicesInner() {
  const params = useSearchParams();
  const initialStatus = (
    ['online', 'offline'].includes(params.get('status') ?? '') ? params.get('status') : 'all'
  ) as StatusFilter;
  const [status, setStatus] = useState<StatusFilter>(initialStatus);
  const [query, setQuery] = useState(params.get('q') ?? '');
  const [q, setQ] = useState(query);
  const [farmHostId, setFarmHostId] = useState(params.get('farm_host_id') ?? '');
  const [sort, setSort] = useState<{ key: SortKey; dir: 1 | -1 }>({ key: 'name', dir: 1 });
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [notice, setNotice] = useState<{ tone: 'ok' | 'warn' | 'error'; text: React.ReactNode } | null>(null);
  const [busy, setBusy] = useState(false);
  const [rotatingIds, setRotatingIds] = useState<Set<string>>(new Set());
  const [copying, setCopying] = useState<Device | null>(null);

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
    if (farmHostId) p.set('farm_host_id', farmHostId);
    const s = p.toString();
    window.history.replaceState(null, '', `/devices/${s ? `?${s}` : ''}`);
  }, [status, q, farmHostId]);

  useEffect(() => {
    document.title = 'Devices · PocketProxy';
    loadBody().catch(() => {}); // lazy() asks again (and shows the error) when it renders the body
  }, []);

  const list = useAllPages<Device>(listPath(status, q, farmHostId));
  // The farm hosts, for the filter (issue 14); the filter shows only when there are some. Asked for once the
  // list's first page is in: the embedded database answers one query at a time, and the rows come first.
  const farmHosts = useResource<{ items: FarmHost[] }>(list.data || list.error ? '/api/farm-hosts' : null);
  // Traffic, uptime and rotation figures: once at load, then every minute (they move slowly).
  // Asked for once the list is in, so it does not hold up the list's pages on a busy database.
  const [statsWanted, setStatsWanted] = useState(false);
  if (list.complete && !statsWanted) setStatsWanted(true);
  const stats = useResource<{ at: string; items: DeviceStats[] }>(statsWanted ? '/api/devices/stats' : null);
  useEffect(() => {
    const t = setInterval(stats.reload, 60_000);
    return () => clearInterval(t);
  }, [stats.reload]);
  const statsById = useMemo(() => new Map((stats.data?.items ?? []).map((x) => [x.device_id, x])), [stats.data]);
  // Live figures per device from heartbeats (throughput, open connections); replaced per device.
  const [liveFigs, setLiveFigs] = useState<Map<string, LiveFigures>>(new Map());
  const pendingFigs = useRef(new Map<string, LiveFigures>());
  const lastSeen = useRef(new Map<string, string | null>());
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
    if (ev.type === 'heartbeat') {
      const d = ev.data;
      const bytes = (Number(d.bytes_in) || 0) + (Number(d.bytes_out) || 0);
      const seen = typeof d.last_seen_at === 'string' ? d.last_seen_at : ev.at;
      const before = lastSeen.current.has(change.id)
        ? lastSeen.current.get(change.id)
        : list.data?.items.find((x) => x.id === change.id)?.last_seen_at;
      lastSeen.current.set(change.id, seen);
      const fig: LiveFigures = { at: Date.parse(seen) };
      const bps = 'bytes_in' in d ? throughputOf(bytes, seen, before) : null;
      if (bps !== null) fig.bps = bps;
      if (typeof d.proxy_open === 'number') fig.open = d.proxy_open;
      pendingFigs.current.set(change.id, fig);
    }
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
      const figs = pendingFigs.current;
      pendingFigs.current = new Map();
      if (figs.size)
        setLiveFigs((prev) => {
          const next = new Map(prev);
          for (const [id, f] of figs) next.set(id, { ...prev.get(id), ...f });
          return next;
        });
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
      if (unknown && status === 'all' && !q && !farmHostId) refetch();
    }, 300);
  });
  usePolling(() => {
    list.reload();
    stats.reload();
  });

  // Sorted rows. A live batch usually changes no sorted value (a heartbeat under the name sort): then
  // the previous order is kept and only the changed objects are swapped in, instead of sorting again.
  const order = useRef<{ key: string; ids: string[]; values: Map<string, unknown> } | null>(null);
  const rows = useMemo(() => {
    const items = (list.data?.items ?? []).filter((d) => status === 'all' || d.status === status);
    const value = SORT_VALUE[sort.key];
    const key = `${sort.key}:${sort.dir}:${status}`;
    const prev = order.current;
    if (prev && prev.key === key && prev.ids.length === items.length) {
      const byId = new Map(items.map((d) => [d.id, d]));
      let same = true;
      for (const id of prev.ids) {
        const d = byId.get(id);
        if (!d || value(d) !== prev.values.get(id)) {
          same = false;
          break;
        }
      }
      if (same) return prev.ids.map((id) => byId.get(id)!);
    }
    const cmp = SORTS[sort.key];
    const sorted = [...items].sort((a, b) => cmp(a, b) * sort.dir || SORTS.name(a, b));
    order.current = { key, ids: sorted.map((d) => d.id), values: new Map(sorted.map((d) => [d.id, value(d)])) };
    return sorted;
  }, [list.data, status, sort]);
  const virtual = rows.length > VIRTUAL_FROM;

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

  const rotateOne = useCallback(async (d: Device) => {
    setRotatingIds((prev) => new Set(prev).add(d.id));
    try {
      await api(`/api/devices/${encodeURIComponent(d.id)}/commands`, { method: 'POST', body: { type: 'rotate_ip' } });
      setNotice({
        tone: d.status === 'online' ? 'ok' : 'warn',
        text:
          d.status === 'online'
            ? `Rotation requested for ${d.name}.`
            : `Rotation queued for ${d.name}, which is offline: it runs when the device reconnects, or expires.`,
      });
    } catch (err) {
      setNotice({ tone: 'error', text: `Could not rotate ${d.name}: ${errorMessage(err)}` });
    } finally {
      setRotatingIds((prev) => {
        const next = new Set(prev);
        next.delete(d.id);
        return next;
      });
    }
  }, []);

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
          placeholder="Search name, IP, carrier, serial…"
          aria-label="Search devices"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
        />
        <fieldset className="seg" aria-label="Filter by status">
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
        </fieldset>
        {(farmHostId || (farmHosts.data?.items.length ?? 0) > 0) && (
          <select aria-label="Filter by farm host" value={farmHostId} onChange={(e) => setFarmHostId(e.target.value)}>
            <option value="">All farm hosts</option>
            {(farmHosts.data?.items ?? []).map((h) => (
              <option key={h.id} value={h.id}>
                {h.name} ({h.devices})
              </option>
            ))}
            {farmHostId && !farmHosts.data?.items.some((h) => h.id === farmHostId) && (
              <option value={farmHostId}>{farmHosts.data ? 'unknown farm host' : 'farm host…'}</option>
            )}
          </select>
        )}
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
          {q || status !== 'all' || farmHostId ? (
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
          <table className="table" style={virtual ? { tableLayout: 'fixed' } : undefined}>
            {virtual && (
              // Thousands of rows: fixed column widths, so a scroll step lays out only the new rows.
              <colgroup>
                {[36, 150, 120, 110, 130, 110, 80, 90, 90, 80, 90, 140].map((w, i) => (
                  // biome-ignore lint/suspicious/noArrayIndexKey: fixed columns
                  <col key={i} style={{ width: w }} />
                ))}
              </colgroup>
            )}
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
                <th title="The farm host that enrolled the device, and what it is (phone, modem, or a device paired alone)">
                  Farm host
                </th>
                {sortHeader('status', 'Status')}
                {sortHeader('ip', 'Current IP')}
                <th>Network</th>
                {sortHeader('signal', 'Signal')}
                <th className="right" title="Traffic today / this month">
                  Traffic
                </th>
                <th className="right" title="Open customer connections · throughput">
                  Live
                </th>
                <th className="right" title="Online share: 24 h / 7 days">
                  Uptime
                </th>
                <th className="right" title="Rotation success rate, 7 days">
                  Rotations
                </th>
                <th className="right">Actions</th>
              </tr>
            </thead>
            <Suspense fallback={null}>
              <DeviceBody
                rows={rows}
                selected={selected}
                relayName={relayName}
                onToggle={toggle}
                statsById={statsById}
                liveFigs={liveFigs}
                rotatingIds={rotatingIds}
                onRotate={rotateOne}
                onCopy={setCopying}
              />
            </Suspense>
          </table>
          {list.data && list.data.total > list.data.items.length && (
            <div className="table-foot">
              Showing {list.data.items.length} of {list.data.total}. Narrow the search to see the rest.
            </div>
          )}
        </div>
      )}
      {copying && (
        <Suspense fallback={null}>
          <DeviceCopyDialog device={copying} onClose={() => setCopying(null)} />
        </Suspense>
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
