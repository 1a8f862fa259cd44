// What never reaches a log, for every process that logs (apps/server: API, worker, tunnel; apps/agent): one
// list, and one way to apply it (logRedactionOptions, spread into pino's options by both apps). A value under
// any of these keys (any letter case), at any depth of a log object, is replaced by '[redacted]' before the
// line is written (redactSecrets, pino's `formatters.log`); in a child logger's bindings, at their top level
// (pino's `redact` with exact paths: pino runs no formatter over a child's bindings).
// Not `code`: logs carry error codes under it (the pairing code travels as `code` only in the pairing
// request, which nothing logs).
// A walk rather than pino's wildcard `redact` paths: it reaches every depth, and costs about what serializing
// the object does, where `*.key` paths for this list cost several times a whole log line.

/** Field names whose values must never be logged. */
export const SECRET_LOG_KEYS = [
  // passwords and what is derived from them (a verifier or hash can be attacked offline)
  'password',
  'password_hash',
  'password_verifier',
  'passwordVerifier',
  'password_enc',
  'verifier',
  // bearer tokens
  'token',
  'auth_token',
  'authToken',
  'internal_token',
  'internalToken',
  'rotation_token',
  'rotationToken',
  'rotation_token_enc',
  // keys and shared secrets
  'private_key',
  'privateKey',
  'psk',
  'psk_enc',
  'secret',
  'secret_enc',
  'secrets',
  'server_key_seed',
  'serverKeySeed',
  // pairing codes, and the pairing URI that carries one
  'pairing_code',
  'pairingCode',
  'pair_url',
  'pairUrl',
  // HTTP headers that carry credentials
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-pocketproxy-signature',
] as const;

export const LOG_REDACT_CENSOR = '[redacted]';

const SECRET = new Set<string>(SECRET_LOG_KEYS.map((k) => k.toLowerCase()));
/** Deeper than any log object we write; beyond it values are left as they are. */
const MAX_DEPTH = 8;

/** Whether `key` names a value no log may show. */
export function isSecretLogKey(key: string): boolean {
  return SECRET.has(key.toLowerCase());
}

/**
 * `value` with every secret field censored, at any depth. Copy on write: what holds no secret is returned
 * as is, and the caller's objects are never changed. Errors stay errors (same prototype, message, stack).
 * Use as pino's `formatters.log` and `formatters.bindings`.
 */
export function redactSecrets<T>(value: T): T {
  return redact(value, 0, new Set()) as T;
}

function redact(value: unknown, depth: number, seen: Set<object>): unknown {
  if (typeof value !== 'object' || value === null || depth > MAX_DEPTH || seen.has(value)) return value;
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date || value instanceof RegExp)
    return value;
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const r = redact(value[i], depth + 1, seen);
        if (r === value[i]) continue;
        copy ??= value.slice();
        copy[i] = r;
      }
      return copy ?? value;
    }
    const isError = value instanceof Error;
    const keys = isError ? Object.getOwnPropertyNames(value) : Object.keys(value);
    let copy: Record<string, unknown> | undefined;
    for (const k of keys) {
      const v = (value as Record<string, unknown>)[k];
      const r = isSecretLogKey(k) && v !== undefined && v !== null ? LOG_REDACT_CENSOR : redact(v, depth + 1, seen);
      if (r === v) continue;
      if (!copy) {
        copy = isError ? (Object.create(Object.getPrototypeOf(value)) as Record<string, unknown>) : {};
        for (const k2 of keys) copy[k2] = (value as Record<string, unknown>)[k2];
      }
      copy[k] = r;
    }
    return copy ?? value;
  } finally {
    seen.delete(value);
  }
}

/**
 * The pino options that apply the list (a fresh object each call): `pino({ level, ...logRedactionOptions() })`.
 * Typed structurally so this package needs no pino.
 */
export function logRedactionOptions(): {
  formatters: { log: (object: Record<string, unknown>) => Record<string, unknown> };
  redact: { paths: string[]; censor: string };
} {
  return {
    formatters: { log: redactSecrets },
    redact: {
      paths: SECRET_LOG_KEYS.map((k) => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : `["${k}"]`)),
      censor: LOG_REDACT_CENSOR,
    },
  };
}
