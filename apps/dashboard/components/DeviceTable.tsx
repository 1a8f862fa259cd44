'use client';
// The devices list's table body (loaded with the devices page, apart from its route chunk so other pages'
// prefetch of /devices/ stays small): one memoised row per device with its traffic, live figures, uptime,
// rotations and Rotate / Copy, virtualised past VIRTUAL_FROM rows.
import Link from 'next/link';
import { memo } from 'react';
import { canRun } from '@/lib/commands';
import { farmHostHref, KIND_LABELS } from '@/lib/farm';
import { formatBytes, formatSignal, signalLevel } from '@/lib/format';
import { type DeviceStats, type LiveFigures, VIRTUAL_FROM } from '@/lib/fleet';
import { formatBps, percent, useVirtualRows } from '@/lib/virtual';
import type { Device } from '@/lib/types';
import { Age, StatusBadge } from './ui';

/** One row; memoised so a live batch re-renders only the devices it touched. */
const DeviceRow = memo(function DeviceRow({
  d,
  selected,
  relay,
  onToggle,
  stats,
  live,
  rotating,
  onRotate,
  onCopy,
}: {
  d: Device;
  selected: boolean;
  relay: string;
  onToggle: (id: string) => void;
  stats: DeviceStats | undefined;
  live: LiveFigures | undefined;
  rotating: boolean;
  onRotate: (d: Device) => void;
  onCopy: (d: Device) => void;
}) {
  const open = live?.open ?? d.proxy_stats?.open;
  const rot = stats?.rotations_7d;
  const finished = rot ? rot.succeeded + rot.failed + rot.expired : 0;
  return (
    <tr className={selected ? 'selected' : undefined} data-row="">
      <td>
        <input type="checkbox" aria-label={`Select ${d.name}`} checked={selected} onChange={() => onToggle(d.id)} />
      </td>
      <td className="nowrap">
        <Link href={`/devices/view/?id=${encodeURIComponent(d.id)}`} prefetch={false}>
          {d.name}
        </Link>
        <div className="muted small" title="Relay">
          {relay}
        </div>
      </td>
      <td className="nowrap">
        {d.farm_host_id ? (
          <Link href={farmHostHref(d.farm_host_id)} prefetch={false}>
            {d.farm_host_name ?? d.farm_host_id}
          </Link>
        ) : (
          <span className="muted">—</span>
        )}
        <div className="muted small" title={d.hardware_id ?? undefined}>
          {KIND_LABELS[d.kind]}
          {d.model ? ` · ${d.model}` : ''}
        </div>
      </td>
      <td>
        <StatusBadge status={d.status} />
        <div className="small">
          <Age at={d.last_seen_at} />
        </div>
      </td>
      <td className="mono">
        {d.current_ip ?? '—'}
        {d.status !== 'online' && d.current_ip && (
          <div className="muted small sans" title="The device is offline: the address it had when last seen">
            last known
          </div>
        )}
      </td>
      <td>
        {d.metrics.carrier ?? '—'}
        <div className="muted small">{d.metrics.network_type ?? ''}</div>
      </td>
      <td className="nowrap">
        <span className={`sig-${signalLevel(d.metrics.signal)}`}>{formatSignal(d.metrics.signal)}</span>
        <div className="small" title="Battery">
          {d.metrics.battery === null ? '—' : `${d.metrics.battery}%`}
          {d.metrics.charging ? (
            <span title="charging" role="img" aria-label="charging">
              {' '}
              ⚡
            </span>
          ) : (
            ''
          )}
        </div>
      </td>
      <td className="nowrap right" title="Traffic today / this month, both ways">
        {stats ? formatBytes(stats.traffic_today_bytes) : '—'}
        <div className="muted small">{stats ? formatBytes(stats.traffic_month_bytes) : ''}</div>
      </td>
      <td
        className="nowrap right"
        title="Customer connections open on the device (last heartbeat) · throughput over the last heartbeat interval"
      >
        {open ?? '—'}
        <div className="muted small">{d.status === 'online' ? formatBps(live?.bps) : '—'}</div>
      </td>
      <td className="nowrap right" title="Share of time online: last 24 h / last 7 days">
        {percent(stats?.uptime_24h)}
        <div className="muted small">{percent(stats?.uptime_7d)}</div>
      </td>
      <td
        className="nowrap right"
        title={
          rot
            ? `Rotations finished in 7 days: ${rot.succeeded} succeeded, ${rot.failed} failed, ${rot.expired} expired`
            : undefined
        }
      >
        {percent(stats?.rotation_success_rate_7d)}
        <div className="muted small">{finished ? `of ${finished}` : ''}</div>
      </td>
      <td className="actions-cell nowrap">
        {/* Only for a device whose driver can rotate (its reported capabilities; the API refuses the rest). */}
        {canRun(d, 'rotate_ip') && (
          <button
            type="button"
            className="btn btn-small"
            disabled={rotating}
            onClick={() => onRotate(d)}
            aria-label={`Rotate IP of ${d.name}`}
          >
            {rotating ? 'Rotating…' : 'Rotate'}
          </button>
        )}
        <button type="button" className="btn btn-small" onClick={() => onCopy(d)} aria-label={`Copy ${d.name}`}>
          Copy
        </button>
      </td>
    </tr>
  );
});

/**
 * The table body: only the rows in view (plus a few) when there are many. Its own component, so a scroll
 * step re-renders the body alone, not the page.
 */
export default function DeviceBody({
  rows,
  selected,
  relayName,
  onToggle,
  statsById,
  liveFigs,
  rotatingIds,
  onRotate,
  onCopy,
}: {
  rows: Device[];
  selected: Set<string>;
  relayName: Map<string, string>;
  onToggle: (id: string) => void;
  statsById: Map<string, DeviceStats>;
  liveFigs: Map<string, LiveFigures>;
  rotatingIds: Set<string>;
  onRotate: (d: Device) => void;
  onCopy: (d: Device) => void;
}) {
  const vr = useVirtualRows(rows.length, VIRTUAL_FROM);
  return (
    <tbody ref={vr.bodyRef}>
      {vr.padTop > 0 && (
        // biome-ignore lint/a11y/noAriaHiddenOnFocusable: a spacer row of the virtual list; a <tr> takes no focus
        <tr aria-hidden="true" className="spacer">
          <td colSpan={12} style={{ height: vr.padTop, padding: 0, border: 0 }} />
        </tr>
      )}
      {rows.slice(vr.start, vr.end).map((d) => (
        <DeviceRow
          key={d.id}
          d={d}
          selected={selected.has(d.id)}
          relay={d.relay_id ? (relayName.get(d.relay_id) ?? d.relay_id) : '—'}
          onToggle={onToggle}
          stats={statsById.get(d.id)}
          live={liveFigs.get(d.id)}
          rotating={rotatingIds.has(d.id)}
          onRotate={onRotate}
          onCopy={onCopy}
        />
      ))}
      {vr.padBottom > 0 && (
        // biome-ignore lint/a11y/noAriaHiddenOnFocusable: a spacer row of the virtual list; a <tr> takes no focus
        <tr aria-hidden="true" className="spacer">
          <td colSpan={12} style={{ height: vr.padBottom, padding: 0, border: 0 }} />
        </tr>
      )}
    </tbody>
  );
}
