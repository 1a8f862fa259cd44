'use client';
import Link from 'next/link';
import { useRouter, useSearchParams } from 'next/navigation';
import { Suspense, useEffect, useMemo, useRef, useState } from 'react';
import { api, ApiError } from '@/lib/api';
import { COMMAND_LABELS, canRun, commandResult, commandTone, mergeSeen, remember, upsertCommand } from '@/lib/commands';
import { applyPatch, devicePatchFromEvent } from '@/lib/devices';
import { reasonLabel } from '@/lib/events';
import { farmHostHref, HARDWARE_ID_LABEL, KIND_LABELS } from '@/lib/farm';
import { formatBytes, formatSignal, formatTime, signalLevel } from '@/lib/format';
import { problemErrors, validate, type FieldErrors } from '@/lib/forms';
import { useDebounced, useLiveEvents, usePolling } from '@/lib/live';
import { useResource } from '@/lib/resource';
import type { Command, CommandType, Connection, Device, IpHistoryEntry, List, Relay, UsagePoint } from '@/lib/types';
import {
  Age,
  Badge,
  ConfirmDialog,
  CopyButton,
  Dialog,
  Empty,
  ErrorBanner,
  Field,
  Loading,
  Notice,
  PageHeader,
  StatusBadge,
} from '@/components/ui';
import { UsageChart } from '@/components/UsageChart';
import { RotationEditor } from '@/components/RotationEditor';

function DeviceInner() {
  const id = useSearchParams().get('id') ?? '';
  const router = useRouter();
  const enc = encodeURIComponent(id);
  const dev = useResource<Device>(id ? `/api/devices/${enc}` : null);
  const conns = useResource<List<Connection>>(id ? `/api/connections?device_id=${enc}&limit=1000` : null);
  const cmds = useResource<{ items: Command[] }>(id ? `/api/devices/${enc}/commands` : null);
  const ips = useResource<{ items: IpHistoryEntry[] }>(id ? `/api/devices/${enc}/ip-history` : null);
  const hourly = useResource<{ items: UsagePoint[] }>(id ? `/api/devices/${enc}/usage?granularity=hour` : null);
  const daily = useResource<{ items: UsagePoint[] }>(id ? `/api/devices/${enc}/usage?granularity=day` : null);
  const relays = useResource<List<Relay>>('/api/relays');

  const [notice, setNotice] = useState<{ tone: 'ok' | 'warn' | 'error'; text: string } | null>(null);
  const [editing, setEditing] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [sending, setSending] = useState<CommandType | null>(null);
  const [extraCmd, setExtraCmd] = useState<CommandType>('airplane_mode');
  const [confirmReboot, setConfirmReboot] = useState(false);

  const d = dev.data;
  useEffect(() => {
    document.title = `${d?.name ?? 'Device'} · PocketProxy`;
  }, [d?.name]);

  const reloadConns = useDebounced(conns.reload, 500);
  const reloadIps = useDebounced(ips.reload, 500);
  const reloadDev = useDebounced(dev.reload, 500);
  const reloadCmds = useDebounced(cmds.reload, 500);
  // Every copy of a command the page is handed (WebSocket, our POST's answer), so that an answer or a
  // refetch that arrives late never moves a command back (a fast failure once stayed "sent").
  const seenCmds = useRef(new Map<string, Command>());
  const gotCommand = (c: Command) => {
    remember(seenCmds.current, c);
    cmds.setData((prev) => ({ items: upsertCommand(prev?.items ?? [], c) }));
  };
  const commands = useMemo(() => mergeSeen(cmds.data?.items ?? [], seenCmds.current), [cmds.data]);
  useLiveEvents((ev) => {
    if (ev.type === 'command_updated') {
      const c = ev.data as unknown as Command;
      if (c.device_id === id && typeof c.id === 'string' && typeof c.status === 'string') gotCommand(c);
      return;
    }
    if (ev.type === 'connection_updated') {
      if (!ev.data.device_id || ev.data.device_id === id) reloadConns();
      return;
    }
    const change = devicePatchFromEvent(ev);
    if (!change || change.id !== id) return;
    // A heartbeat hands pending commands to the device (pending → sent) without a command_updated
    // event of its own: refetch so the state column does not lag behind.
    if (ev.type === 'heartbeat' && commands.some((c) => c.status === 'pending')) reloadCmds();
    if ((ev.type === 'device_updated' || ev.type === 'device_paired') && !change.full) return reloadDev();
    dev.setData((prev) => (prev ? applyPatch(prev, change.patch) : prev));
    if (ev.type === 'device_connected' || ev.type === 'device_disconnected') reloadConns();
    if (ev.type === 'ip_changed') reloadIps();
  });
  usePolling(() => {
    dev.reload();
    cmds.reload();
    conns.reload();
    ips.reload();
  });
  // Usage is rolled up server-side and not pushed; refresh the charts every minute.
  useEffect(() => {
    const t = setInterval(() => {
      hourly.reload();
      daily.reload();
    }, 60_000);
    return () => clearInterval(t);
  }, [hourly.reload, daily.reload]);

  const relayName = useMemo(() => new Map((relays.data?.items ?? []).map((r) => [r.id, r.name])), [relays.data]);

  async function send(type: CommandType) {
    setSending(type);
    setNotice(null);
    try {
      gotCommand(await api<Command>(`/api/devices/${enc}/commands`, { method: 'POST', body: { type } }));
      setNotice(
        d?.status === 'offline'
          ? {
              tone: 'warn',
              text: `${COMMAND_LABELS[type]} queued. The device is offline: it runs when the device reconnects, unless it expires first.`,
            }
          : { tone: 'ok', text: `${COMMAND_LABELS[type]} sent. Its state updates below.` },
      );
    } catch (err) {
      setNotice({ tone: 'error', text: err instanceof Error ? err.message : String(err) });
    } finally {
      setSending(null);
    }
  }

  if (!id)
    return (
      <Empty>
        No device selected. <Link href="/devices/">Back to devices</Link>
      </Empty>
    );
  if (dev.error instanceof ApiError && dev.error.status === 404)
    return (
      <Empty>
        Device not found (it may have been deleted). <Link href="/devices/">Back to devices</Link>
      </Empty>
    );
  if (!d) return dev.error ? <ErrorBanner error={dev.error} onRetry={dev.reload} /> : <Loading what="Loading device" />;

  const m = d.metrics;
  // Only what the device's agent reports it can run (its driver); the API refuses the rest.
  const extraCmds = (['airplane_mode', 'wifi_toggle', 'reboot'] as const).filter((t) => canRun(d, t));
  const extra = extraCmds.find((t) => t === extraCmd) ?? extraCmds[0];
  return (
    <>
      <p className="small">
        <Link href="/devices/">← Devices</Link>
      </p>
      <PageHeader
        title={
          <>
            {d.name} <StatusBadge status={d.status} />
          </>
        }
      >
        {canRun(d, 'rotate_ip') && (
          <button
            type="button"
            className="btn btn-primary"
            disabled={sending !== null}
            onClick={() => send('rotate_ip')}
          >
            {sending === 'rotate_ip' ? 'Requesting…' : 'Rotate IP now'}
          </button>
        )}
        <button type="button" className="btn" onClick={() => setEditing(true)}>
          Edit
        </button>
        <button type="button" className="btn btn-danger" onClick={() => setDeleting(true)}>
          Delete
        </button>
      </PageHeader>
      {d.status === 'offline' && (
        <Notice tone="warn">
          This device is offline: its {conns.data?.items.length ?? ''} connection
          {conns.data?.items.length === 1 ? '' : 's'} will not carry traffic until it reconnects. Last seen{' '}
          <Age at={d.last_seen_at} />.
        </Notice>
      )}
      {notice && (
        <Notice tone={notice.tone} onClose={() => setNotice(null)}>
          {notice.text}
        </Notice>
      )}
      <ErrorBanner error={dev.error} onRetry={dev.reload} />

      <div className="grid grid-2 section">
        <section className="card" aria-labelledby="metrics-h">
          <h2 id="metrics-h">Device</h2>
          <dl className="kv">
            <dt>Last seen</dt>
            <dd>
              <Age at={d.last_seen_at} />
            </dd>
            <dt>{d.status === 'online' ? 'Current IP' : 'Last known IP'}</dt>
            <dd className="mono">
              {d.current_ip ?? '—'}
              {d.status !== 'online' && d.current_ip && (
                <span className="muted small sans">
                  {' '}
                  (last known, <Age at={d.last_seen_at} neutral />)
                </span>
              )}
            </dd>
            <dt>Carrier</dt>
            <dd>{m.carrier ?? '—'}</dd>
            <dt>Network</dt>
            <dd>{m.network_type ?? '—'}</dd>
            <dt>Signal</dt>
            <dd className={`sig-${signalLevel(m.signal)}`}>{formatSignal(m.signal)}</dd>
            <dt>Battery</dt>
            <dd>
              {m.battery === null ? '—' : `${m.battery}%`}
              {m.charging === true ? ' (charging)' : m.charging === false ? ' (on battery)' : ''}
              {m.temperature != null && (
                <span className={m.temperature >= 45 ? 'hot' : undefined} data-testid="device-temperature">
                  {' · '}
                  {m.temperature.toFixed(1)} °C
                </span>
              )}
            </dd>
            <dt>Kind</dt>
            <dd data-testid="device-kind">{KIND_LABELS[d.kind]}</dd>
            {d.farm_host_id && (
              <>
                <dt>Farm host</dt>
                <dd>
                  <Link href={farmHostHref(d.farm_host_id)}>{d.farm_host_name ?? d.farm_host_id}</Link>
                </dd>
              </>
            )}
            {d.model && (
              <>
                <dt>Model</dt>
                <dd>{d.model}</dd>
              </>
            )}
            {d.hardware_id && (
              <>
                <dt>{HARDWARE_ID_LABEL[d.kind]}</dt>
                <dd className="mono">{d.hardware_id}</dd>
              </>
            )}
            <dt>Relay</dt>
            <dd>{d.relay_id ? (relayName.get(d.relay_id) ?? d.relay_id) : '—'}</dd>
            <dt>Tunnel address</dt>
            <dd className="mono">{d.vpn_ip ?? '—'}</dd>
            <dt>Tunnel transport</dt>
            <dd title="UDP is the tunnel's normal transport; TCP is its fallback where UDP is blocked">
              {d.status === 'online'
                ? d.tunnel_transport
                  ? d.tunnel_transport.toUpperCase() + (d.tunnel_transport === 'tcp' ? ' (fallback)' : '')
                  : '—'
                : 'offline'}
            </dd>
            <dt>Agent</dt>
            <dd>{d.agent_version ?? '—'}</dd>
            <dt>Paired</dt>
            <dd>{formatTime(d.paired_at)}</dd>
            <dt>ID</dt>
            <dd className="mono">{d.id}</dd>
            {d.description && (
              <>
                <dt>Notes</dt>
                <dd>{d.description}</dd>
              </>
            )}
          </dl>
        </section>

        <section className="card stack" aria-labelledby="rot-h">
          <h2 id="rot-h">IP rotation</h2>
          <RotationEditor device={d} onSaved={(nd) => dev.setData(() => nd)} />
          {!canRun(d, 'rotate_ip') && (
            <p className="muted small" data-testid="no-rotation">
              {d.farm_host_id ? (
                // A farm device's driver is the farm's own (adb or ModemManager): nothing to start it with.
                <>
                  Its farm host reports no rotation for it yet (it has not reported since it enrolled, or its driver
                  cannot run: see the farm host&apos;s log).
                </>
              ) : (
                <>
                  This device&apos;s agent has no rotation driver (start it with <code>--rotate-driver</code>).
                </>
              )}
            </p>
          )}
          {extra ? (
            <div className="row">
              <label className="check" htmlFor="extra-cmd">
                Other command
              </label>
              <select id="extra-cmd" value={extra} onChange={(e) => setExtraCmd(e.target.value as CommandType)}>
                {extraCmds.map((t) => (
                  <option key={t} value={t}>
                    {COMMAND_LABELS[t]}
                  </option>
                ))}
              </select>
              <button
                type="button"
                className="btn"
                disabled={sending !== null}
                onClick={() => (extra === 'reboot' ? setConfirmReboot(true) : send(extra))}
              >
                Send
              </button>
            </div>
          ) : (
            <p className="muted small" data-testid="no-other-commands">
              {d.farm_host_id ? (
                <>Its farm driver runs no other command.</>
              ) : (
                <>
                  Its driver runs no other command (airplane mode and Wi-Fi need{' '}
                  <code>--rotate-driver android-root</code>, reboot <code>--allow-reboot</code>).
                </>
              )}
            </p>
          )}
        </section>
      </div>

      <section className="section" aria-labelledby="conns-h">
        <div className="page-head">
          <h2 id="conns-h">Connections on this device</h2>
          <div className="page-actions">
            <Link className="btn btn-small" href={`/connections/?device_id=${enc}&new=1`}>
              New connection
            </Link>
          </div>
        </div>
        <ErrorBanner error={conns.error} onRetry={conns.reload} />
        {conns.data && conns.data.items.length === 0 && <Empty>No connections use this device yet.</Empty>}
        {conns.data && conns.data.items.length > 0 && (
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th>Protocol</th>
                  <th>Endpoint</th>
                  <th>Proxy URL</th>
                  <th>State</th>
                  <th>Used this month</th>
                </tr>
              </thead>
              <tbody>
                {conns.data.items.map((c) => (
                  <tr key={c.id}>
                    <td>{c.protocol.toUpperCase()}</td>
                    <td className="mono">
                      {c.host}:{c.port}
                    </td>
                    <td className="nowrap">
                      <span className="proxy-url" title={c.proxy_url}>
                        {c.proxy_url}
                      </span>{' '}
                      <CopyButton text={c.proxy_url} />
                    </td>
                    <td>
                      {c.enabled ? (
                        <Badge tone={d.status === 'online' ? 'ok' : 'bad'}>
                          {d.status === 'online' ? 'working' : 'device offline'}
                        </Badge>
                      ) : (
                        <Badge tone="muted">disabled</Badge>
                      )}
                    </td>
                    <td>
                      {formatBytes(c.bytes_used_month)}
                      {c.bandwidth_limit_bytes !== null && (
                        <span className="muted"> / {formatBytes(c.bandwidth_limit_bytes)}</span>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <div className="grid grid-2 section">
        <section aria-labelledby="cmds-h">
          <h2 id="cmds-h">Commands</h2>
          <ErrorBanner error={cmds.error} onRetry={cmds.reload} />
          {cmds.data && commands.length === 0 && <Empty>No commands sent yet.</Empty>}
          {cmds.data && commands.length > 0 && (
            <div className="table-wrap">
              <table className="table">
                <thead>
                  <tr>
                    <th>Command</th>
                    <th>State</th>
                    <th>Result</th>
                    <th>Created</th>
                  </tr>
                </thead>
                <tbody aria-live="polite">
                  {commands.slice(0, 50).map((c) => (
                    <tr key={c.id}>
                      <td>
                        {COMMAND_LABELS[c.type] ?? c.type}
                        <div className="muted small">{c.source}</div>
                      </td>
                      <td>
                        <Badge tone={commandTone(c.status)}>{c.status}</Badge>
                      </td>
                      <td className="small">{commandResult(c)}</td>
                      <td className="small nowrap" title={formatTime(c.created_at)}>
                        <Age at={c.created_at} neutral />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>

        <section aria-labelledby="ips-h">
          <h2 id="ips-h">IP history</h2>
          <ErrorBanner error={ips.error} onRetry={ips.reload} />
          {ips.data && ips.data.items.length === 0 && <Empty>No IP changes recorded yet.</Empty>}
          {ips.data && ips.data.items.length > 0 && (
            <div className="table-wrap">
              <table className="table">
                <thead>
                  <tr>
                    <th>When</th>
                    <th>Old → new</th>
                    <th>Reason</th>
                  </tr>
                </thead>
                <tbody>
                  {ips.data.items.slice(0, 100).map((e) => (
                    <tr key={e.id}>
                      <td className="small nowrap">{formatTime(e.changed_at)}</td>
                      <td className="mono">
                        {e.old_ip ?? '—'} → {e.new_ip}
                      </td>
                      <td title={e.reason}>{reasonLabel(e.reason)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
      </div>

      <section className="section card stack" aria-labelledby="bw-h">
        <h2 id="bw-h">Bandwidth</h2>
        <ErrorBanner error={hourly.error ?? daily.error} />
        {hourly.data ? (
          <UsageChart points={hourly.data.items} granularity="hour" label="Last 24 hours (hourly)" />
        ) : (
          !hourly.error && <Loading />
        )}
        {daily.data ? (
          <UsageChart points={daily.data.items} granularity="day" label="Last 30 days (daily)" />
        ) : (
          !daily.error && <Loading />
        )}
      </section>

      <EditDevice
        device={d}
        relays={relays.data?.items ?? []}
        open={editing}
        onClose={() => setEditing(false)}
        onSaved={(nd) => dev.setData(() => nd)}
      />
      <ConfirmDialog
        open={deleting}
        title={`Delete ${d.name}?`}
        confirmLabel="Delete device"
        onClose={() => setDeleting(false)}
        onConfirm={async () => {
          await api(`/api/devices/${enc}`, { method: 'DELETE' });
          router.push('/devices/');
        }}
      >
        The device is unpaired and its {conns.data?.items.length ?? 0} connection(s) stop working. The phone must be
        paired again to come back.
      </ConfirmDialog>
      <ConfirmDialog
        open={confirmReboot}
        title={`Reboot ${d.name}?`}
        confirmLabel="Reboot"
        onClose={() => setConfirmReboot(false)}
        onConfirm={() => send('reboot')}
      >
        Its proxies are down until the device is back.
      </ConfirmDialog>
    </>
  );
}

function EditDevice({
  device,
  relays,
  open,
  onClose,
  onSaved,
}: {
  device: Device;
  relays: Relay[];
  open: boolean;
  onClose: () => void;
  onSaved: (d: Device) => void;
}) {
  const [name, setName] = useState(device.name);
  const [description, setDescription] = useState(device.description);
  const [relayId, setRelayId] = useState(device.relay_id ?? '');
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!open) return;
    setName(device.name);
    setDescription(device.description);
    setRelayId(device.relay_id ?? '');
    setErrors({});
  }, [open, device]);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const body: Record<string, unknown> = { name, description };
    if (relayId && relayId !== device.relay_id) body.relay_id = relayId;
    const v = await validate('DeviceUpdate', body);
    if (!v.ok) return setErrors(v.errors);
    setBusy(true);
    try {
      onSaved(await api<Device>(`/api/devices/${encodeURIComponent(device.id)}`, { method: 'PATCH', body: v.data }));
      onClose();
    } catch (err) {
      setErrors(problemErrors(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Dialog open={open} title="Edit device" onClose={onClose}>
      <form className="stack" onSubmit={submit} noValidate>
        {errors._ && <Notice tone="error">{errors._}</Notice>}
        <Field label="Name" error={errors.name}>
          {(p) => <input {...p} value={name} onChange={(e) => setName(e.target.value)} maxLength={64} />}
        </Field>
        <Field label="Notes" error={errors.description}>
          {(p) => (
            <textarea
              {...p}
              rows={3}
              value={description}
              onChange={(e) => setDescription(e.target.value)}
              maxLength={500}
            />
          )}
        </Field>
        <Field
          label="Relay"
          error={errors.relay_id}
          hint="Moving a device to another relay takes effect when it reconnects."
        >
          {(p) => (
            <select {...p} value={relayId} onChange={(e) => setRelayId(e.target.value)}>
              {!device.relay_id && <option value="">—</option>}
              {relays.map((r) => (
                <option key={r.id} value={r.id}>
                  {r.name} ({r.host})
                </option>
              ))}
            </select>
          )}
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

export default function DevicePage() {
  return (
    <Suspense fallback={<Loading />}>
      <DeviceInner />
    </Suspense>
  );
}
