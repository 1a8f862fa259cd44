'use client';
// Small shared UI pieces: badges, live ages, copy buttons, dialogs, form fields, error banners.
import { useEffect, useId, useLayoutEffect, useRef, useState } from 'react';
import { trackAge, useNow } from '@/lib/clock';
import { formatAge, formatTime, freshness } from '@/lib/format';
import { ApiError } from '@/lib/api';

export function StatusBadge({ status }: { status: 'online' | 'offline' | string }) {
  return <span className={`badge badge-${status === 'online' ? 'ok' : 'bad'}`}>{status}</span>;
}

export function Badge({
  tone,
  children,
  title,
}: {
  tone: 'ok' | 'warn' | 'bad' | 'info' | 'muted';
  children: React.ReactNode;
  title?: string;
}) {
  return (
    <span className={`badge badge-${tone}`} title={title}>
      {children}
    </span>
  );
}

const ageFormat = (at: string | null | undefined, now: number): [string, string] => [
  formatAge(at, now),
  freshness(at, now),
];

const neutralFormat = (at: string | null | undefined, now: number): [string, string] => [formatAge(at, now), ''];

/**
 * "12s ago", coloured by freshness for a last-seen time: green < 60 s, amber < 5 min, red beyond.
 * `neutral`: just the age, uncoloured (a command's creation, a last known address). Ticks every second.
 */
export function Age({ at, neutral = false }: { at: string | null | undefined; neutral?: boolean }) {
  const ref = useRef<HTMLSpanElement>(null);
  useLayoutEffect(() => {
    const el = ref.current;
    return el ? trackAge(el, { at, format: neutral ? neutralFormat : ageFormat }) : undefined;
  }, [at, neutral]);
  return (
    <span ref={ref} className="age" title={at ? formatTime(at) : neutral ? undefined : 'never seen'}>
      {!neutral && <span className="dot" aria-hidden="true" />}
      <span />
    </span>
  );
}

/** Countdown to `at`; calls onExpire once when it passes. */
export function Countdown({ at, onExpire }: { at: string; onExpire?: () => void }) {
  const now = useNow();
  const left = Math.max(0, Math.floor((Date.parse(at) - (now || Date.now())) / 1000));
  const fired = useRef(false);
  useEffect(() => {
    if (left === 0 && !fired.current && now) {
      fired.current = true;
      onExpire?.();
    }
  }, [left, now, onExpire]);
  const m = Math.floor(left / 60);
  const s = left % 60;
  return (
    <span className={`countdown ${left < 60 ? 'countdown-low' : ''}`}>{`${m}:${String(s).padStart(2, '0')}`}</span>
  );
}

async function copyText(text: string): Promise<boolean> {
  // navigator.clipboard needs a secure context; dashboards on http://relay:8080 are not one.
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    /* fall through */
  }
  const ta = document.createElement('textarea');
  ta.value = text;
  ta.setAttribute('readonly', '');
  ta.style.position = 'fixed';
  ta.style.opacity = '0';
  document.body.appendChild(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
}

export function CopyButton({ text, label = 'Copy', className }: { text: string; label?: string; className?: string }) {
  const [state, setState] = useState<'idle' | 'ok' | 'fail'>('idle');
  useEffect(() => {
    if (state === 'idle') return;
    const t = setTimeout(() => setState('idle'), 1500);
    return () => clearTimeout(t);
  }, [state]);
  return (
    <button
      type="button"
      className={`btn btn-small ${className ?? ''}`}
      onClick={async () => setState((await copyText(text)) ? 'ok' : 'fail')}
      aria-live="polite"
    >
      {state === 'ok' ? 'Copied' : state === 'fail' ? 'Copy failed' : label}
    </button>
  );
}

export function ErrorBanner({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  if (!error) return null;
  const msg = error instanceof Error ? error.message : String(error);
  const reqId = error instanceof ApiError ? error.problem?.request_id : undefined;
  return (
    <div className="alert alert-error" role="alert">
      <span>{msg}</span>
      {reqId && <span className="muted small"> (request {reqId})</span>}
      {onRetry && (
        <button type="button" className="btn btn-small" onClick={onRetry}>
          Retry
        </button>
      )}
    </div>
  );
}

export function Notice({
  tone,
  children,
  onClose,
}: {
  tone: 'ok' | 'warn' | 'error' | 'info';
  children: React.ReactNode;
  onClose?: () => void;
}) {
  return (
    <div className={`alert alert-${tone}`} role={tone === 'error' ? 'alert' : 'status'}>
      <div>{children}</div>
      {onClose && (
        <button type="button" className="btn btn-small btn-ghost" onClick={onClose} aria-label="Dismiss">
          ×
        </button>
      )}
    </div>
  );
}

type FieldProps = {
  label: string;
  error?: string | undefined;
  hint?: React.ReactNode;
  children: (props: { id: string; 'aria-invalid': boolean; 'aria-describedby'?: string }) => React.ReactNode;
};

/** A labelled form field; the error is announced and linked to the input. */
export function Field({ label, error, hint, children }: FieldProps) {
  const id = useId();
  const describedBy = [hint ? `${id}-hint` : '', error ? `${id}-err` : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div className={`field ${error ? 'field-invalid' : ''}`}>
      <label htmlFor={id}>{label}</label>
      {children({ id, 'aria-invalid': !!error, 'aria-describedby': describedBy })}
      {hint && (
        <div id={`${id}-hint`} className="hint">
          {hint}
        </div>
      )}
      {error && (
        <div id={`${id}-err`} className="field-error">
          {error}
        </div>
      )}
    </div>
  );
}

/** Modal built on <dialog>: focus trap, Escape and backdrop handling come from the browser. */
export function Dialog({
  open,
  title,
  onClose,
  children,
  wide,
}: {
  open: boolean;
  title: string;
  onClose: () => void;
  children: React.ReactNode;
  wide?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog
      ref={ref}
      className={`dialog ${wide ? 'dialog-wide' : ''}`}
      aria-labelledby={titleId}
      onClose={onClose}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      {open && (
        <>
          <div className="dialog-head">
            <h2 id={titleId}>{title}</h2>
            <button type="button" className="btn btn-ghost btn-small" onClick={onClose} aria-label="Close">
              ×
            </button>
          </div>
          <div className="dialog-body">{children}</div>
        </>
      )}
    </dialog>
  );
}

export function ConfirmDialog({
  open,
  title,
  children,
  confirmLabel,
  onConfirm,
  onClose,
}: {
  open: boolean;
  title: string;
  children: React.ReactNode;
  confirmLabel: string;
  onConfirm: () => Promise<void>;
  onClose: () => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (open) setError(null);
  }, [open]);
  return (
    <Dialog open={open} title={title} onClose={onClose}>
      <div className="stack">
        <div>{children}</div>
        <ErrorBanner error={error} />
        <div className="actions">
          <button type="button" className="btn" onClick={onClose} autoFocus>
            Cancel
          </button>
          <button
            type="button"
            className="btn btn-danger"
            disabled={busy}
            onClick={async () => {
              setBusy(true);
              setError(null);
              try {
                await onConfirm();
                onClose();
              } catch (err) {
                setError(err);
              } finally {
                setBusy(false);
              }
            }}
          >
            {busy ? 'Working…' : confirmLabel}
          </button>
        </div>
      </div>
    </Dialog>
  );
}

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <p className="muted" role="status">
      {what}…
    </p>
  );
}

export function Empty({ children }: { children: React.ReactNode }) {
  return <div className="empty">{children}</div>;
}

export function PageHeader({ title, children }: { title: React.ReactNode; children?: React.ReactNode }) {
  return (
    <div className="page-head">
      <h1>{title}</h1>
      {children && <div className="page-actions">{children}</div>}
    </div>
  );
}
