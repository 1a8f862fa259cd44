// The tunnel's view of the API: the internal routes it calls (apps/server/src/api/routes/internal.ts),
// behind an interface so unit tests can run against a fake HTTP server or an in-memory fake.
// Every response is checked here: the packet path only ever sees well-formed values.
import { decodeKey } from '@pocketproxy/protocol';
import type { ConnectionRoute } from './device-dial.js';
import { ipv4ToNumber } from './ipv4.js';

export interface ForwardedConnection {
  readonly connection_id: string;
  readonly protocol: 'http' | 'socks5';
  readonly port: number;
  readonly allow_from: readonly string[];
  readonly enabled: boolean;
  /** SOCKS5: the credentials the relay's front checks (socks5-front.ts). */
  readonly username?: string;
  readonly verifier?: string;
  /** SOCKS5: the front may answer its CONNECTs before the device (no connection cap, no data limit). */
  readonly early_reply?: boolean;
}

export interface DeviceForwarding {
  readonly vpn_ip: string;
  readonly connections: readonly ForwardedConnection[];
}

export interface ConnectedAnswer extends DeviceForwarding {
  /** Proxy credentials (verifiers, never plaintext) for the device; forwarded as a control message. */
  readonly credentials: readonly unknown[];
}

export interface TunnelPeer {
  readonly deviceId: string;
  readonly publicKey: Buffer;
  readonly psk: Buffer;
  readonly vpnIp: string;
}

export interface RegisterInput {
  name: string;
  host: string;
  tunnel_port: number;
  push_url: string;
  public_key: string;
  /** The lanes per device this relay holds (@pocketproxy/protocol MAX_LANES). */
  max_lanes: number;
}

export interface InternalApi {
  register(input: RegisterInput): Promise<{ relay_id: string }>;
  /** The relay's devices; with `deviceId`, only that one (empty when it is not this relay's, or gone). */
  peers(relayId: string, deviceId?: string): Promise<TunnelPeer[]>;
  connected(input: { device_id: string; vpn_ip: string; relay_id: string; endpoint: string }): Promise<ConnectedAnswer>;
  disconnected(input: { device_id: string; reason: string }): Promise<void>;
  forwarding(deviceIds: string[]): Promise<Map<string, DeviceForwarding>>;
  usage(samples: { port: number; bytes_in: number; bytes_out: number }[]): Promise<void>;
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface HttpApiOptions {
  baseUrl: string;
  token: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** The internal API's HTTP calls (Bearer internal token, bounded): the JSON answer, or an ApiError. */
function httpCaller(o: HttpApiOptions) {
  const base = o.baseUrl.replace(/\/$/, '');
  const doFetch = o.fetch ?? fetch;
  const timeoutMs = o.timeoutMs ?? 10_000;
  return async function call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    let res: Response;
    try {
      res = await doFetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${o.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      throw new ApiError(`${method} ${path}: ${(e as Error).message}`, undefined);
    }
    const text = await res.text();
    if (!res.ok) throw new ApiError(`${method} ${path}: HTTP ${res.status} ${text.slice(0, 300)}`, res.status);
    try {
      return text === '' ? {} : JSON.parse(text);
    } catch {
      throw new ApiError(`${method} ${path}: answer is not JSON`, res.status);
    }
  };
}

export function createHttpApi(o: HttpApiOptions): InternalApi {
  const call = httpCaller(o);

  return {
    async register(input) {
      const r = (await call('POST', '/api/internal/relays/register', input)) as { relay_id?: unknown };
      if (typeof r.relay_id !== 'string' || r.relay_id === '')
        throw new ApiError('register: no relay_id in the answer', 200);
      return { relay_id: r.relay_id };
    },
    async peers(relayId, deviceId) {
      const one = deviceId === undefined ? '' : `&device_id=${encodeURIComponent(deviceId)}`;
      const r = (await call('GET', `/api/internal/tunnel/peers?relay_id=${encodeURIComponent(relayId)}${one}`)) as {
        items?: unknown;
      };
      if (!Array.isArray(r.items)) throw new ApiError('peers: no items array', 200);
      return r.items.flatMap((i) => {
        const p = parsePeer(i);
        return p ? [p] : [];
      });
    },
    async connected(input) {
      const r = (await call('POST', '/api/internal/vpn/connected', input)) as Record<string, unknown>;
      const f = parseForwarding(r);
      if (!f) throw new ApiError('vpn/connected: malformed answer', 200);
      return { ...f, credentials: Array.isArray(r.credentials) ? r.credentials : [] };
    },
    async disconnected(input) {
      await call('POST', '/api/internal/vpn/disconnected', input);
    },
    async forwarding(deviceIds) {
      const r = (await call('POST', '/api/internal/tunnel/forwarding', { device_ids: deviceIds })) as {
        devices?: unknown;
      };
      const out = new Map<string, DeviceForwarding>();
      if (typeof r.devices !== 'object' || r.devices === null)
        throw new ApiError('tunnel/forwarding: no devices object', 200);
      for (const [id, v] of Object.entries(r.devices as Record<string, unknown>)) {
        const f = parseForwarding(v);
        if (f) out.set(id, f);
      }
      return out;
    },
    async usage(samples) {
      await call('POST', '/api/internal/usage', { samples });
    },
  };
}

function parsePeer(i: unknown): TunnelPeer | undefined {
  if (typeof i !== 'object' || i === null) return undefined;
  const o = i as Record<string, unknown>;
  if (
    typeof o.device_id !== 'string' ||
    typeof o.vpn_ip !== 'string' ||
    typeof o.public_key !== 'string' ||
    typeof o.psk !== 'string'
  )
    return undefined;
  try {
    return {
      deviceId: o.device_id,
      vpnIp: o.vpn_ip,
      publicKey: decodeKey(o.public_key, 'device public key'),
      psk: decodeKey(o.psk, 'device psk'),
    };
  } catch {
    return undefined;
  }
}

export function parseForwarding(v: unknown): DeviceForwarding | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.vpn_ip !== 'string' || !Array.isArray(o.connections)) return undefined;
  const connections: ForwardedConnection[] = [];
  for (const c of o.connections as Record<string, unknown>[]) {
    if (typeof c !== 'object' || c === null) continue;
    if (
      typeof c.connection_id !== 'string' ||
      typeof c.port !== 'number' ||
      (c.protocol !== 'http' && c.protocol !== 'socks5')
    )
      continue;
    const allow = Array.isArray(c.allow_from) ? c.allow_from.filter((a): a is string => typeof a === 'string') : [];
    connections.push({
      connection_id: c.connection_id,
      protocol: c.protocol,
      port: c.port,
      allow_from: allow,
      enabled: c.enabled === true,
      ...(typeof c.username === 'string' && typeof c.verifier === 'string'
        ? { username: c.username, verifier: c.verifier, early_reply: c.early_reply === true }
        : {}),
    });
  }
  return { vpn_ip: o.vpn_ip, connections };
}

/** An OpenVPN customer's login, as the server's management interface reports it (openvpn/management.ts). */
export interface OpenvpnLogin {
  readonly username: string;
  readonly password: string;
  /** The customer's real address (the connection's allow-list is checked against it). */
  readonly untrustedIp?: string;
}

/** Where an admitted OpenVPN customer's traffic goes: its connection's own proxy on the device. */
export type OpenvpnRoute = ConnectionRoute;

/** The API's OpenVPN routes (api/routes/internal.ts): the relay's OpenVPN server asks them at each login. */
export interface OpenvpnApi {
  /** True when the login is admitted (password, state, allow-list); false when the API refuses it (403). */
  auth(login: OpenvpnLogin): Promise<boolean>;
  /** The route of an admitted customer that got `vpnIp`; undefined when the API refuses (403). */
  connect(username: string, vpnIp: string): Promise<OpenvpnRoute | undefined>;
}

export function createOpenvpnApi(o: HttpApiOptions): OpenvpnApi {
  const call = httpCaller(o);
  const refused = (e: unknown) => e instanceof ApiError && e.status === 403;
  return {
    async auth(login) {
      try {
        const body = {
          username: login.username,
          password: login.password,
          ...(login.untrustedIp ? { untrusted_ip: login.untrustedIp.slice(0, 64) } : {}),
        };
        const r = (await call('POST', '/api/internal/openvpn/auth', body)) as { ok?: unknown };
        return r.ok === true;
      } catch (e) {
        if (refused(e)) return false;
        throw e;
      }
    },
    async connect(username, vpnIp) {
      let r: Record<string, unknown>;
      try {
        r = (await call('POST', '/api/internal/openvpn/connect', { username, vpn_ip: vpnIp })) as Record<
          string,
          unknown
        >;
      } catch (e) {
        if (refused(e)) return undefined;
        throw e;
      }
      const port = r.proxy_port;
      if (
        typeof r.device_vpn_ip !== 'string' ||
        ipv4ToNumber(r.device_vpn_ip) === undefined ||
        typeof port !== 'number' ||
        !Number.isInteger(port) ||
        port < 1 ||
        port > 65535 ||
        (r.protocol !== 'http' && r.protocol !== 'socks5') ||
        typeof r.username !== 'string' ||
        r.username === '' ||
        typeof r.password !== 'string'
      )
        throw new ApiError('openvpn/connect: malformed answer', 200);
      return {
        deviceVpnIp: r.device_vpn_ip,
        proxyPort: port,
        protocol: r.protocol,
        username: r.username,
        password: r.password,
      };
    },
  };
}
