'use client';
// Farm hosts (issue 14): the Linux boxes that run `pocketproxy-agent farm` for a rack of phones and modems,
// and the enrollment tokens they enroll their devices with. A token is shown once, when it is made.
import Link from 'next/link';
import { useEffect, useMemo, useState } from 'react';
import { api } from '@/lib/api';
import { enrolledText, farmHostHref, TOKEN_STATE_TONE, TTL_CHOICES } from '@/lib/farm';
import { formatTime } from '@/lib/format';
import { type FieldErrors, useFormSend, validate } from '@/lib/forms';
import { useDebounced, useLiveEvents, usePolling } from '@/lib/live';
import { useResource } from '@/lib/resource';
import type { EnrollmentToken, EnrollmentTokenCreated, FarmHost, Relay } from '@/lib/types';
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
} from '@/components/ui';

function TokenForm({
  relays,
  onCreated,
  onCancel,
}: {
  relays: Relay[];
  onCreated: (t: EnrollmentTokenCreated) => void;
  onCancel: () => void;
}) {
  const [name, setName] = useState('');
  const [max, setMax] = useState('');
  // An <input type=number> holding something that is no number reads as '' (badInput): not "no limit".
  const [maxBad, setMaxBad] = useState(false);
  const [ttl, setTtl] = useState('');
  const [relayId, setRelayId] = useState('');
  const { errors, setErrors, busy, send } = useFormSend();

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const body: Record<string, unknown> = {};
    if (name.trim()) body.name = name.trim();
    const local: FieldErrors = {};
    const n = max.trim() === '' ? null : Number(max);
    if (maxBad || (n !== null && !Number.isFinite(n)))
      local.max_devices = 'enter a whole number of devices, or leave it empty for no limit';
    else if (n !== null) body.max_devices = n;
    if (ttl) body.ttl_s = Number(ttl);
    if (relayId) body.relay_id = relayId;
    const v = await validate('EnrollmentTokenCreate', body);
    if (!v.ok || Object.keys(local).length) return setErrors({ ...(v.ok ? {} : v.errors), ...local });
    await send(
      () => api<EnrollmentTokenCreated>('/api/enrollment-tokens', { method: 'POST', body: v.data }),
      onCreated,
    );
  }

  return (
    <form className="stack" onSubmit={submit} noValidate>
      <p className="muted" style={{ margin: 0 }}>
        One token enrolls every phone and modem of a farm host: run the command it comes with on the host (
        <span className="mono">pocketproxy-agent farm</span>), and each device attached to it is enrolled as its own
        device, named after its model and serial.
      </p>
      {errors._ && <Notice tone="error">{errors._}</Notice>}
      <div className="form-grid">
        <Field label="Name (optional)" error={errors.name} hint="For you: which rack or site it is for.">
          {(p) => (
            <input
              {...p}
              value={name}
              onChange={(e) => setName(e.target.value)}
              maxLength={64}
              placeholder="e.g. rack-berlin-01"
              autoFocus
            />
          )}
        </Field>
        <Field label="Most devices (optional)" error={errors.max_devices} hint="Empty: no limit.">
          {(p) => (
            <input
              {...p}
              type="number"
              min={1}
              step={1}
              inputMode="numeric"
              value={max}
              onChange={(e) => {
                setMax(e.target.value);
                setMaxBad(e.target.validity.badInput);
              }}
              placeholder="no limit"
            />
          )}
        </Field>
        <Field label="Expires" error={errors.ttl_s} hint="Devices enrolled before it expires stay.">
          {(p) => (
            <select {...p} value={ttl} onChange={(e) => setTtl(e.target.value)}>
              {TTL_CHOICES.map((c) => (
                <option key={c.label} value={c.ttl_s === null ? '' : String(c.ttl_s)}>
                  {c.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Relay" error={errors.relay_id}>
          {(p) => (
            <select {...p} value={relayId} onChange={(e) => setRelayId(e.target.value)}>
              <option value="">Default relay</option>
              {relays.map((r) => (
                <option key={r.id} value={r.id} disabled={!r.enabled}>
                  {r.name} ({r.host}){r.enabled ? '' : ' — disabled'}
                </option>
              ))}
            </select>
          )}
        </Field>
      </div>
      <div className="actions">
        <button type="button" className="btn" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create token'}
        </button>
      </div>
    </form>
  );
}

/** The server URL in the command, when it is plain http to a host other than this machine (the agent refuses it). */
function plainHttpServer(command: string): string | null {
  const m = command.match(/--server\s+(\S+)/);
  if (!m?.[1]) return null;
  try {
    const u = new URL(m[1]);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const loopback = host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1';
    return u.protocol === 'http:' && !loopback ? m[1] : null;
  } catch {
    return null;
  }
}

/** The token and its command, once: neither is stored in the browser, and the API never shows the token again. */
function CreatedToken({ created, onDone }: { created: EnrollmentTokenCreated; onDone: () => void }) {
  const plain = plainHttpServer(created.enroll_command);
  return (
    <div className="stack" data-testid="token-created">
      <Notice tone="warn">
        <strong>Copy the token now: it is shown only this once.</strong> Anyone who has it can enroll devices into your
        fleet until it {created.expires_at ? 'expires or ' : ''}is revoked. The list below keeps only its first
        characters.
      </Notice>
      <div className="field">
        <span className="field-label">Token</span>
        <div className="row">
          <code className="mono token-secret" data-testid="enroll-token">
            {created.token}
          </code>
          <CopyButton text={created.token} label="Copy token" />
        </div>
      </div>
      <div className="field">
        <span className="field-label">On the farm host, run:</span>
        <div className="cmd cmd-wrap">
          <code data-testid="enroll-command">{created.enroll_command}</code>
        </div>
        <div className="row">
          <CopyButton text={created.enroll_command} label="Copy command" />
        </div>
        <div className="small muted">
          It runs in the foreground; keep it running as a service (<span className="mono">docs/farm.md</span> has a
          systemd unit). Each phone needs USB debugging on, and this computer&apos;s adb key accepted on it.
        </div>
        {plain && (
          <Notice tone="warn">
            The server URL <span className="mono">{plain}</span> is plain http: the farm host refuses it unless you add{' '}
            <span className="mono">--insecure-http</span> (for a lab only: the device tokens and keys would cross the
            network in clear). Set <span className="mono">POCKETPROXY_PUBLIC_URL</span> to an https URL.
          </Notice>
        )}
      </div>
      <div className="actions">
        <button type="button" className="btn btn-primary" onClick={onDone}>
          Done
        </button>
      </div>
    </div>
  );
}

export default function FarmsPage() {
  const hosts = useResource<{ items: FarmHost[] }>('/api/farm-hosts');
  const tokens = useResource<{ items: EnrollmentToken[] }>('/api/enrollment-tokens');
  const relays = useResource<{ items: Relay[] }>('/api/relays');
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<EnrollmentTokenCreated | null>(null);
  const [revoking, setRevoking] = useState<EnrollmentToken | null>(null);
  useEffect(() => {
    document.title = 'Farm hosts · PocketProxy';
  }, []);
  usePolling(() => {
    hosts.reload();
    tokens.reload();
  });
  // A device enrolled, connected or gone changes a host's counts and a token's; refetch (debounced:
  // a farm host coming up brings its devices at once).
  const refresh = useDebounced(() => {
    hosts.reload();
    tokens.reload();
  }, 1000);
  useLiveEvents((ev) => {
    if (ev.type === 'device_paired' || ev.type === 'device_connected' || ev.type === 'device_disconnected') refresh();
  });
  const relayName = useMemo(() => new Map((relays.data?.items ?? []).map((r) => [r.id, r.name])), [relays.data]);

  function onCreated(t: EnrollmentTokenCreated) {
    setCreated(t);
    const { token: _secret, enroll_command: _cmd, ...row } = t;
    tokens.setData((prev) => (prev ? { items: [row, ...prev.items.filter((x) => x.id !== t.id)] } : prev));
  }
  function closeCreate() {
    setCreating(false);
    setCreated(null); // the token leaves memory with the dialog
  }

  const hostItems = hosts.data?.items ?? [];
  const tokenItems = tokens.data?.items ?? [];
  return (
    <>
      <PageHeader title="Farm hosts">
        <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
          New enrollment token
        </button>
      </PageHeader>
      <p className="muted">
        A farm host is a Linux box running <span className="mono">pocketproxy-agent farm</span> for the Android phones
        and USB modems attached to it; each of them is a device of its own.
      </p>
      <ErrorBanner error={hosts.error} onRetry={hosts.reload} />
      {!hosts.data && !hosts.error && <Loading what="Loading farm hosts" />}
      {hosts.data && hostItems.length === 0 && (
        <Empty>No farm hosts yet. Create an enrollment token and run its command on the host.</Empty>
      )}
      {hostItems.length > 0 && (
        <div className="table-wrap">
          <table className="table" aria-label="Farm hosts">
            <thead>
              <tr>
                <th>Name</th>
                <th className="right">Devices</th>
                <th className="right">Online</th>
                <th>Last seen</th>
                <th>Enrolled</th>
              </tr>
            </thead>
            <tbody>
              {hostItems.map((h) => (
                <tr key={h.id}>
                  <td>
                    <Link href={farmHostHref(h.id)}>{h.name}</Link>
                  </td>
                  <td className="right">{h.devices}</td>
                  <td className="right">{h.devices > 0 && h.online === 0 ? <Badge tone="bad">0</Badge> : h.online}</td>
                  <td className="nowrap">
                    <Age at={h.last_seen_at} />
                  </td>
                  <td className="small nowrap">{formatTime(h.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <section className="section" aria-labelledby="tokens-h">
        <h2 id="tokens-h">Enrollment tokens</h2>
        <ErrorBanner error={tokens.error} onRetry={tokens.reload} />
        {!tokens.data && !tokens.error && <Loading what="Loading enrollment tokens" />}
        {tokens.data && tokenItems.length === 0 && <Empty>No enrollment tokens.</Empty>}
        {tokenItems.length > 0 && (
          <div className="table-wrap">
            <table className="table" aria-label="Enrollment tokens">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Token</th>
                  <th>Enrolled</th>
                  <th>Expires</th>
                  <th>State</th>
                  <th>Relay</th>
                  <th>Created</th>
                  <th className="right">Actions</th>
                </tr>
              </thead>
              <tbody>
                {tokenItems.map((t) => {
                  const state = t.state;
                  return (
                    <tr key={t.id}>
                      <td>{t.name || <span className="muted">—</span>}</td>
                      <td className="mono" title="The token's first characters; the whole token is shown only once">
                        {t.token_prefix}…
                      </td>
                      <td className="nowrap">{enrolledText(t)}</td>
                      <td className="small nowrap">{t.expires_at ? formatTime(t.expires_at) : 'never'}</td>
                      <td>
                        <Badge
                          tone={TOKEN_STATE_TONE[state]}
                          title={
                            state === 'revoked' && t.revoked_at ? `revoked ${formatTime(t.revoked_at)}` : undefined
                          }
                        >
                          {state}
                        </Badge>
                      </td>
                      <td className="small">
                        {t.relay_id ? (
                          (relayName.get(t.relay_id) ?? t.relay_id)
                        ) : (
                          <span className="muted">default</span>
                        )}
                      </td>
                      <td className="small nowrap">{formatTime(t.created_at)}</td>
                      <td className="actions-cell">
                        {!t.revoked_at && (
                          <button
                            type="button"
                            className="btn btn-small btn-danger"
                            onClick={() => setRevoking(t)}
                            aria-label={`Revoke token ${t.name || t.token_prefix}`}
                          >
                            Revoke
                          </button>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <Dialog
        open={creating}
        title={created ? 'Enrollment token created' : 'New enrollment token'}
        onClose={closeCreate}
        wide
      >
        {created ? (
          <CreatedToken created={created} onDone={closeCreate} />
        ) : (
          <TokenForm relays={relays.data?.items ?? []} onCreated={onCreated} onCancel={closeCreate} />
        )}
      </Dialog>
      <ConfirmDialog
        open={!!revoking}
        title={`Revoke ${revoking?.name || `token ${revoking?.token_prefix ?? ''}…`}?`}
        confirmLabel="Revoke token"
        onClose={() => setRevoking(null)}
        onConfirm={async () => {
          if (!revoking) return;
          const row = await api<EnrollmentToken>(`/api/enrollment-tokens/${encodeURIComponent(revoking.id)}`, {
            method: 'DELETE',
          });
          tokens.setData((prev) =>
            prev ? { items: prev.items.map((x) => (x.id === row.id ? { ...x, ...row } : x)) } : prev,
          );
        }}
      >
        No further device can enroll with it. The {revoking?.devices_enrolled ?? 0} device
        {revoking?.devices_enrolled === 1 ? '' : 's'} it enrolled stay, and keep working.
      </ConfirmDialog>
    </>
  );
}
