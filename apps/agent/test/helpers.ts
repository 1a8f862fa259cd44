import type { CredentialItem } from '../src/api-client.js';
import { makeVerifier } from '../src/credentials.js';
import { silentLogger } from '../src/log.js';
export const logger = silentLogger();

export async function waitFor(cond: () => boolean, timeoutMs: number, stepMs = 20): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return Date.now() - t0;
}

/** A well-formed credential item as the API sends it (HTTP, active, no limits) for `user`:`password`. */
export function credentialItem(
  id: string,
  port: number,
  user: string,
  password: string,
  extra: Partial<CredentialItem> = {},
): CredentialItem {
  return {
    connection_id: id,
    protocol: 'http',
    port,
    username: user,
    verifier: makeVerifier(password, `salt-${id}`),
    state: 'active',
    allow_from: [],
    expires_at: null,
    max_connections: null,
    rate_limit_down_kbps: null,
    rate_limit_up_kbps: null,
    bandwidth_limit_bytes: null,
    bytes_used_month: 0,
    ...extra,
  };
}
