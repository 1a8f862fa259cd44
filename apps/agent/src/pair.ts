// `pocketproxy-agent pair`: trade a pairing code for the device's identity and store it.
// The device makes its own X25519 key pair and sends only the public half. With the pairing code's
// fingerprint, the server key in the answer must match it, and the relay key must carry that key's
// endorsement; the key is pinned in state.json for `run` (trust.ts).
import * as os from 'node:os';
import { decodeKey, encodeKey, generateKeyPair, serverKeyFingerprint } from '@pocketproxy/protocol';
import { createApiClient, type ApiClient, type PairResult } from './api-client.js';
import { agentError } from './errors.js';
import { writeState, type AgentState } from './state.js';
import { assertRelayKeyEndorsed, serverUrlProblem } from './trust.js';
import { AGENT_VERSION } from './version.js';

export interface PairOptions {
  server: string;
  code: string;
  stateDir: string;
  name?: string;
  /** The server key fingerprint from the pairing code (URI `fp`); without it the key in the answer is pinned as is. */
  fingerprint?: string;
  /** Plain http to a non-loopback server (remembered for `run`). */
  insecureHttp?: boolean;
  api?: ApiClient;
  now?: () => Date;
}

export async function pairDevice(o: PairOptions): Promise<{ state: AgentState; path: string }> {
  if (serverUrlProblem(o.server, o.insecureHttp === true))
    throw agentError('PP_ERR_AGENT_INSECURE_SERVER', { server: o.server });
  const keys = generateKeyPair();
  const api = o.api ?? createApiClient({ server: o.server });
  const r = await api.pair({
    code: o.code,
    public_key: encodeKey(keys.publicKey),
    name: o.name ?? os.hostname().slice(0, 64),
    agent_version: AGENT_VERSION,
  });
  const state = acceptPairing(r, keys, o);
  const path = await writeState(o.stateDir, state);
  return { state, path };
}

/**
 * The device state from a pairing answer (POST /api/public/pair, or the farm's /api/public/enroll,
 * which answers the same), after the checks: the server key must match the fingerprint when one was
 * given, and the relay key must carry that server key's endorsement. Throws without writing anything.
 */
export function acceptPairing(
  r: PairResult,
  keys: ReturnType<typeof generateKeyPair>,
  o: { server: string; fingerprint?: string; insecureHttp?: boolean; now?: () => Date },
): AgentState {
  decodeKey(r.tunnel.psk, 'psk'); // fail now, not at `run`, if the server sent something unusable
  let serverKey: AgentState['server_key'];
  if (r.server_key) {
    const fp = serverKeyFingerprint(r.server_key.public_key);
    if (o.fingerprint !== undefined && fp !== o.fingerprint)
      throw agentError('PP_ERR_AGENT_SERVER_KEY_MISMATCH', { got: fp, expected: o.fingerprint, server: o.server });
    serverKey = {
      public_key: r.server_key.public_key,
      fingerprint: fp,
      from: o.fingerprint === undefined ? 'first-use' : 'fingerprint',
    };
    if (r.tunnel.server_public_key)
      assertRelayKeyEndorsed(
        serverKey,
        r.device_id,
        r.tunnel.server_public_key,
        r.tunnel.server_public_key_endorsement,
      );
  } else if (o.fingerprint !== undefined) {
    throw agentError('PP_ERR_AGENT_SERVER_KEY_MISMATCH', { got: 'none', expected: o.fingerprint, server: o.server });
  }
  return {
    version: 1,
    server: o.server.replace(/\/+$/, ''),
    device_id: r.device_id,
    auth_token: r.auth_token,
    private_key: encodeKey(keys.privateKey),
    public_key: encodeKey(keys.publicKey),
    psk: r.tunnel.psk,
    relay: { id: r.relay.id, host: r.relay.host, port: r.relay.port, public_key: r.tunnel.server_public_key },
    vpn_ip: r.tunnel.vpn_ip ?? null,
    mtu: r.tunnel.mtu,
    subnet: r.tunnel.subnet,
    paired_at: (o.now?.() ?? new Date()).toISOString(),
    ...(serverKey ? { server_key: serverKey } : {}),
    ...(o.insecureHttp ? { insecure_http: true } : {}),
  };
}
