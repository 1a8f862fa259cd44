'use client';
// Create / edit a connection (a customer's proxy credentials on one device).
import { useState } from 'react';
import { api } from '@/lib/api';
import { fromBytes, fromLocalInput, parseAllowList, toBytes, toLocalInput, type Unit } from '@/lib/connections';
import { arrayErrors, useFormSend, validate, type FieldErrors } from '@/lib/forms';
import type { Connection, Customer, Device } from '@/lib/types';
import { Field, Notice } from './ui';

/** An optional whole-number input: '' → null (no limit), else the number (NaN when it is not one). */
function optionalNumber(text: string): number | null {
  const t = text.trim();
  return t === '' ? null : Number(t);
}

type Props = {
  connection?: Connection; // edit when given
  devices: Device[];
  customers: Customer[];
  initialDeviceId?: string;
  initialCustomerId?: string;
  onSaved: (c: Connection, created: boolean) => void;
  onCancel: () => void;
};

export function ConnectionForm({
  connection: c,
  devices,
  customers,
  initialDeviceId,
  initialCustomerId,
  onSaved,
  onCancel,
}: Props) {
  const editing = !!c;
  const limit = fromBytes(c?.bandwidth_limit_bytes ?? null);
  const [deviceId, setDeviceId] = useState(c?.device_id ?? initialDeviceId ?? '');
  const [customerId, setCustomerId] = useState(c?.customer_id ?? initialCustomerId ?? '');
  const [protocol, setProtocol] = useState<'http' | 'socks5'>(c?.protocol ?? 'http');
  const [username, setUsername] = useState(c?.username ?? '');
  const [password, setPassword] = useState('');
  const [amount, setAmount] = useState(limit.amount);
  const [unit, setUnit] = useState<Unit>(limit.unit);
  const [expires, setExpires] = useState(toLocalInput(c?.expires_at ?? null));
  const [maxConns, setMaxConns] = useState(c?.max_connections == null ? '' : String(c.max_connections));
  const [downKbps, setDownKbps] = useState(c?.rate_limit_down_kbps == null ? '' : String(c.rate_limit_down_kbps));
  const [upKbps, setUpKbps] = useState(c?.rate_limit_up_kbps == null ? '' : String(c.rate_limit_up_kbps));
  const [minRotation, setMinRotation] = useState(
    c?.rotation_min_interval_s == null ? '' : String(c.rotation_min_interval_s),
  );
  const [allow, setAllow] = useState((c?.allow_from ?? []).join('\n'));
  const [enabled, setEnabled] = useState(c?.enabled ?? true);
  const [regen, setRegen] = useState(false);
  const { errors, setErrors, busy, send } = useFormSend();

  const device = devices.find((d) => d.id === deviceId);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const local: FieldErrors = {};
    const bandwidth = toBytes(amount, unit);
    if (Number.isNaN(bandwidth)) local.bandwidth_limit_bytes = 'enter a number, or leave empty for no limit';
    const expiresAt = fromLocalInput(expires);
    if (expiresAt === 'invalid') local.expires_at = 'enter a date and time';
    else if (expiresAt && !editing && Date.parse(expiresAt) <= Date.now()) local.expires_at = 'must be in the future';
    if (!editing && !deviceId) local.device_id = 'choose a device';
    const limits = {
      max_connections: optionalNumber(maxConns),
      rate_limit_down_kbps: optionalNumber(downKbps),
      rate_limit_up_kbps: optionalNumber(upKbps),
      rotation_min_interval_s: optionalNumber(minRotation),
    };
    for (const [k, v] of Object.entries(limits))
      if (Number.isNaN(v)) local[k] = 'enter a whole number, or leave empty for no limit';

    const body: Record<string, unknown> = {
      customer_id: customerId || null,
      bandwidth_limit_bytes: bandwidth,
      expires_at: expiresAt,
      allow_from: parseAllowList(allow),
      enabled,
      ...limits,
    };
    if (editing) {
      if (username !== c.username) body.username = username;
      if (password) body.password = password;
      if (regen) body.regenerate_rotation_token = true;
    } else {
      body.device_id = deviceId;
      body.protocol = protocol;
      if (username.trim()) body.username = username.trim();
      if (password) body.password = password;
    }
    const v = await validate(editing ? 'ConnectionUpdate' : 'ConnectionCreate', body);
    const all = { ...(v.ok ? {} : v.errors), ...local };
    if (Object.keys(all).length) return setErrors(all);
    await send(
      () =>
        editing
          ? api<Connection>(`/api/connections/${encodeURIComponent(c.id)}`, {
              method: 'PATCH',
              body: v.ok ? v.data : body,
            })
          : api<Connection>('/api/connections', { method: 'POST', body: v.ok ? v.data : body }),
      (saved) => onSaved(saved, !editing),
    );
  }

  return (
    <form className="stack" onSubmit={submit} noValidate>
      {errors._ && <Notice tone="error">{errors._}</Notice>}
      <div className="form-grid">
        <Field
          label="Device"
          error={errors.device_id}
          hint={editing ? 'A connection stays on its device; create a new one to move it.' : undefined}
        >
          {(p) => (
            <select {...p} value={deviceId} onChange={(e) => setDeviceId(e.target.value)} disabled={editing}>
              {!editing && <option value="">Choose a device…</option>}
              {devices.map((d) => (
                <option key={d.id} value={d.id}>
                  {d.name} — {d.status}
                </option>
              ))}
              {editing && !device && <option value={deviceId}>{deviceId}</option>}
            </select>
          )}
        </Field>
        <Field label="Customer" error={errors.customer_id}>
          {(p) => (
            <select {...p} value={customerId} onChange={(e) => setCustomerId(e.target.value)}>
              <option value="">— none —</option>
              {customers.map((cu) => (
                <option key={cu.id} value={cu.id}>
                  {cu.name}
                </option>
              ))}
            </select>
          )}
        </Field>
        {device?.status === 'offline' && (
          <div className="span-all">
            <Notice tone="warn">
              {device.name} is offline: this proxy will not carry traffic until the device reconnects.
            </Notice>
          </div>
        )}
        <fieldset className="field span-all" style={{ border: 0, padding: 0, margin: 0 }} disabled={editing}>
          <legend style={{ fontWeight: 600, fontSize: 13, marginBottom: 4 }}>Protocol</legend>
          <div className="row">
            {(['http', 'socks5'] as const).map((p) => (
              <label key={p} className="check">
                <input
                  type="radio"
                  name="protocol"
                  value={p}
                  checked={protocol === p}
                  onChange={() => setProtocol(p)}
                />
                {p === 'http' ? 'HTTP / HTTPS (CONNECT)' : 'SOCKS5 (TCP + UDP)'}
              </label>
            ))}
          </div>
          {errors.protocol && <div className="field-error">{errors.protocol}</div>}
        </fieldset>
        <Field label="Username" error={errors.username} hint={editing ? undefined : 'Leave empty to generate one.'}>
          {(p) => (
            <input
              {...p}
              value={username}
              onChange={(e) => setUsername(e.target.value)}
              autoComplete="off"
              spellCheck={false}
              placeholder={editing ? '' : 'generated'}
            />
          )}
        </Field>
        <Field
          label={editing ? 'New password' : 'Password'}
          error={errors.password}
          hint={editing ? 'Leave empty to keep the current password.' : 'Leave empty to generate one.'}
        >
          {(p) => (
            <input
              {...p}
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              autoComplete="new-password"
              spellCheck={false}
              placeholder={editing ? 'unchanged' : 'generated'}
            />
          )}
        </Field>
        <Field label="Monthly bandwidth limit" error={errors.bandwidth_limit_bytes} hint="Leave empty for no limit.">
          {(p) => (
            <div className="row" style={{ flexWrap: 'nowrap' }}>
              <input
                {...p}
                type="number"
                min={0}
                step="any"
                value={amount}
                onChange={(e) => setAmount(e.target.value)}
                placeholder="unlimited"
              />
              <select
                aria-label="Unit"
                value={unit}
                onChange={(e) => setUnit(e.target.value as Unit)}
                style={{ width: 'auto' }}
              >
                <option>MB</option>
                <option>GB</option>
                <option>TB</option>
              </select>
            </div>
          )}
        </Field>
        <Field
          label="Max simultaneous connections"
          error={errors.max_connections}
          hint="1–100000. Leave empty for no limit."
        >
          {(p) => (
            <input
              {...p}
              type="number"
              min={1}
              max={100000}
              step={1}
              inputMode="numeric"
              value={maxConns}
              onChange={(e) => setMaxConns(e.target.value)}
              placeholder="unlimited"
            />
          )}
        </Field>
        <Field
          label="Download rate limit (kbps)"
          error={errors.rate_limit_down_kbps}
          hint="Target → customer, kilobits per second (1000 kbps = 1 Mbit/s). Empty: no limit."
        >
          {(p) => (
            <input
              {...p}
              type="number"
              min={1}
              max={10000000}
              step={1}
              inputMode="numeric"
              value={downKbps}
              onChange={(e) => setDownKbps(e.target.value)}
              placeholder="unlimited"
            />
          )}
        </Field>
        <Field
          label="Upload rate limit (kbps)"
          error={errors.rate_limit_up_kbps}
          hint="Customer → target, kilobits per second. Empty: no limit."
        >
          {(p) => (
            <input
              {...p}
              type="number"
              min={1}
              max={10000000}
              step={1}
              inputMode="numeric"
              value={upKbps}
              onChange={(e) => setUpKbps(e.target.value)}
              placeholder="unlimited"
            />
          )}
        </Field>
        <Field
          label="Minimum time between rotations (s)"
          error={errors.rotation_min_interval_s}
          hint="The rotation link answers 429 (with Retry-After) until this long after the device's last rotation started. 0–86400. Empty: no minimum."
        >
          {(p) => (
            <input
              {...p}
              type="number"
              min={0}
              max={86400}
              step={1}
              inputMode="numeric"
              value={minRotation}
              onChange={(e) => setMinRotation(e.target.value)}
              placeholder="no minimum"
            />
          )}
        </Field>
        <Field label="Expires" error={errors.expires_at} hint="Leave empty for no expiry. Your local time.">
          {(p) => <input {...p} type="datetime-local" value={expires} onChange={(e) => setExpires(e.target.value)} />}
        </Field>
        <div className="span-all">
          <Field
            label="Source allow-list"
            error={arrayErrors(errors, 'allow_from')}
            hint="One IPv4 address or CIDR per line (e.g. 203.0.113.7 or 198.51.100.0/24). Empty: any source with the username and password."
          >
            {(p) => (
              <textarea {...p} rows={3} value={allow} onChange={(e) => setAllow(e.target.value)} spellCheck={false} />
            )}
          </Field>
        </div>
        <label className="check">
          <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} /> Enabled
        </label>
        {editing && (
          <label className="check">
            <input type="checkbox" checked={regen} onChange={(e) => setRegen(e.target.checked)} /> New rotation link
            (the old one stops working)
          </label>
        )}
      </div>
      <div className="actions">
        <button type="button" className="btn" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? 'Saving…' : editing ? 'Save' : 'Create connection'}
        </button>
      </div>
    </form>
  );
}
