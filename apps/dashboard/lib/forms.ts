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

type Schemas = typeof import('@pocketproxy/api-schema');
/** The shared schemas a form can validate with, by name. */
export type SchemaName = { [K in keyof Schemas]: Schemas[K] extends z.ZodType ? K : never }[keyof Schemas];
type Out<K extends SchemaName> = z.output<Extract<Schemas[K], z.ZodType>>;

// zod and the shared schemas (~37 KB gzip) load on a form's first validation, not with the page: every
// page prefetches the routes its nav links point to, so a static import here weighed on all of them.
let schemas: Promise<Schemas> | null = null;
export function loadSchemas(): Promise<Schemas> {
  schemas ??= import('@pocketproxy/api-schema').catch((err: unknown) => {
    schemas = null; // a failed chunk load is tried again on the next submit
    throw err;
  });
  return schemas;
}

/** Validate with a shared schema (by name); returns either the parsed value or field errors. */
export async function validate<K extends SchemaName>(
  name: K,
  value: unknown,
): Promise<{ ok: true; data: Out<K> } | { ok: false; errors: FieldErrors }> {
  let schema: z.ZodType;
  try {
    schema = (await loadSchemas())[name] as z.ZodType;
  } catch (err) {
    return {
      ok: false,
      errors: { _: `Could not load the form's checks: ${err instanceof Error ? err.message : err}` },
    };
  }
  const r = schema.safeParse(value);
  return r.success ? { ok: true, data: r.data as Out<K> } : { ok: false, errors: zodFieldErrors(r.error) };
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
