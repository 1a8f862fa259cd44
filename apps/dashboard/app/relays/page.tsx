'use client';
import { useEffect, useState } from 'react';
import { api } from '@/lib/api';
import { formatTime } from '@/lib/format';
import { useFormSend, validate, type FieldErrors } from '@/lib/forms';
import { usePolling } from '@/lib/live';
import { useResource } from '@/lib/resource';
import type { List, Relay } from '@/lib/types';
import { upsertById } from '@/lib/types';
import { Badge, Dialog, Empty, ErrorBanner, Field, Loading, Notice, PageHeader } from '@/components/ui';

function RelayForm({ relay, onSaved, onCancel }: { relay?: Relay; onSaved: (r: Relay) => void; onCancel: () => void }) {
  const [name, setName] = useState(relay?.name ?? '');
  const [host, setHost] = useState(relay?.host ?? '');
  const [tunnelPort, setTunnelPort] = useState(String(relay?.tunnel_port ?? 1194));
  const [pushUrl, setPushUrl] = useState(relay?.push_url ?? 'http://127.0.0.1:8081');
  const [publicKey, setPublicKey] = useState(relay?.public_key ?? '');
  const [enabled, setEnabled] = useState(relay?.enabled ?? true);
  const { errors, setErrors, busy, send } = useFormSend();

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const port = tunnelPort.trim() === '' ? NaN : Number(tunnelPort);
    const body: Record<string, unknown> = {
      name,
      host: host.trim(),
      tunnel_port: Number.isFinite(port) ? port : tunnelPort,
      push_url: pushUrl.trim(),
      enabled,
    };
    if (publicKey.trim()) body.public_key = publicKey.trim();
    const v = await validate(relay ? 'RelayUpdate' : 'RelayCreate', body);
    const local: FieldErrors = Number.isFinite(port) ? {} : { tunnel_port: 'enter a port between 1 and 65535' };
    if (!v.ok || Object.keys(local).length) return setErrors({ ...(v.ok ? {} : v.errors), ...local });
    await send(
      () =>
        relay
          ? api<Relay>(`/api/relays/${encodeURIComponent(relay.id)}`, { method: 'PATCH', body: v.data })
          : api<Relay>('/api/relays', { method: 'POST', body: v.data }),
      onSaved,
    );
  }

  return (
    <form className="stack" onSubmit={submit} noValidate>
      {errors._ && <Notice tone="error">{errors._}</Notice>}
      <div className="form-grid">
        <Field label="Name" error={errors.name}>
          {(p) => <input {...p} value={name} onChange={(e) => setName(e.target.value)} maxLength={64} autoFocus />}
        </Field>
        <Field label="Public host" error={errors.host} hint="What devices and customers dial.">
          {(p) => (
            <input
              {...p}
              value={host}
              onChange={(e) => setHost(e.target.value)}
              placeholder="relay1.example.com"
              spellCheck={false}
            />
          )}
        </Field>
        <Field label="Tunnel port" error={errors.tunnel_port} hint="UDP, with TCP fallback on the same port.">
          {(p) => (
            <input
              {...p}
              type="number"
              min={1}
              max={65535}
              value={tunnelPort}
              onChange={(e) => setTunnelPort(e.target.value)}
            />
          )}
        </Field>
        <Field label="Push API URL" error={errors.push_url} hint="Internal; how the API reaches this relay's tunnel.">
          {(p) => <input {...p} value={pushUrl} onChange={(e) => setPushUrl(e.target.value)} spellCheck={false} />}
        </Field>
        <div className="span-all">
          <Field
            label="Tunnel public key (optional)"
            error={errors.public_key}
            hint="Base64 X25519 key; the tunnel normally reports it itself."
          >
            {(p) => (
              <input
                {...p}
                value={publicKey}
                onChange={(e) => setPublicKey(e.target.value)}
                spellCheck={false}
                className="mono"
              />
            )}
          </Field>
        </div>
        <label className="check">
          <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} /> Enabled (accepts
          new devices)
        </label>
      </div>
      <div className="actions">
        <button type="button" className="btn" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? 'Saving…' : relay ? 'Save' : 'Create relay'}
        </button>
      </div>
    </form>
  );
}

export default function RelaysPage() {
  const list = useResource<List<Relay>>('/api/relays');
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<Relay | null>(null);
  usePolling(list.reload);
  useEffect(() => {
    document.title = 'Relays · PocketProxy';
  }, []);

  function onSaved(r: Relay) {
    setCreating(false);
    setEditing(null);
    list.setData((prev) => upsertById(prev, r));
  }

  const items = list.data?.items ?? [];
  return (
    <>
      <PageHeader title="Relays">
        <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
          New relay
        </button>
      </PageHeader>
      <ErrorBanner error={list.error} onRetry={list.reload} />
      {!list.data && !list.error && <Loading what="Loading relays" />}
      {list.data && items.length === 0 && (
        <Empty>No relays. The server normally registers its own relay at start.</Empty>
      )}
      {items.length > 0 && (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th>Name</th>
                <th>Host</th>
                <th>Tunnel port</th>
                <th>Devices online</th>
                <th>State</th>
                <th>Push API</th>
                <th>Public key</th>
                <th>Created</th>
                <th className="right">Actions</th>
              </tr>
            </thead>
            <tbody>
              {items.map((r) => (
                <tr key={r.id}>
                  <td>{r.name}</td>
                  <td className="mono">{r.host}</td>
                  <td className="mono">{r.tunnel_port}</td>
                  <td>{r.devices_online}</td>
                  <td>{r.enabled ? <Badge tone="ok">enabled</Badge> : <Badge tone="muted">disabled</Badge>}</td>
                  <td className="mono small">{r.push_url}</td>
                  <td className="mono small" title={r.public_key ?? ''}>
                    {r.public_key ? `${r.public_key.slice(0, 10)}…` : <span className="muted">not reported</span>}
                  </td>
                  <td className="small nowrap">{formatTime(r.created_at)}</td>
                  <td className="actions-cell">
                    <button type="button" className="btn btn-small" onClick={() => setEditing(r)}>
                      Edit
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Dialog open={creating} title="New relay" onClose={() => setCreating(false)} wide>
        <RelayForm onSaved={onSaved} onCancel={() => setCreating(false)} />
      </Dialog>
      <Dialog open={!!editing} title="Edit relay" onClose={() => setEditing(null)} wide>
        {editing && <RelayForm key={editing.id} relay={editing} onSaved={onSaved} onCancel={() => setEditing(null)} />}
      </Dialog>
    </>
  );
}
