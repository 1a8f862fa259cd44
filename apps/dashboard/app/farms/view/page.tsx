'use client';
// One farm host (issue 14): its phones and modems, each a device of its own; rename; "Rotate all" (one
// rotation per online device whose driver can rotate, through the server's bulk rotation), with the devices
// it left out and why.
import Link from 'next/link';
import { useRouter, useSearchParams } from 'next/navigation';
import { Suspense, useEffect, useRef, useState } from 'react';
import { api, ApiError } from '@/lib/api';
import { applyPatch, devicePatchFromEvent } from '@/lib/devices';
import { KIND_LABELS, SKIP_LABELS, type Skipped } from '@/lib/farm';
import { formatSignal, formatTime, signalLevel } from '@/lib/format';
import { useFormSend, validate } from '@/lib/forms';
import { useDebounced, useLiveEvents, usePolling } from '@/lib/live';
import { useResource } from '@/lib/resource';
import type { BulkRotateItem, FarmHostDetail, FarmRotateResponse } from '@/lib/types';
import {
  Age,
  ConfirmDialog,
  Dialog,
  Empty,
  ErrorBanner,
  Field,
  Loading,
  Notice,
  PageHeader,
  StatusBadge,
} from '@/components/ui';

const OUTCOME_LABELS: Record<BulkRotateItem['outcome'], string> = {
  queued: 'rotation queued',
  joined: 'already rotating (joined that rotation)',
  not_found: 'no such device',
  failed: 'failed',
};

type RotateResult = {
  rotated: BulkRotateItem[];
  failed: BulkRotateItem[];
  skipped: Skipped[];
  names: Map<string, string>;
};

function RotateSummary({ r, onClose }: { r: RotateResult; onClose: () => void }) {
  const name = (id: string) => r.names.get(id) ?? id;
  const tone = r.rotated.length ? (r.failed.length || r.skipped.length ? 'warn' : 'ok') : 'error';
  return (
    <Notice tone={tone} onClose={onClose}>
      <div data-testid="rotate-summary">
        <strong>
          Rotation requested for {r.rotated.length} device{r.rotated.length === 1 ? '' : 's'}
        </strong>
        {r.rotated.length > 0 && `: ${r.rotated.map((i) => name(i.device_id)).join(', ')}`}.
        {r.failed.length > 0 && (
          <>
            <div>Not rotated:</div>
            <ul>
              {r.failed.map((i) => (
                <li key={i.device_id}>
                  {name(i.device_id)}: {OUTCOME_LABELS[i.outcome]}
                  {i.error ? ` (${i.error})` : ''}
                </li>
              ))}
            </ul>
          </>
        )}
        {r.skipped.length > 0 && (
          <>
            <div>Skipped:</div>
            <ul data-testid="rotate-skipped">
              {r.skipped.map((s) => (
                <li key={s.device_id}>
                  {s.name}: {SKIP_LABELS[s.reason]}
                </li>
              ))}
            </ul>
          </>
        )}
      </div>
    </Notice>
  );
}

function RenameHost({
  host,
  open,
  onClose,
  onSaved,
}: {
  host: FarmHostDetail;
  open: boolean;
  onClose: () => void;
  onSaved: (name: string) => void;
}) {
  const [name, setName] = useState(host.name);
  const { errors, setErrors, busy, send } = useFormSend();
  useEffect(() => {
    if (!open) return;
    setName(host.name);
    setErrors({});
  }, [open, host.name, setErrors]);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const v = await validate('FarmHostUpdate', { name });
    if (!v.ok) return setErrors(v.errors);
    await send(
      () => api<{ name: string }>(`/api/farm-hosts/${encodeURIComponent(host.id)}`, { method: 'PATCH', body: v.data }),
      (h) => {
        onSaved(h.name);
        onClose();
      },
    );
  }

  return (
    <Dialog open={open} title="Rename farm host" onClose={onClose}>
      <form className="stack" onSubmit={submit} noValidate>
        {errors._ && <Notice tone="error">{errors._}</Notice>}
        <Field label="Name" error={errors.name} hint="The farm process's --name is used only when the host enrolls.">
          {(p) => <input {...p} value={name} onChange={(e) => setName(e.target.value)} maxLength={64} autoFocus />}
        </Field>
        <div className="actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn btn-primary" disabled={busy}>
            {busy ? 'Saving…' : 'Save'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function FarmHostInner() {
  const id = useSearchParams().get('id') ?? '';
  const enc = encodeURIComponent(id);
  const host = useResource<FarmHostDetail>(id ? `/api/farm-hosts/${enc}` : null);
  const [renaming, setRenaming] = useState(false);
  const [confirmRotate, setConfirmRotate] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const router = useRouter();
  const [result, setResult] = useState<RotateResult | null>(null);
  const h = host.data;
  useEffect(() => {
    document.title = `${h?.name ?? 'Farm host'} · PocketProxy`;
  }, [h?.name]);

  // Once the host is deleted nothing asks for it again (a poll or a live event between the DELETE and the
  // navigation would get a 404).
  const deleted = useRef(false);
  const reloadHost = () => {
    if (!deleted.current) host.reload();
  };
  usePolling(reloadHost);
  const reload = useDebounced(reloadHost, 500);
  useLiveEvents((ev) => {
    const change = devicePatchFromEvent(ev);
    if (!change) return;
    const mine = host.data?.devices.some((d) => d.id === change.id);
    // A device newly enrolled (by this host or another) or renamed without its body: fetch the host again.
    if (ev.type === 'device_paired' || (!mine && ev.type === 'device_connected')) return reload();
    if (!mine) return;
    if (ev.type === 'device_updated' && !change.full) return reload();
    host.setData((prev) =>
      prev
        ? { ...prev, devices: prev.devices.map((d) => (d.id === change.id ? applyPatch(d, change.patch) : d)) }
        : prev,
    );
  });

  async function rotateAll() {
    if (!h) return;
    const answer = await api<FarmRotateResponse>(`/api/farm-hosts/${enc}/rotate`, { method: 'POST', body: {} });
    const ok = (i: BulkRotateItem) => i.outcome === 'queued' || i.outcome === 'joined';
    setResult({
      rotated: answer.items.filter(ok),
      failed: answer.items.filter((i) => !ok(i)),
      skipped: answer.skipped,
      names: new Map(h.devices.map((d) => [d.id, d.name])),
    });
  }

  if (!id)
    return (
      <Empty>
        No farm host selected. <Link href="/farms/">Back to farm hosts</Link>
      </Empty>
    );
  if (host.error instanceof ApiError && host.error.status === 404)
    return (
      <Empty>
        Farm host not found. <Link href="/farms/">Back to farm hosts</Link>
      </Empty>
    );
  if (!h)
    return host.error ? <ErrorBanner error={host.error} onRetry={host.reload} /> : <Loading what="Loading farm host" />;

  const online = h.devices.filter((d) => d.status === 'online');
  const rotatable = online.filter((d) => d.capabilities?.includes('rotate_ip'));
  return (
    <>
      <p className="small">
        <Link href="/farms/">← Farm hosts</Link>
      </p>
      <PageHeader title={h.name}>
        <button
          type="button"
          className="btn btn-primary"
          disabled={online.length === 0}
          title={online.length === 0 ? 'No device of this host is online' : undefined}
          onClick={() => setConfirmRotate(true)}
        >
          Rotate all
        </button>
        <button type="button" className="btn" onClick={() => setRenaming(true)}>
          Rename
        </button>
        <Link className="btn" href={`/devices/?farm_host_id=${enc}`}>
          In the devices list
        </Link>
        <button
          type="button"
          className="btn btn-danger"
          disabled={h.devices.length > 0}
          title={
            h.devices.length > 0
              ? 'Only a farm host without devices can be deleted: delete its devices first'
              : undefined
          }
          onClick={() => setDeleting(true)}
        >
          Delete
        </button>
      </PageHeader>
      {result && <RotateSummary r={result} onClose={() => setResult(null)} />}
      <ErrorBanner error={host.error} onRetry={host.reload} />
      <dl className="kv card">
        <dt>Devices</dt>
        <dd>
          {h.devices.length} ({online.length} online)
        </dd>
        <dt>Last seen</dt>
        <dd>
          <Age at={h.last_seen_at} />
        </dd>
        <dt>Enrolled</dt>
        <dd>{formatTime(h.created_at)}</dd>
        <dt>ID</dt>
        <dd className="mono">{h.id}</dd>
      </dl>

      <section className="section" aria-labelledby="farm-devices-h">
        <h2 id="farm-devices-h">Devices</h2>
        {h.devices.length === 0 ? (
          <Empty>No devices enrolled from this host yet.</Empty>
        ) : (
          <div className="table-wrap">
            <table className="table" aria-label="Devices of this farm host">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Kind</th>
                  <th>Model</th>
                  <th>Hardware ID</th>
                  <th>Status</th>
                  <th>Current IP</th>
                  <th>Network</th>
                  <th>Signal · battery</th>
                </tr>
              </thead>
              <tbody>
                {h.devices.map((d) => {
                  const m = d.metrics;
                  return (
                    <tr key={d.id}>
                      <td className="nowrap">
                        <Link href={`/devices/view/?id=${encodeURIComponent(d.id)}`}>{d.name}</Link>
                      </td>
                      <td>{KIND_LABELS[d.kind]}</td>
                      <td>{d.model ?? '—'}</td>
                      <td className="mono small">{d.hardware_id ?? '—'}</td>
                      <td>
                        <StatusBadge status={d.status} />
                        <div className="small">
                          <Age at={d.last_seen_at} />
                        </div>
                      </td>
                      <td className="mono">
                        {d.current_ip ?? '—'}
                        {d.status !== 'online' && d.current_ip && <div className="muted small sans">last known</div>}
                      </td>
                      <td>
                        {m.carrier ?? '—'}
                        <div className="muted small">{m.network_type ?? ''}</div>
                      </td>
                      <td className="nowrap">
                        <span className={`sig-${signalLevel(m.signal)}`}>{formatSignal(m.signal)}</span>
                        <div className="small" title="Battery">
                          {m.battery === null ? '—' : `${m.battery}%`}
                          {m.charging ? ' (charging)' : ''}
                          {m.temperature != null && (
                            // A phone at 45 °C and above is throttling or about to (a rack's first failure).
                            <span className={m.temperature >= 45 ? 'hot' : undefined}>
                              {' '}
                              · {m.temperature.toFixed(0)} °C
                            </span>
                          )}
                        </div>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <RenameHost
        host={h}
        open={renaming}
        onClose={() => setRenaming(false)}
        onSaved={(name) => host.setData((prev) => (prev ? { ...prev, name } : prev))}
      />
      <ConfirmDialog
        open={deleting}
        title={`Delete ${h.name}?`}
        confirmLabel="Delete farm host"
        onClose={() => setDeleting(false)}
        onConfirm={async () => {
          deleted.current = true;
          try {
            await api(`/api/farm-hosts/${enc}`, { method: 'DELETE' });
          } catch (e) {
            deleted.current = false;
            throw e;
          }
          router.push('/farms/');
        }}
      >
        The farm host has no devices left. If its farm process still runs, the host comes back at its next enrollment.
      </ConfirmDialog>
      <ConfirmDialog
        open={confirmRotate}
        title={`Rotate all devices of ${h.name}?`}
        confirmLabel="Rotate all"
        onClose={() => setConfirmRotate(false)}
        onConfirm={rotateAll}
      >
        {rotatable.length} of its {h.devices.length} device{h.devices.length === 1 ? '' : 's'} get a new address (the
        online ones whose driver can rotate); the others are skipped. Customers&apos; open connections through them drop
        while each one rotates.
      </ConfirmDialog>
    </>
  );
}

export default function FarmHostPage() {
  return (
    <Suspense fallback={<Loading />}>
      <FarmHostInner />
    </Suspense>
  );
}
