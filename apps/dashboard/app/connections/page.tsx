'use client';
import Link from 'next/link';
import { useSearchParams } from 'next/navigation';
import { lazy, Suspense, useEffect, useMemo, useState } from 'react';
import { api, apiText, errorMessage } from '@/lib/api';
import { useNow } from '@/lib/clock';
import { readiness } from '@/lib/connections';
import { formatAge, formatBytes, formatDate, formatTime } from '@/lib/format';
import { useDebounced, useLiveEvents, usePolling } from '@/lib/live';
import { useResource } from '@/lib/resource';
import type { Connection, Customer, Device, List } from '@/lib/types';
import { upsertById } from '@/lib/types';
import { ConnectionForm } from '@/components/ConnectionForm';
import type { BulkAnswer } from '@/components/ConnectionBulk';
import { matchesSearch } from '@/lib/search';
import {
  Badge,
  ConfirmDialog,
  CopyButton,
  Dialog,
  Empty,
  ErrorBanner,
  Loading,
  Notice,
  PageHeader,
  StatusBadge,
} from '@/components/ui';

// The bulk bar (and the export panel it opens) load with the page, outside its route chunk, so the other
// pages' prefetch of /connections/ stays small.
const BulkBar = lazy(() => import('@/components/ConnectionBulk').then((m) => ({ default: m.BulkBar })));

function absolute(url: string): string {
  return /^https?:\/\//.test(url) ? url : `${window.location.origin}${url.startsWith('/') ? '' : '/'}${url}`;
}

async function downloadOvpn(c: Connection) {
  const text = await apiText(`/api/connections/${encodeURIComponent(c.id)}/ovpn`);
  const url = URL.createObjectURL(new Blob([text], { type: 'application/x-openvpn-profile' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = `pocketproxy-${c.username || c.id}.ovpn`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

type NoticeState = { tone: 'ok' | 'warn' | 'error'; body: React.ReactNode } | null;

function ConnectionsInner() {
  const params = useSearchParams();
  const [deviceFilter, setDeviceFilter] = useState(params.get('device_id') ?? '');
  const [customerFilter, setCustomerFilter] = useState(params.get('customer_id') ?? '');
  const [creating, setCreating] = useState(params.get('new') === '1');
  const [editing, setEditing] = useState<Connection | null>(null);
  const [deleting, setDeleting] = useState<Connection | null>(null);
  const [notice, setNotice] = useState<NoticeState>(null);
  const [search, setSearch] = useState(params.get('q') ?? '');
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const now = useNow() || Date.now();

  useEffect(() => {
    document.title = 'Connections · PocketProxy';
  }, []);
  useEffect(() => {
    const p = new URLSearchParams();
    if (deviceFilter) p.set('device_id', deviceFilter);
    if (customerFilter) p.set('customer_id', customerFilter);
    if (search.trim()) p.set('q', search.trim());
    const s = p.toString();
    window.history.replaceState(null, '', `/connections/${s ? `?${s}` : ''}`);
  }, [deviceFilter, customerFilter, search]);

  const q = new URLSearchParams({ limit: '1000' });
  if (deviceFilter) q.set('device_id', deviceFilter);
  if (customerFilter) q.set('customer_id', customerFilter);
  const list = useResource<List<Connection>>(`/api/connections?${q}`);
  const devices = useResource<List<Device>>('/api/devices?limit=1000');
  const customers = useResource<List<Customer>>('/api/customers?limit=1000');
  const deviceById = useMemo(() => new Map((devices.data?.items ?? []).map((d) => [d.id, d])), [devices.data]);
  const customerById = useMemo(() => new Map((customers.data?.items ?? []).map((c) => [c.id, c])), [customers.data]);

  const reload = useDebounced(list.reload, 500);
  const reloadDevices = useDebounced(devices.reload, 2000);
  useLiveEvents((ev) => {
    if (ev.type === 'connection_updated') return reload();
    if (ev.type === 'device_connected' || ev.type === 'device_disconnected') {
      const id = ev.data.device_id;
      const status = ev.type === 'device_connected' ? 'online' : 'offline';
      list.setData(
        (prev) =>
          prev && { ...prev, items: prev.items.map((c) => (c.device_id === id ? { ...c, device_status: status } : c)) },
      );
      devices.setData(
        (prev) => prev && { ...prev, items: prev.items.map((d) => (d.id === id ? { ...d, status } : d)) },
      );
    }
    if (ev.type === 'device_paired' || ev.type === 'device_updated') reloadDevices();
  });
  usePolling(() => {
    list.reload();
    devices.reload();
  });

  async function setEnabled(c: Connection, enabled: boolean) {
    list.setData((prev) => prev && { ...prev, items: prev.items.map((x) => (x.id === c.id ? { ...x, enabled } : x)) });
    try {
      const saved = await api<Connection>(`/api/connections/${encodeURIComponent(c.id)}`, {
        method: 'PATCH',
        body: { enabled },
      });
      list.setData((prev) => prev && { ...prev, items: prev.items.map((x) => (x.id === c.id ? saved : x)) });
    } catch (err) {
      list.setData((prev) => prev && { ...prev, items: prev.items.map((x) => (x.id === c.id ? c : x)) });
      setNotice({
        tone: 'error',
        body: `Could not ${enabled ? 'enable' : 'disable'} the connection: ${errorMessage(err)}`,
      });
    }
  }

  function onSaved(c: Connection, created: boolean) {
    setCreating(false);
    setEditing(null);
    list.setData((prev) => upsertById(prev, c, true));
    const r = readiness(c);
    setNotice({
      tone: r.ok ? 'ok' : 'warn',
      body: (
        <div className="stack">
          <div>
            {created ? 'Connection created.' : 'Connection saved.'}{' '}
            {r.ok ? 'It is ready to use:' : `It will not work yet (${r.reasons.join(', ')}):`}
          </div>
          <div className="row">
            <code className="mono">{c.proxy_url}</code>
            <CopyButton text={c.proxy_url} label="Copy proxy URL" />
          </div>
        </div>
      ),
    });
  }

  const names = useMemo(
    () => ({
      deviceName: (id: string) => deviceById.get(id)?.name,
      customerName: (id: string) => customerById.get(id)?.name,
    }),
    [deviceById, customerById],
  );
  const all = list.data?.items;
  const items = useMemo(() => (all ?? []).filter((c) => matchesSearch(c, search, names)), [all, search, names]);
  const chosen = useMemo(() => items.filter((c) => selected.has(c.id)), [items, selected]);
  const allChosen = items.length > 0 && chosen.length === items.length;
  const offline = items.filter((c) => c.enabled && c.device_status !== 'online').length;

  function onBulk(a: BulkAnswer) {
    const gone = new Set(a.deleted);
    const byId = new Map(a.items.map((c) => [c.id, c]));
    list.setData(
      (prev) =>
        prev && {
          total: prev.total - gone.size,
          items: prev.items.filter((c) => !gone.has(c.id)).map((c) => byId.get(c.id) ?? c),
        },
    );
    if (a.action !== 'rotate') setSelected(new Set());
  }

  return (
    <>
      <PageHeader title="Connections">
        <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
          New connection
        </button>
      </PageHeader>
      <div className="toolbar">
        <input
          type="search"
          placeholder="Search username, port, device, customer…"
          aria-label="Search connections"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
        />
        <label className="check">
          Device
          <select value={deviceFilter} onChange={(e) => setDeviceFilter(e.target.value)}>
            <option value="">All devices</option>
            {(devices.data?.items ?? []).map((d) => (
              <option key={d.id} value={d.id}>
                {d.name}
              </option>
            ))}
            {deviceFilter && !deviceById.has(deviceFilter) && <option value={deviceFilter}>{deviceFilter}</option>}
          </select>
        </label>
        <label className="check">
          Customer
          <select value={customerFilter} onChange={(e) => setCustomerFilter(e.target.value)}>
            <option value="">All customers</option>
            {(customers.data?.items ?? []).map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
            {customerFilter && !customerById.has(customerFilter) && (
              <option value={customerFilter}>{customerFilter}</option>
            )}
          </select>
        </label>
        {list.data && (
          <span className="muted small">
            {items.length} connection{items.length === 1 ? '' : 's'}
            {offline > 0 && <strong style={{ color: 'var(--bad)' }}> · {offline} on offline devices</strong>}
          </span>
        )}
      </div>
      {notice && (
        <Notice tone={notice.tone} onClose={() => setNotice(null)}>
          {notice.body}
        </Notice>
      )}
      <ErrorBanner error={list.error} onRetry={list.reload} />
      {!list.data && !list.error && <Loading what="Loading connections" />}
      {list.data && items.length === 0 && (
        <Empty>No connections{deviceFilter || customerFilter || search.trim() ? ' match' : ' yet'}.</Empty>
      )}
      {items.length > 0 && (
        <Suspense fallback={null}>
          <BulkBar
            selected={chosen}
            shown={items}
            names={names}
            onDone={onBulk}
            onNotice={(tone, text) => setNotice({ tone, body: text })}
          />
        </Suspense>
      )}
      {items.length > 0 && (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th>
                  <input
                    type="checkbox"
                    aria-label="Select all shown connections"
                    checked={allChosen}
                    onChange={() => setSelected(allChosen ? new Set() : new Set(items.map((c) => c.id)))}
                  />
                </th>
                <th>Proxy</th>
                <th>Works?</th>
                <th>Device</th>
                <th>Customer</th>
                <th>Enabled</th>
                <th>Used / limit</th>
                <th>Expires</th>
                <th>Allow-list</th>
                <th className="right">Actions</th>
              </tr>
            </thead>
            <tbody>
              {items.map((c) => {
                const r = readiness(c, now);
                const dev = deviceById.get(c.device_id);
                const cust = c.customer_id ? customerById.get(c.customer_id) : undefined;
                return (
                  <tr key={c.id} className={selected.has(c.id) ? 'selected' : r.ok ? undefined : 'row-warn'}>
                    <td>
                      <input
                        type="checkbox"
                        aria-label={`Select ${c.username}`}
                        checked={selected.has(c.id)}
                        onChange={() =>
                          setSelected((prev) => {
                            const next = new Set(prev);
                            if (next.has(c.id)) next.delete(c.id);
                            else next.add(c.id);
                            return next;
                          })
                        }
                      />
                    </td>
                    <td>
                      <div>
                        <Badge tone="info">{c.protocol.toUpperCase()}</Badge>{' '}
                        <span className="proxy-url" title={c.proxy_url}>
                          {c.proxy_url}
                        </span>
                      </div>
                      <div className="row small" style={{ marginTop: 4, gap: 4 }}>
                        <CopyButton text={c.proxy_url} label="Copy URL" />
                        {c.ovpn_url && (
                          <button
                            type="button"
                            className="btn btn-small"
                            onClick={() =>
                              downloadOvpn(c).catch((err) =>
                                setNotice({ tone: 'error', body: `.ovpn download failed: ${errorMessage(err)}` }),
                              )
                            }
                          >
                            .ovpn
                          </button>
                        )}
                      </div>
                      <div className="row small" style={{ marginTop: 4, gap: 4 }}>
                        <span className="muted" title="Rotation link: opening it rotates the device's IP">
                          ↻
                        </span>
                        <span className="proxy-url" title={`Rotation link: ${absolute(c.rotation_url)}`}>
                          {absolute(c.rotation_url)}
                        </span>
                        <CopyButton text={absolute(c.rotation_url)} label="Copy link" />
                      </div>
                    </td>
                    <td className="wrap-badges">
                      {r.ok ? (
                        c.live.state === 'live' ? (
                          <Badge tone="ok" title="In force on the relay and on the device">
                            live
                          </Badge>
                        ) : (
                          <Badge
                            tone="warn"
                            title={`Changed ${formatAge(c.updated_at, now)}; the relay ${c.live.relay_applied_at ? 'has it' : 'does not have it yet'}, the device ${c.live.device_applied_at && c.live.device_applied_at >= c.updated_at ? 'has it' : 'does not have it yet'}`}
                          >
                            pending · {formatAge(c.updated_at, now)}
                          </Badge>
                        )
                      ) : (
                        r.reasons.map((reason) => (
                          <div key={reason}>
                            <Badge tone="bad">{reason}</Badge>
                          </div>
                        ))
                      )}
                    </td>
                    <td>
                      <Link
                        className="nowrap"
                        href={`/devices/view/?id=${encodeURIComponent(c.device_id)}`}
                        prefetch={false}
                      >
                        {dev?.name ?? c.device_id}
                      </Link>
                      <div>
                        {c.device_status === 'online' ? (
                          <StatusBadge status="online" />
                        ) : (
                          <Badge tone="bad" title="The device is offline: this proxy does not work until it reconnects">
                            ⚠ offline
                          </Badge>
                        )}
                      </div>
                    </td>
                    <td>
                      {cust ? (
                        cust.name
                      ) : c.customer_id ? (
                        <span className="mono small">{c.customer_id}</span>
                      ) : (
                        <span className="muted">—</span>
                      )}
                    </td>
                    <td>
                      <input
                        type="checkbox"
                        checked={c.enabled}
                        onChange={(e) => setEnabled(c, e.target.checked)}
                        aria-label={`${c.enabled ? 'Disable' : 'Enable'} ${c.username}`}
                      />
                    </td>
                    <td className="nowrap">
                      {formatBytes(c.bytes_used_month)}
                      <span className="muted">
                        {' '}
                        / {c.bandwidth_limit_bytes === null ? '∞' : formatBytes(c.bandwidth_limit_bytes)}
                      </span>
                    </td>
                    <td className="nowrap small">
                      {c.expires_at ? (
                        <span title={formatTime(c.expires_at)}>{formatDate(c.expires_at)}</span>
                      ) : (
                        <span className="muted">never</span>
                      )}
                    </td>
                    <td className="small">
                      {c.allow_from.length === 0 ? (
                        <span className="muted" title="Any source address with the username and password">
                          any
                        </span>
                      ) : (
                        <span className="mono" title={c.allow_from.join('\n')}>
                          {c.allow_from.length === 1 ? c.allow_from[0] : `${c.allow_from.length} ranges`}
                        </span>
                      )}
                    </td>
                    <td className="actions-cell">
                      <button type="button" className="btn btn-small" onClick={() => setEditing(c)}>
                        Edit
                      </button>
                      <button type="button" className="btn btn-small btn-danger" onClick={() => setDeleting(c)}>
                        Delete
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}

      <Dialog open={creating} title="New connection" onClose={() => setCreating(false)} wide>
        <ConnectionForm
          devices={devices.data?.items ?? []}
          customers={customers.data?.items ?? []}
          initialDeviceId={deviceFilter || params.get('device_id') || undefined}
          initialCustomerId={customerFilter || undefined}
          onSaved={onSaved}
          onCancel={() => setCreating(false)}
        />
      </Dialog>
      <Dialog open={!!editing} title="Edit connection" onClose={() => setEditing(null)} wide>
        {editing && (
          <ConnectionForm
            key={editing.id}
            connection={editing}
            devices={devices.data?.items ?? []}
            customers={customers.data?.items ?? []}
            onSaved={onSaved}
            onCancel={() => setEditing(null)}
          />
        )}
      </Dialog>
      <ConfirmDialog
        open={!!deleting}
        title="Delete connection?"
        confirmLabel="Delete"
        onClose={() => setDeleting(null)}
        onConfirm={async () => {
          if (!deleting) return;
          await api(`/api/connections/${encodeURIComponent(deleting.id)}`, { method: 'DELETE' });
          const id = deleting.id;
          list.setData((prev) => prev && { total: prev.total - 1, items: prev.items.filter((x) => x.id !== id) });
        }}
      >
        {deleting && (
          <p style={{ margin: 0 }}>
            <span className="mono">{deleting.proxy_url}</span> stops working immediately and its port is released.
          </p>
        )}
      </ConfirmDialog>
    </>
  );
}

export default function ConnectionsPage() {
  return (
    <Suspense fallback={<Loading />}>
      <ConnectionsInner />
    </Suspense>
  );
}
