// The relay API as the device sees it (apps/server/src/api/routes/device.ts): pairing and the
// address echo without credentials, everything else with the device's bearer token.
import * as http from 'node:http';
import * as https from 'node:https';
import * as dns from 'node:dns';
import type { Duplex } from 'node:stream';
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import { addonAvailable, openTcpSocket } from '@pocketproxy/tun';
import { agentError } from './errors.js';

export interface PairResult {
  device_id: string;
  auth_token: string;
  relay: { id: string; host: string; port: number };
  tunnel: {
    server_public_key: string | null;
    server_public_key_endorsement?: string | null;
    psk: string;
    private_key?: string;
    mtu: number;
    subnet: string;
    vpn_ip?: string | null;
  };
  /** The server key that endorses relay keys (absent from an API older than the pairing fingerprint). */
  server_key?: { public_key: string; fingerprint: string };
}
/** POST /api/public/enroll (a farm host enrolling one of its phones or modems): what pairing answers, plus the host. */
export interface EnrollRequest {
  token: string;
  host: { key: string; name: string };
  device: { hardware_id: string; kind: 'phone' | 'modem'; model?: string; name?: string };
  public_key: string;
  agent_version?: string;
}
export interface EnrollResult extends PairResult {
  farm_host_id: string;
}
export interface TunnelInfo {
  /** `max_lanes`: the lanes the relay holds per device (absent from servers before lanes: 1). */
  relay: {
    host: string;
    port: number;
    public_key: string | null;
    public_key_endorsement?: string | null;
    max_lanes?: number;
  };
  vpn_ip: string | null;
  mtu: number;
  subnet: string;
}
export interface PushedCommand {
  id: string;
  type: string;
  payload?: unknown;
}
export interface HeartbeatBody {
  metrics: {
    battery?: number | null;
    charging?: boolean | null;
    signal?: number | null;
    carrier?: string | null;
    network_type?: string | null;
    /** Battery temperature, °C. */
    temperature?: number | null;
  };
  public_ip?: string | null;
  agent_version?: string;
  uptime_s?: number;
  usage: Array<{ connection_id: string; bytes_in: number; bytes_out: number }>;
  proxy?: Record<string, number>;
  tunnel_transport?: 'udp' | 'tcp';
  /** The command types this agent can run (ops/rotation.ts commandCapabilities). */
  capabilities?: string[];
}
export interface HeartbeatReply {
  commands: PushedCommand[];
  heartbeat_interval_s: number;
  credentials_version: string;
}
export type ConnectionState = 'active' | 'disabled' | 'expired' | 'bandwidth';

/** One connection this device serves (GET /api/devices/:id/credentials); checked by parseCredentialItem. */
export interface CredentialItem {
  connection_id: string;
  protocol: 'http' | 'socks5';
  /** The connection's public port on the relay, which is also its listener port on vpn_ip. */
  port: number;
  username: string;
  verifier: string;
  state: ConnectionState;
  /** Customer addresses/CIDRs allowed; empty = anyone with the credentials. */
  allow_from: string[];
  expires_at: string | null;
  max_connections: number | null;
  rate_limit_down_kbps: number | null;
  rate_limit_up_kbps: number | null;
  bandwidth_limit_bytes: number | null;
  /** This month's usage as the API has it from our reports (bytes relayed both ways). */
  bytes_used_month: number;
}
export interface CredentialsReply {
  version: string;
  items: CredentialItem[];
}

const STATES: readonly ConnectionState[] = ['active', 'disabled', 'expired', 'bandwidth'];
const posInt = (v: unknown, max: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= max;
const optLimit = (v: unknown, max: number): number | null | undefined =>
  v === null || v === undefined ? null : posInt(v, max) ? v : undefined;

/**
 * One item of the credentials answer, checked: what the listeners get is well-formed or left out
 * (with the reason). Fields an older API does not send take their permissive defaults only where
 * that cannot open anything: a missing state is refused, not taken as active.
 */
export function parseCredentialItem(v: unknown): CredentialItem | string {
  if (typeof v !== 'object' || v === null) return 'not an object';
  const o = v as Record<string, unknown>;
  if (typeof o.connection_id !== 'string' || o.connection_id === '' || o.connection_id.length > 64)
    return 'bad connection_id';
  if (o.protocol !== 'http' && o.protocol !== 'socks5') return `bad protocol ${String(o.protocol)}`;
  if (!posInt(o.port, 65535)) return `bad port ${String(o.port)}`;
  if (typeof o.username !== 'string' || o.username === '' || o.username.length > 255) return 'bad username';
  if (typeof o.verifier !== 'string' || !o.verifier.startsWith('v1$')) return 'bad verifier';
  if (!STATES.includes(o.state as ConnectionState)) return `bad state ${String(o.state)}`;
  const allow = o.allow_from ?? [];
  if (!Array.isArray(allow) || allow.length > 1000 || !allow.every((a) => typeof a === 'string' && a.length <= 64))
    return 'bad allow_from';
  const expires = o.expires_at ?? null;
  if (expires !== null && (typeof expires !== 'string' || Number.isNaN(Date.parse(expires)))) return 'bad expires_at';
  const maxConn = optLimit(o.max_connections, 1_000_000);
  const down = optLimit(o.rate_limit_down_kbps, 100_000_000);
  const up = optLimit(o.rate_limit_up_kbps, 100_000_000);
  const limit =
    o.bandwidth_limit_bytes === null || o.bandwidth_limit_bytes === undefined
      ? null
      : typeof o.bandwidth_limit_bytes === 'number' &&
          Number.isSafeInteger(o.bandwidth_limit_bytes) &&
          o.bandwidth_limit_bytes >= 0
        ? o.bandwidth_limit_bytes
        : undefined;
  if (maxConn === undefined || down === undefined || up === undefined || limit === undefined) return 'bad limit';
  const used = o.bytes_used_month ?? 0;
  if (typeof used !== 'number' || !Number.isSafeInteger(used) || used < 0) return 'bad bytes_used_month';
  return {
    connection_id: o.connection_id,
    protocol: o.protocol,
    port: o.port,
    username: o.username,
    verifier: o.verifier,
    state: o.state as ConnectionState,
    allow_from: allow as string[],
    expires_at: expires as string | null,
    max_connections: maxConn,
    rate_limit_down_kbps: down,
    rate_limit_up_kbps: up,
    bandwidth_limit_bytes: limit,
    bytes_used_month: used,
  };
}
export type CommandResultStatus = 'acked' | 'succeeded' | 'failed';

export interface ApiClient {
  pair(body: { code: string; public_key?: string; name?: string; agent_version?: string }): Promise<PairResult>;
  /** The farm's enrollment (no device credentials yet: the token is the credential). */
  enroll?(body: EnrollRequest): Promise<EnrollResult>;
  tunnel(): Promise<TunnelInfo>;
  heartbeat(body: HeartbeatBody): Promise<HeartbeatReply>;
  commandResult(commandId: string, status: CommandResultStatus, result?: Record<string, unknown>): Promise<void>;
  credentials(): Promise<CredentialsReply>;
  /** Tells the API which credentials version is now applied (the connections show as live). */
  credentialsApplied?(version: string): Promise<void>;
}

export interface ApiClientOptions {
  server: string;
  deviceId?: string;
  token?: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export function createApiClient(o: ApiClientOptions): ApiClient {
  const base = o.server.replace(/\/+$/, '');
  const f = o.fetch ?? fetch;
  const timeoutMs = o.timeoutMs ?? 15_000;
  const dev = () => `/api/devices/${encodeURIComponent(o.deviceId ?? '')}`;

  async function call<T>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (auth && o.token) headers.authorization = `Bearer ${o.token}`;
    let res: Response;
    const send = () =>
      f(base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    try {
      try {
        res = await send();
      } catch (e) {
        // A kept-alive connection that died under us (typically: the device's address just rotated
        // and the carrier's NAT forgot the old flow) fails at once; a fresh connection works. The
        // same error on a failed heartbeat already means "send it again" (its usage is restored).
        if (!wasReset(e)) throw e;
        res = await send();
      }
    } catch (e) {
      throw agentError('PP_ERR_AGENT_API', { method, path, reason: (e as Error).message }, { cause: e });
    }
    const text = await res.text();
    if (!res.ok) {
      let reason = `HTTP ${res.status}`;
      try {
        const p = JSON.parse(text) as { detail?: string; title?: string; code?: string };
        reason += `: ${p.code ?? ''} ${p.detail ?? p.title ?? ''}`.trimEnd();
      } catch {
        reason += `: ${text.slice(0, 200)}`;
      }
      throw agentError('PP_ERR_AGENT_API', { method, path, reason, status: res.status });
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  return {
    pair: (body) => call<PairResult>('POST', '/api/public/pair', body, false),
    enroll: (body) => call<EnrollResult>('POST', '/api/public/enroll', body, false),
    tunnel: () => call<TunnelInfo>('GET', `${dev()}/tunnel`),
    heartbeat: (body) => call<HeartbeatReply>('POST', `${dev()}/heartbeat`, body),
    commandResult: async (id, status, result) => {
      await call(
        'POST',
        `${dev()}/commands/${encodeURIComponent(id)}/result`,
        result === undefined ? { status } : { status, result },
      );
    },
    credentials: () => call<CredentialsReply>('GET', `${dev()}/credentials`),
    credentialsApplied: async (version) => {
      await call('POST', `${dev()}/credentials/applied`, { version });
    },
  };
}

/** A connection reset or closed by the other side before an answer (fetch wraps the cause). */
export function wasReset(e: unknown): boolean {
  const c = (e as { cause?: { code?: string } })?.cause?.code ?? (e as { code?: string })?.code;
  return c === 'ECONNRESET' || c === 'EPIPE' || c === 'UND_ERR_SOCKET' || c === 'UND_ERR_CLOSED';
}

/**
 * GET an IP echo URL: accepts `{"ip": "..."}` JSON (our /api/public/ip) or a bare address.
 * `localAddress` (the egress interface's address) and `device` (its name: SO_BINDTODEVICE, as the
 * egress sockets) make the request leave by the egress interface, so the answer is the address
 * customers get, even when the default route is Wi-Fi: the address alone would still be routed
 * by the main table. Without the @pocketproxy/tun addon the device is ignored (address only, as
 * the egress falls back); a device that cannot be bound fails the request.
 */
export function fetchPublicIp(
  url: string,
  opts: { timeoutMs?: number; localAddress?: string; device?: string } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const fail = (reason: string) => reject(agentError('PP_ERR_AGENT_API', { method: 'GET', path: url, reason }));
    const device = opts.device && addonAvailable() ? opts.device : undefined;
    // Pinned: our own socket (no agent), bound and pinned before connect(); TLS on top for https.
    // The name is resolved first: a socket adopted from an fd starts reading at once, and left
    // unconnected while connect() looked a name up it fails with ENOTCONN.
    const createConnection: http.RequestOptions['createConnection'] = device
      ? (_o, oncreate) => {
          // Node's ClientRequest calls oncreate(err) without a socket on failure.
          const done = oncreate as (err: Error | null, socket?: Duplex) => void;
          const host = u.hostname.replace(/^\[|\]$/g, '');
          const family = isIP(host) === 6 ? 6 : 4;
          const local = opts.localAddress && isIP(opts.localAddress) === family ? opts.localAddress : undefined;
          const port = Number(u.port) || (u.protocol === 'https:' ? 443 : 80);
          dns.lookup(host, { family }, (err, address) => {
            if (err) return done(err);
            try {
              const sock = openTcpSocket(family, local, { device }).connect({ host: address, port });
              done(
                null,
                u.protocol === 'https:'
                  ? tls.connect({ socket: sock, servername: isIP(host) ? undefined : host })
                  : sock,
              );
            } catch (e) {
              done(e as Error);
            }
          });
          return undefined;
        }
      : undefined;
    const req = mod.get(
      u,
      {
        localAddress: opts.localAddress,
        createConnection,
        timeout: opts.timeoutMs ?? 5_000,
        headers: { accept: 'application/json, text/plain' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (text.length < 4096) text += c;
        });
        res.on('error', (e) => fail(e.message));
        res.on('end', () => {
          if ((res.statusCode ?? 0) >= 300) return fail(`HTTP ${res.statusCode}`);
          let ip = text.trim();
          try {
            if (ip.startsWith('{')) ip = String((JSON.parse(ip) as { ip?: unknown }).ip ?? '');
          } catch {
            return fail('answer is not JSON');
          }
          if (isIP(ip) === 0) return fail('answer is not an IP address');
          resolve(ip);
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => fail(e.message));
  });
}
