'use client';
// Auto-rotation interval editor for one device (PATCH rotation_interval_s; null turns it off).
import { useEffect, useState } from 'react';
import { api } from '@/lib/api';
import { formatInterval, formatTime } from '@/lib/format';
import { problemErrors, validate, type FieldErrors } from '@/lib/forms';
import type { Device } from '@/lib/types';
import { Field, Notice } from './ui';

const PRESETS: Array<[string, number | null]> = [
  ['Off', null],
  ['Every 5 minutes', 300],
  ['Every 10 minutes', 600],
  ['Every 15 minutes', 900],
  ['Every 30 minutes', 1800],
  ['Every hour', 3600],
  ['Every 2 hours', 7200],
  ['Every 6 hours', 21600],
  ['Every 12 hours', 43200],
  ['Every 24 hours', 86400],
];

function choiceFor(s: number | null): string {
  return PRESETS.some(([, v]) => v === s) ? String(s) : 'custom';
}

export function RotationEditor({ device, onSaved }: { device: Device; onSaved: (d: Device) => void }) {
  const [choice, setChoice] = useState(choiceFor(device.rotation_interval_s));
  const [minutes, setMinutes] = useState(
    device.rotation_interval_s ? String(Math.round(device.rotation_interval_s / 60)) : '',
  );
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);

  useEffect(() => {
    setChoice(choiceFor(device.rotation_interval_s));
    setMinutes(device.rotation_interval_s ? String(Math.round(device.rotation_interval_s / 60)) : '');
  }, [device.rotation_interval_s]);

  const value: number | null =
    choice === 'custom'
      ? minutes.trim() === ''
        ? NaN
        : Math.round(Number(minutes) * 60)
      : choice === 'null'
        ? null
        : Number(choice);
  const dirty = value !== device.rotation_interval_s;

  async function save(e: React.FormEvent) {
    e.preventDefault();
    setSaved(false);
    if (value !== null && !Number.isFinite(value))
      return setErrors({ rotation_interval_s: 'enter a number of minutes' });
    const v = await validate('DeviceUpdate', { rotation_interval_s: value });
    if (!v.ok) return setErrors(v.errors);
    setErrors({});
    setBusy(true);
    try {
      onSaved(await api<Device>(`/api/devices/${encodeURIComponent(device.id)}`, { method: 'PATCH', body: v.data }));
      setSaved(true);
    } catch (err) {
      setErrors(problemErrors(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="stack" onSubmit={save} noValidate>
      <p className="muted small" style={{ margin: 0 }}>
        Auto-rotation: <strong>{formatInterval(device.rotation_interval_s)}</strong>
        {device.rotation_interval_s && device.next_rotation_at
          ? ` · next at ${formatTime(device.next_rotation_at)}`
          : ''}
        {device.rotation_interval_s && device.status === 'offline' ? ' · paused while the device is offline' : ''}
      </p>
      {errors._ && <Notice tone="error">{errors._}</Notice>}
      <div className="row" style={{ alignItems: 'flex-end' }}>
        <Field label="Rotate automatically" error={choice === 'custom' ? undefined : errors.rotation_interval_s}>
          {(p) => (
            <select
              {...p}
              value={choice}
              onChange={(e) => {
                setChoice(e.target.value);
                setSaved(false);
              }}
            >
              {PRESETS.map(([label, v]) => (
                <option key={label} value={String(v)}>
                  {label}
                </option>
              ))}
              <option value="custom">Custom…</option>
            </select>
          )}
        </Field>
        {choice === 'custom' && (
          <Field label="Minutes" error={errors.rotation_interval_s} hint="1 minute to 7 days">
            {(p) => (
              <input
                {...p}
                type="number"
                min={1}
                max={10080}
                step={1}
                value={minutes}
                onChange={(e) => setMinutes(e.target.value)}
                style={{ width: 120 }}
              />
            )}
          </Field>
        )}
        <button type="submit" className="btn" disabled={busy || !dirty}>
          {busy ? 'Saving…' : 'Save'}
        </button>
        {saved && !dirty && (
          <span className="muted small" role="status">
            Saved
          </span>
        )}
      </div>
    </form>
  );
}
