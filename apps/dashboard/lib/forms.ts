// Form helpers: turn zod issues and API problems into `{field: message}` maps for inline display.
import type { z } from 'zod';
import { ApiError } from './api';

export type FieldErrors = Record<string, string>;

export function zodFieldErrors(error: z.ZodError): FieldErrors {
  const out: FieldErrors = {};
  for (const issue of error.issues) {
    const key = issue.path.map(String).join('.') || '_';
    if (!(key in out)) out[key] = issue.message;
  }
  return out;
}

/** Validate with a shared schema; returns either the parsed value or field errors. */
export function validate<S extends z.ZodType>(schema: S, value: unknown): { ok: true; data: z.output<S> } | { ok: false; errors: FieldErrors } {
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
