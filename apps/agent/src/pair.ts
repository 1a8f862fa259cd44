// `pocketproxy-agent pair`: trade a pairing code for the device's identity and store it.
// The device makes its own X25519 key pair and sends only the public half.
import * as os from 'node:os';
import { decodeKey, encodeKey, generateKeyPair } from '@pocketproxy/protocol';
import { createApiClient, type ApiClient } from './api-client.js';
import { writeState, type AgentState } from './state.js';
import { AGENT_VERSION } from './version.js';

export interface PairOptions {
  server: string;
  code: string;
  stateDir: string;
  name?: string;
  api?: ApiClient;
  now?: () => Date;
}

export async function pairDevice(o: PairOptions): Promise<{ state: AgentState; path: string }> {
  const keys = generateKeyPair();
  const api = o.api ?? createApiClient({ server: o.server });
  const r = await api.pair({ code: o.code, public_key: encodeKey(keys.publicKey), name: o.name ?? os.hostname().slice(0, 64), agent_version: AGENT_VERSION });
  decodeKey(r.tunnel.psk, 'psk'); // fail now, not at `run`, if the server sent something unusable
  const state: AgentState = {
    version: 1,
    server: o.server.replace(/\/+$/, ''),
    device_id: r.device_id,
    auth_token: r.auth_token,
    private_key: encodeKey(keys.privateKey),
    public_key: encodeKey(keys.publicKey),
    psk: r.tunnel.psk,
    relay: { id: r.relay.id, host: r.relay.host, port: r.relay.port, public_key: r.tunnel.server_public_key },
    base_port: r.base_port,
    vpn_ip: r.tunnel.vpn_ip ?? null,
    mtu: r.tunnel.mtu,
    subnet: r.tunnel.subnet,
    paired_at: (o.now?.() ?? new Date()).toISOString(),
  };
  const path = await writeState(o.stateDir, state);
  return { state, path };
}
