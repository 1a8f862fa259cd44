'use client';
import { useEffect, useState } from 'react';
import type { LoginRequest } from '@pocketproxy/api-schema';
import { api } from '@/lib/api';
import { problemErrors, type FieldErrors } from '@/lib/forms';
import { startSession, takeFlash } from '@/lib/session';
import type { z } from 'zod';
import { Field, Notice } from '@/components/ui';

type LoginResponse = { token: string; expires_at: string };

/** Only same-site paths are allowed as a post-login destination. */
function safeNext(): string {
  const next = new URLSearchParams(window.location.search).get('next') ?? '/';
  return next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/login') ? next : '/';
}

export default function LoginPage() {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [errors, setErrors] = useState<FieldErrors>({});
  const [flash, setFlash] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    setFlash(takeFlash());
    document.title = 'Sign in · PocketProxy';
  }, []);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    // Only presence is checked here: the admin address comes from the server's config and the
    // server is the judge of it (a strict email check would lock out e.g. admin@localhost).
    const local: FieldErrors = {};
    if (!email.trim()) local.email = 'enter your email';
    if (!password) local.password = 'enter your password';
    if (Object.keys(local).length) return setErrors(local);
    setErrors({});
    setBusy(true);
    try {
      const body: z.input<typeof LoginRequest> = { email: email.trim(), password };
      const res = await api<LoginResponse>('/api/auth/login', { method: 'POST', body, auth: false });
      startSession(res.token, res.expires_at);
      window.location.assign(safeNext());
    } catch (err) {
      const pe = problemErrors(err);
      setErrors(pe);
      setBusy(false);
    }
  }

  return (
    <div className="login">
      <h1 className="brand brand-big">PocketProxy</h1>
      <form className="card stack" onSubmit={submit} noValidate>
        <h2>Sign in</h2>
        {flash && <Notice tone="warn">{flash}</Notice>}
        {errors._ && <Notice tone="error">{errors._}</Notice>}
        <Field label="Email" error={errors.email}>
          {(p) => (
            <input
              {...p}
              type="email"
              autoComplete="username"
              value={email}
              onChange={(e) => setEmail(e.target.value)}
              autoFocus
              required
            />
          )}
        </Field>
        <Field label="Password" error={errors.password}>
          {(p) => (
            <input
              {...p}
              type="password"
              autoComplete="current-password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              required
            />
          )}
        </Field>
        <button className="btn btn-primary" type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </div>
  );
}
