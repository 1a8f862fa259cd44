// Form helpers: turn zod issues and API problems into `{field: message}` maps for inline display.
import { useState } from 'react';
import type { z } from 'zod';
import { ApiError } from './api';

export type FieldErrors = Record<string, string>;

export function zodFieldErrors(error: z.ZodError): FieldErrors {
  const out: FieldErrors = {};
  for (const issue of error.issues) {
    const key = issue.path.map(String).join('.') || '_';
    if (!(key in out)) out[key] = friendly(issue);
  }
  return out;
}

/** zod's built-in messages ("Too big: expected number to be <=65535") rewritten for operators. */
export function friendly(issue: z.ZodError['issues'][number]): string {
  const m = issue.message;
  if (!/^(Too big|Too small|Invalid input)/.test(m)) return m; // the schema's own wording
  const i = issue as unknown as {
    code: string;
    origin?: string;
    maximum?: number | bigint;
    minimum?: number | bigint;
    expected?: string;
  };
  if (i.code === 'too_big' && i.origin === 'string') return `must be at most ${i.maximum} characters`;
  if (i.code === 'too_small' && i.origin === 'string')
    return Number(i.minimum) <= 1 ? 'must not be empty' : `must be at least ${i.minimum} characters`;
  if (i.code === 'too_big' && i.origin === 'number') return `must be at most ${i.maximum}`;
  if (i.code === 'too_small' && i.origin === 'number') return `must be at least ${i.minimum}`;
  if (i.code === 'too_big' && i.origin === 'array') return `at most ${i.maximum} entries`;
  if (i.code === 'invalid_type' && i.expected === 'number') return 'must be a number';
  return m;
}

/** Validate with a shared schema; returns either the parsed value or field errors. */
export function validate<S extends z.ZodType>(
  schema: S,
  value: unknown,
): { ok: true; data: z.output<S> } | { ok: false; errors: FieldErrors } {
  const r = schema.safeParse(value);
  return r.success ? { ok: true, data: r.data } : { ok: false, errors: zodFieldErrors(r.error) };
}

/** Field errors for a failed request; `_` carries the problem's detail. */
export function problemErrors(err: unknown): FieldErrors {
  if (err instanceof ApiError) return { ...err.fieldErrors, _: err.message };
  return { _: err instanceof Error ? err.message : String(err) };
}

/** Errors for `prefix.N` (array items) joined, e.g. allow_from.2 → "line 3: …". */
export function arrayErrors(errors: FieldErrors, prefix: string): string | undefined {
  const msgs: string[] = [];
  if (errors[prefix]) msgs.push(errors[prefix]);
  for (const [k, v] of Object.entries(errors)) {
    const m = k.match(new RegExp(`^${prefix}\\.(\\d+)$`));
    if (m) msgs.push(`line ${Number(m[1]) + 1}: ${v}`);
  }
  return msgs.length ? msgs.join('; ') : undefined;
}

/**
 * A form's errors and busy flag, and `send`: clears the errors, runs the request, hands its result on, or
 * shows the API's problem next to the fields. The forms validate first, then `await send(...)`.
 */
export function useFormSend() {
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  async function send<T>(request: () => Promise<T>, onDone: (value: T) => void): Promise<void> {
    setErrors({});
    setBusy(true);
    try {
      onDone(await request());
    } catch (err) {
      setErrors(problemErrors(err));
    } finally {
      setBusy(false);
    }
  }
  return { errors, setErrors, busy, send };
}
