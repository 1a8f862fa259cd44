// What the agent trusts on the control plane: which server URLs it talks to (https, or plain http only on
// loopback or with --insecure-http), the pairing URI, and the server key pinned at pairing that must
// endorse every relay key the API hands out (docs/api.md "Pairing: the server fingerprint").
import { BlockList, isIP } from 'node:net';
import type { Logger } from 'pino';
import { checkRelayKeyEndorsement, FINGERPRINT_PATTERN } from '@pocketproxy/protocol';
import { agentError } from './errors.js';
import { createApiClient, type ApiClient } from './api-client.js';
import type { AgentState } from './state.js';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  const family = isIP(h);
  return family !== 0 && LOOPBACK.check(h, family === 4 ? 'ipv4' : 'ipv6');
}

/** Why `url` may not be the server, or null: not http(s), or plain http to a non-loopback host without `insecureHttp`. */
export function serverUrlProblem(url: string, insecureHttp: boolean): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `${url} is not a URL`;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return `${url} must be an http(s) URL`;
  if (u.protocol === 'http:' && !insecureHttp && !isLoopbackHost(u.hostname)) {
    return (
      `${url} is plain http and not loopback: the device token, keys and credentials would cross the network ` +
      'readable and alterable. Use https://, or pass --insecure-http (a lab)'
    );
  }
  return null;
}

export interface PairingUri {
  server: string;
  code: string;
  fingerprint?: string;
}

/** `pocketproxy://pair?server=<url>&code=<code>[&fp=<fingerprint>]` (the dashboard's QR code and command). */
export function parsePairingUri(text: string): PairingUri | string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return 'the pairing URI is not a URI';
  }
  if (u.protocol !== 'pocketproxy:' || u.host !== 'pair') return 'the pairing URI must start with pocketproxy://pair?';
  const server = u.searchParams.get('server');
  const code = u.searchParams.get('code');
  const fp = u.searchParams.get('fp');
  if (!server || !/^https?:\/\/[^\s]+$/.test(server)) return 'the pairing URI has no http(s) server=';
  if (!code) return 'the pairing URI has no code=';
  if (fp !== null && !FINGERPRINT_PATTERN.test(fp))
    return 'the pairing URI has a malformed fp= (22 characters of base64url)';
  return fp === null ? { server, code } : { server, code, fingerprint: fp };
}

/** Throws PP_ERR_AGENT_RELAY_KEY_UNENDORSED unless the pinned server key endorsed `relayKey` for this device. */
export function assertRelayKeyEndorsed(
  pin: NonNullable<AgentState['server_key']>,
  deviceId: string,
  relayKey: string,
  endorsement: unknown,
): void {
  if (!checkRelayKeyEndorsement(pin.public_key, deviceId, relayKey, endorsement)) {
    throw agentError('PP_ERR_AGENT_RELAY_KEY_UNENDORSED', { key: relayKey, fingerprint: pin.fingerprint });
  }
}

/**
 * The API client `run` uses: refuses a plain-http, non-loopback server unless the state (pair
 * --insecure-http) or the flag allows it, and checks every relay key GET /tunnel answers against the
 * pinned server key. A refused key is an error from tunnel(), so the agent never dials that relay; it
 * retries later (the path may have changed), logging why.
 */
export function trustedApiClient(
  state: AgentState,
  opts: { insecureHttp: boolean; logger: Logger; fetch?: typeof fetch },
): ApiClient {
  const problem = serverUrlProblem(state.server, opts.insecureHttp || state.insecure_http === true);
  if (problem) throw agentError('PP_ERR_AGENT_INSECURE_SERVER', { server: state.server });
  const api = createApiClient({
    server: state.server,
    deviceId: state.device_id,
    token: state.auth_token,
    fetch: opts.fetch,
  });
  const pin = state.server_key;
  if (!pin) {
    opts.logger.warn(
      'this device was paired without a server key: relay keys from the API are not checked; pair again (pairing URI) to pin one',
    );
    return api;
  }
  return {
    ...api,
    async tunnel() {
      const t = await api.tunnel();
      if (t.relay.public_key)
        assertRelayKeyEndorsed(pin, state.device_id, t.relay.public_key, t.relay.public_key_endorsement);
      return t;
    },
  };
}
