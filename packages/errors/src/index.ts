// @pocketproxy/errors — the shape every package's error registry takes.
// Any package may import this; it imports nothing of ours. Also the one list of what no log may show
// (redact.ts: SECRET_LOG_KEYS; logRedactionOptions applies it in the server's and the agent's loggers).
//
// Each package declares its own registry with `defineErrors({...})`: a stable code
// (PP_ERR_<AREA>_<THING>, never reused), an HTTP status and a message template with {named}
// holes. `docs/errors.md` is generated from all registries (`node --import tsx scripts/gen-errors-doc.ts
// --write`) and a test (test/docs.test.ts) keeps it in step.

export interface ErrorSpec {
  readonly status: number;
  readonly message: string;
}

export type Registry<K extends string> = { readonly [P in K]: ErrorSpec };

/** Every registry defined in this process, by area; docs/errors.md is generated from it. */
export const allRegistries = new Map<string, Registry<string>>();

export function defineErrors<K extends string>(area: string, specs: Registry<K>): Registry<K> {
  for (const code of Object.keys(specs)) {
    if (!/^PP_ERR_[A-Z0-9]+_[A-Z0-9_]+$/.test(code)) throw new Error(`bad error code name: ${code}`);
  }
  const frozen = Object.freeze({ ...specs });
  allRegistries.set(area, frozen);
  return frozen;
}

/** An error with a stable code. `detail` is safe to show to the caller; `cause` is not. */
export class PPError extends Error {
  readonly code: string;
  readonly status: number;
  readonly params: Readonly<Record<string, string | number>>;
  constructor(
    code: string,
    spec: ErrorSpec,
    params: Record<string, string | number> = {},
    options?: { cause?: unknown },
  ) {
    super(render(spec.message, params), options);
    this.name = 'PPError';
    this.code = code;
    this.status = spec.status;
    this.params = params;
  }
}

export function render(template: string, params: Record<string, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (_, k: string) => (k in params ? String(params[k]) : `{${k}}`));
}

/** Build a typed thrower bound to one registry: `const fail = errorFactory(ERRORS); throw fail('PP_ERR_X_Y', {..})`. */
export function errorFactory<K extends string>(registry: Registry<K>) {
  return (code: K, params: Record<string, string | number> = {}, options?: { cause?: unknown }): PPError =>
    new PPError(code, registry[code], params, options);
}

export function isPPError(e: unknown): e is PPError {
  return e instanceof PPError;
}

export { LOG_REDACT_CENSOR, SECRET_LOG_KEYS, isSecretLogKey, logRedactionOptions, redactSecrets } from './redact.js';
