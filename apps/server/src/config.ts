// One schema for the server's configuration, read from the environment (and an optional KEY=VALUE
// file named by POCKETPROXY_CONFIG) once at start; every problem is reported together, then the
// result is frozen and passed down. Nothing else reads process.env.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';

const BOOL_WORDS = ['1', '0', 'true', 'false', 'yes', 'no'] as const;
const isTrue = (v: string): boolean => v === '1' || v === 'true' || v === 'yes';
const bool = z.enum(BOOL_WORDS).transform(isTrue);
const port = z.coerce.number().int().min(0).max(65535);

const Schema = z.object({
  DATABASE_URL: z.string().url().optional(),
  POCKETPROXY_DATA_DIR: z.string().default('./data'),
  POCKETPROXY_ADMIN_EMAIL: z.string().email().optional(),
  POCKETPROXY_ADMIN_PASSWORD: z.string().min(10, 'must be at least 10 characters').optional(),
  POCKETPROXY_PUBLIC_HOST: z.string().min(1).default('127.0.0.1'),
  POCKETPROXY_API_HOST: z.string().default('0.0.0.0'),
  POCKETPROXY_API_PORT: port.default(8080),
  POCKETPROXY_PUBLIC_URL: z.string().url().optional(),
  POCKETPROXY_INTERNAL_TOKEN: z.string().min(24, 'must be at least 24 characters').optional(),
  POCKETPROXY_SECRET_KEY: z
    .string()
    .regex(/^[A-Za-z0-9+/]{43}=$/, 'must be 32 bytes in base64')
    .optional(),
  POCKETPROXY_JWT_TTL_S: z.coerce
    .number()
    .int()
    .min(60)
    .max(30 * 86400)
    .default(12 * 3600),
  POCKETPROXY_TUNNEL_PORT: port.default(1194),
  POCKETPROXY_PUSH_PORT: port.default(8081),
  POCKETPROXY_PUSH_URL: z.string().url().optional(),
  POCKETPROXY_API_URL: z
    .string()
    .url()
    .optional()
    .describe('where the tunnel reaches the API; default http://127.0.0.1:<api port>'),
  POCKETPROXY_RELAY_NAME: z
    .string()
    .regex(/^[a-z0-9-]{1,32}$/, 'must be 1-32 of a-z, 0-9, -')
    .default('local'),
  POCKETPROXY_TUNNEL_INTERFACE: z
    .string()
    .regex(/^[a-zA-Z0-9_.-]{1,15}$/, 'must be a valid interface name')
    .default('pp0'),
  POCKETPROXY_TPROXY_PORT: port.default(12345),
  POCKETPROXY_TPROXY_SOCKETS: z
    .enum(['native', 'lean', 'node'])
    .default('native')
    .describe(
      "transparent proxy's sockets: native (accept to splice in the addon), lean (Node's TCP handle, no stream machinery) or node (node:net)",
    ),
  POCKETPROXY_DEVICE_SUBNET: z
    .string()
    .regex(/^\d+\.\d+\.\d+\.\d+\/(1[6-9]|2[0-9]|30)$/, 'must be an IPv4 CIDR from /16 to /30')
    .default('192.168.255.0/24'),
  POCKETPROXY_TUNNEL_MTU: z.coerce.number().int().min(576).max(9000).default(1380),
  POCKETPROXY_OFFLOAD: bool
    .default(true)
    .describe('TUN TSO/GRO and UDP GSO/GRO in the tunnel (off: one packet per system call)'),
  POCKETPROXY_TPROXY_SPLICE: bool
    .default(true)
    .describe(
      'the transparent proxy hands each joined OpenVPN customer connection to the native relay (splice, kernel to kernel); off: bytes pumped in JS',
    ),
  POCKETPROXY_TPROXY_FASTOPEN: bool
    .default(true)
    .describe(
      "the transparent proxy opens each OpenVPN customer's device socket with TCP Fast Open once the customer's first bytes are in: the CONNECT and those bytes ride in its SYN, one cellular round trip less per connection; off: the socket opens at accept and the CONNECT follows its handshake (native sockets only)",
    ),
  POCKETPROXY_OPENVPN_CARRY: bool
    .default(true)
    .describe(
      "OpenVPN customers' TCP is carried to their device and ends there (DNAT to the connection's port, the SYN stamped with the original destination) when the device's agent reads stamps; off: every customer through the relay's transparent proxy",
    ),
  POCKETPROXY_OPENVPN_CARRY_MSS: bool
    .default(true)
    .describe(
      "a carried OpenVPN customer's download is cut at the customer's own MSS on the relay (the device cuts it for its tunnel, 1340): fewer, fuller packets through both openvpn processes; off: as the device cut it (for A/B runs)",
    ),
  POCKETPROXY_SOCKS5_FRONT: bool
    .default(true)
    .describe(
      "the relay answers SOCKS5 customers' greeting and credentials itself and opens the device socket from the customer's own address with greeting, credentials and request in its SYN (TCP Fast Open): three round trips over the cellular link less per SOCKS5 connection; off: SOCKS5 ports are DNAT'ed to the device like HTTP ports (their flows then survive a restart of the tunnel process)",
    ),
  POCKETPROXY_SOCKS5_FRONT_PORT: z.coerce.number().int().min(1).max(65535).default(12346),
  POCKETPROXY_SOCKS5_EARLY_REPLY: bool
    .default(true)
    .describe(
      "with the SOCKS5 front: a CONNECT is answered success on the relay, before the device has connected, for connections without max_connections or a monthly data limit, and the customer's first bytes follow the request to the device at once (the request's round trip over the cellular link overlaps the customer's first send). A destination the device refuses (its policy, a refused or unreachable target) then resets the customer instead of answering a SOCKS5 reply code; off: every CONNECT waits for the device's reply",
    ),
  POCKETPROXY_HTTP_EARLY_REPLY: bool
    .default(true)
    .describe(
      "with an HTTP port through the front (POCKETPROXY_HTTP_FRONT): a CONNECT whose Proxy-Authorization the relay can check is answered 200 on the relay, before the device has connected, for connections without max_connections or a monthly data limit, and the customer's first bytes (its TLS ClientHello) follow the CONNECT to the device at once. A destination the device refuses (its policy, a refused or unreachable target) then resets the customer instead of answering 403 or 502; a CONNECT without credentials still gets the device's 407; off: every CONNECT waits for the device's 200",
    ),
  POCKETPROXY_HTTP_FRONT: z
    .enum([...BOOL_WORDS, 'auto'])
    .transform((v): boolean | 'auto' => (v === 'auto' ? 'auto' : isTrue(v)))
    .default('auto')
    .describe(
      "HTTP ports through the same front: the customer's request rides in the device socket's SYN, one round trip over the cellular link less per HTTP connection (a GET's first byte in one, a CONNECT's in two). auto: the ports of devices whose link is far (handshake round trip at or above POCKETPROXY_HTTP_FRONT_RTT_MS, 10 ms); on: every HTTP port (needs POCKETPROXY_SOCKS5_FRONT); off: DNAT'ed. On a near link (a lab's ~0.2 ms) the front costs more (relay CPU, wake-ups) than the round trip it saves; auto without POCKETPROXY_SOCKS5_FRONT is off",
    ),
  POCKETPROXY_HTTP_FRONT_RTT_MS: z.coerce
    .number()
    .min(0.1)
    .max(10_000)
    .default(10)
    .describe(
      "with POCKETPROXY_HTTP_FRONT=auto: a device whose handshake round trip is at least this takes the front for its HTTP ports; it goes back to the DNAT below half of it. The measure includes the device's own handling of the handshake (2-3 ms for the agent on a lab host, 8-55 ms in its first seconds), so a near link reads well above its wire round trip",
    ),
  POCKETPROXY_HTTP_FRONT_HOLD_S: z.coerce
    .number()
    .int()
    .min(1)
    .max(86_400)
    .default(60)
    .describe(
      "with POCKETPROXY_HTTP_FRONT=auto: a device's HTTP ports change path at most once in this many seconds (flows already open keep theirs)",
    ),
  POCKETPROXY_NATIVE_SEAL: bool
    .default(true)
    .describe(
      'the tunnel seals packets to routed devices in C++ without a call into JS (off: every packet through JS)',
    ),
  POCKETPROXY_ACK_THINNING: bool
    .default(true)
    .describe(
      "the tunnel sends a device only the newest of a flow's pure ACKs that one read of pp0 finds queued together (off: every ACK)",
    ),
  POCKETPROXY_AEAD: z
    .enum(['direct', 'evp'])
    .default('direct')
    .describe(
      "how the tunnel's ChaCha20-Poly1305 goes through OpenSSL: direct (its ChaCha20 and Poly1305 routines, where the node binary exports them and they agree with the EVP cipher at load; else evp) or evp (the EVP cipher). The same bytes either way; read by the addon itself (packages/tun native/aead.h)",
    ),
  POCKETPROXY_NATIVE_OPEN: bool
    .default(true)
    .describe(
      'the tunnel opens frames from routed devices and writes their packets to the TUN in C++ without a call into JS (off: every frame through JS)',
    ),
  POCKETPROXY_DEVICE_PORTS: z
    .string()
    .optional()
    .describe('deprecated and ignored: device-level ports were removed (migration 014)'),
  POCKETPROXY_CONNECTION_PORTS: z
    .string()
    .regex(/^\d+-\d+$/)
    .default('40000-49999'),
  POCKETPROXY_STALE_AFTER_S: z.coerce.number().int().min(5).max(3600).default(60),
  POCKETPROXY_HEARTBEAT_INTERVAL_S: z.coerce.number().int().min(5).max(600).default(30),
  POCKETPROXY_PAIRING_RATE: z.coerce
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(10)
    .describe('pair attempts per minute per address'),
  POCKETPROXY_ROTATE_LINK_RATE: z.coerce
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(6)
    .describe('rotation-link calls per minute per connection'),
  POCKETPROXY_IP_HISTORY_KEEP: z.coerce.number().int().min(50).max(100_000).default(200),
  POCKETPROXY_EVENTS_KEEP_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
  POCKETPROXY_DASHBOARD_DIR: z.string().optional(),
  POCKETPROXY_TUNNEL: z.enum(['auto', 'on', 'off']).default('auto'),
  POCKETPROXY_OPENVPN: z.enum(['auto', 'on', 'off']).default('off'),
  POCKETPROXY_TRUST_PROXY: z
    .string()
    .default('false')
    .transform(trustedProxies)
    .describe('addresses/CIDRs of the proxies in front of the API whose X-Forwarded-For is believed'),
  POCKETPROXY_API_PROCESSES: z.coerce
    .number()
    .int()
    .min(1)
    .max(64)
    .default(1)
    .describe('API processes sharing the port (needs DATABASE_URL)'),
  POCKETPROXY_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  POCKETPROXY_OPENVPN_PORT: port.default(1195),
  POCKETPROXY_OPENVPN_SUBNET: z
    .string()
    .regex(/^\d+\.\d+\.\d+\.0\/(1[6-9]|2[0-4])$/, 'must be an IPv4 CIDR from /16 to /24 ending in .0')
    .default('10.9.0.0/24'),
  POCKETPROXY_OPENVPN_DNS: z
    .string()
    .regex(/^\d+\.\d+\.\d+\.\d+$/, 'must be an IPv4 address')
    .default('1.1.1.1')
    .describe("resolver that OpenVPN customers' DNS queries reach THROUGH their device"),
  POCKETPROXY_OPENVPN_DNS_PORT: port.default(5353).describe('relay port customer DNS is redirected to'),
});

export interface PortRange {
  readonly from: number;
  readonly to: number;
}

export interface Config {
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly admin: { readonly email: string; readonly password: string } | undefined;
  readonly publicHost: string;
  readonly publicUrl: string;
  readonly apiHost: string;
  readonly apiPort: number;
  readonly internalToken: string | undefined;
  readonly secretKey: string | undefined;
  readonly jwtTtlS: number;
  readonly tunnelPort: number;
  readonly pushPort: number;
  readonly pushUrl: string;
  readonly apiUrl: string;
  readonly relayName: string;
  readonly tunnelInterface: string;
  readonly tproxyPort: number;
  readonly tproxySockets: 'native' | 'lean' | 'node';
  readonly deviceSubnet: string;
  readonly tunnelMtu: number;
  /** TUN and UDP offloads in the tunnel process (packages/tun). */
  readonly offload: boolean;
  /** The tunnel's native seal path (apps/server/src/tunnel README "Native seal path"). */
  readonly nativeSeal: boolean;
  /** POCKETPROXY_ACK_THINNING: packages/tun native/ack_filter.h on the tunnel's reads of pp0. */
  readonly ackThinning: boolean;
  readonly tproxySplice: boolean;
  /** POCKETPROXY_TPROXY_FASTOPEN: the transparent proxy's device sockets with TCP Fast Open. */
  readonly tproxyFastOpen: boolean;
  /** POCKETPROXY_OPENVPN_CARRY: OpenVPN customers' TCP carried to devices that read SYN stamps (openvpn/carry.ts). */
  readonly openvpnCarry: boolean;
  /** POCKETPROXY_OPENVPN_CARRY_MSS: carried flows cut at the customer's MSS on the relay (@pocketproxy/tun carry_mss.h). */
  readonly openvpnCarryMss: boolean;
  /** The relay's SOCKS5 front (apps/server/src/tunnel/socks5-front.ts); undefined: off. */
  readonly socks5Front?: {
    readonly port: number;
    readonly http: boolean | 'auto';
    /** POCKETPROXY_HTTP_FRONT_RTT_MS and _HOLD_S, for 'auto'. */
    readonly httpRttMs: number;
    readonly httpHoldMs: number;
    /** POCKETPROXY_SOCKS5_EARLY_REPLY. */
    readonly earlyReply: boolean;
    /** POCKETPROXY_HTTP_EARLY_REPLY. */
    readonly httpEarlyReply: boolean;
  };
  /** The tunnel's native open path (apps/server/src/tunnel README "Native seal path"). */
  readonly nativeOpen: boolean;
  readonly connectionPorts: PortRange;
  /** Settings that are set but no longer do anything, with why; logged as warnings at start. */
  readonly deprecated: readonly string[];
  readonly staleAfterS: number;
  readonly heartbeatIntervalS: number;
  readonly pairingRatePerMin: number;
  readonly rotateLinkRatePerMin: number;
  readonly ipHistoryKeep: number;
  readonly eventsKeepDays: number;
  readonly dashboardDir: string | undefined;
  readonly tunnel: 'auto' | 'on' | 'off';
  readonly openvpn: 'auto' | 'on' | 'off';
  /**
   * Peers whose X-Forwarded-For is believed (addresses, CIDRs, or proxy-addr's names loopback, linklocal,
   * uniquelocal); empty: none, request.ip is the socket peer. With a list, request.ip is the first address
   * from the right of X-Forwarded-For that is not one of these: never the client-chosen leftmost entry.
   */
  readonly trustProxy: readonly string[];
  readonly apiProcesses: number;
  readonly logLevel: string;
  readonly openvpnPort: number;
  readonly openvpnSubnet: string;
  readonly openvpnDns: string;
  readonly openvpnDnsPort: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function readEnvFile(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 1) continue;
    out[line.slice(0, eq).trim()] = line
      .slice(eq + 1)
      .trim()
      .replace(/^(['"])(.*)\1$/, '$2');
  }
  return out;
}

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * POCKETPROXY_TRUST_PROXY: `false` (or 0/no/off/empty) trusts no proxy; otherwise a comma-separated list of
 * the proxies in front of the API. `true` is refused: it used to trust every hop, so a client could name
 * its own address (rate-limit keys, /api/public/ip) with a forged X-Forwarded-For.
 */
function trustedProxies(v: string, ctx: z.RefinementCtx): string[] {
  const s = v.trim().toLowerCase();
  if (['', 'false', '0', 'no', 'off'].includes(s)) return [];
  if (['true', '1', 'yes', 'on'].includes(s)) {
    ctx.addIssue({
      code: 'custom',
      message:
        'name the proxies instead of true (which believed any X-Forwarded-For hop, so clients could pick their ' +
        'address): e.g. loopback for nginx on this host, or 10.0.0.5,10.0.1.0/24',
    });
    return [];
  }
  const out: string[] = [];
  for (const item of s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    const [addr, bits, extra] = item.split('/');
    const family = isIP(addr ?? '');
    const ok =
      PROXY_NAMES.has(item) ||
      (family !== 0 &&
        extra === undefined &&
        (bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128))));
    if (ok) out.push(item);
    else
      ctx.addIssue({
        code: 'custom',
        message: `"${item}" is not an address, a CIDR or one of loopback, linklocal, uniquelocal`,
      });
  }
  return out;
}

function range(s: string, name: string, problems: string[]): PortRange {
  const [a, b] = s.split('-').map(Number) as [number, number];
  if (!(a >= 1 && b <= 65535 && a <= b)) problems.push(`${name}: must be FROM-TO within 1-65535`);
  return { from: a, to: b };
}

/** Environment wins over the file. Unknown POCKETPROXY_* names are reported (typos otherwise pass silently). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const file = env.POCKETPROXY_CONFIG ? readEnvFile(resolve(env.POCKETPROXY_CONFIG)) : {};
  const merged: Record<string, string | undefined> = { ...file };
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') merged[k] = v;
  const problems: string[] = [];
  const known = new Set([...Object.keys(Schema.shape), 'POCKETPROXY_CONFIG']);
  for (const k of Object.keys(merged))
    if (k.startsWith('POCKETPROXY_') && !known.has(k)) problems.push(`${k}: unknown setting`);
  const parsed = Schema.safeParse(merged);
  if (!parsed.success) for (const i of parsed.error.issues) problems.push(`${i.path.join('.')}: ${i.message}`);
  // Cross-field checks run on the raw values too, so one start reports every problem at once.
  if (!!merged.POCKETPROXY_ADMIN_EMAIL !== !!merged.POCKETPROXY_ADMIN_PASSWORD)
    problems.push('POCKETPROXY_ADMIN_EMAIL and POCKETPROXY_ADMIN_PASSWORD go together');
  const rangeOk = (v: string | undefined, dflt: string) => (/^\d+-\d+$/.test(v ?? dflt) ? (v ?? dflt) : null);
  const cp = rangeOk(merged.POCKETPROXY_CONNECTION_PORTS, '40000-49999');
  const connectionPorts = range(cp ?? '2-2', 'POCKETPROXY_CONNECTION_PORTS', cp ? problems : []);
  const deprecated = merged.POCKETPROXY_DEVICE_PORTS
    ? [
        'POCKETPROXY_DEVICE_PORTS is ignored: device-level ports were removed (every relay port belongs to one connection); remove the setting',
      ]
    : [];
  if (Number(merged.POCKETPROXY_API_PROCESSES ?? 1) > 1 && !merged.DATABASE_URL)
    problems.push(
      'POCKETPROXY_API_PROCESSES above 1 needs DATABASE_URL (the embedded database belongs to one process)',
    );
  if (parsed.success && parsed.data.POCKETPROXY_HTTP_FRONT === true && !parsed.data.POCKETPROXY_SOCKS5_FRONT)
    problems.push('POCKETPROXY_HTTP_FRONT needs POCKETPROXY_SOCKS5_FRONT (HTTP ports go through the same front)');
  if (!parsed.success || problems.length) throw new ConfigError(problems);
  const c = parsed.data;
  const apiPortShown = c.POCKETPROXY_API_PORT === 80 ? '' : `:${c.POCKETPROXY_API_PORT}`;
  return Object.freeze({
    databaseUrl: c.DATABASE_URL,
    dataDir: resolve(c.POCKETPROXY_DATA_DIR),
    admin: c.POCKETPROXY_ADMIN_EMAIL
      ? { email: c.POCKETPROXY_ADMIN_EMAIL.toLowerCase(), password: c.POCKETPROXY_ADMIN_PASSWORD! }
      : undefined,
    publicHost: c.POCKETPROXY_PUBLIC_HOST,
    publicUrl: (c.POCKETPROXY_PUBLIC_URL ?? `http://${c.POCKETPROXY_PUBLIC_HOST}${apiPortShown}`).replace(/\/$/, ''),
    apiHost: c.POCKETPROXY_API_HOST,
    apiPort: c.POCKETPROXY_API_PORT,
    internalToken: c.POCKETPROXY_INTERNAL_TOKEN,
    secretKey: c.POCKETPROXY_SECRET_KEY,
    jwtTtlS: c.POCKETPROXY_JWT_TTL_S,
    tunnelPort: c.POCKETPROXY_TUNNEL_PORT,
    pushPort: c.POCKETPROXY_PUSH_PORT,
    pushUrl: c.POCKETPROXY_PUSH_URL ?? `http://127.0.0.1:${c.POCKETPROXY_PUSH_PORT}`,
    apiUrl: (c.POCKETPROXY_API_URL ?? `http://127.0.0.1:${c.POCKETPROXY_API_PORT}`).replace(/\/$/, ''),
    relayName: c.POCKETPROXY_RELAY_NAME,
    tunnelInterface: c.POCKETPROXY_TUNNEL_INTERFACE,
    tproxyPort: c.POCKETPROXY_TPROXY_PORT,
    tproxySockets: c.POCKETPROXY_TPROXY_SOCKETS,
    deviceSubnet: c.POCKETPROXY_DEVICE_SUBNET,
    tunnelMtu: c.POCKETPROXY_TUNNEL_MTU,
    offload: c.POCKETPROXY_OFFLOAD,
    nativeSeal: c.POCKETPROXY_NATIVE_SEAL,
    ackThinning: c.POCKETPROXY_ACK_THINNING,
    tproxySplice: c.POCKETPROXY_TPROXY_SPLICE,
    tproxyFastOpen: c.POCKETPROXY_TPROXY_FASTOPEN,
    openvpnCarry: c.POCKETPROXY_OPENVPN_CARRY,
    openvpnCarryMss: c.POCKETPROXY_OPENVPN_CARRY_MSS,
    ...(c.POCKETPROXY_SOCKS5_FRONT
      ? {
          socks5Front: {
            port: c.POCKETPROXY_SOCKS5_FRONT_PORT,
            http: c.POCKETPROXY_HTTP_FRONT,
            httpRttMs: c.POCKETPROXY_HTTP_FRONT_RTT_MS,
            httpHoldMs: c.POCKETPROXY_HTTP_FRONT_HOLD_S * 1000,
            earlyReply: c.POCKETPROXY_SOCKS5_EARLY_REPLY,
            httpEarlyReply: c.POCKETPROXY_HTTP_EARLY_REPLY,
          },
        }
      : {}),
    nativeOpen: c.POCKETPROXY_NATIVE_OPEN,
    connectionPorts,
    deprecated,
    staleAfterS: c.POCKETPROXY_STALE_AFTER_S,
    heartbeatIntervalS: c.POCKETPROXY_HEARTBEAT_INTERVAL_S,
    pairingRatePerMin: c.POCKETPROXY_PAIRING_RATE,
    rotateLinkRatePerMin: c.POCKETPROXY_ROTATE_LINK_RATE,
    ipHistoryKeep: c.POCKETPROXY_IP_HISTORY_KEEP,
    eventsKeepDays: c.POCKETPROXY_EVENTS_KEEP_DAYS,
    dashboardDir: c.POCKETPROXY_DASHBOARD_DIR,
    tunnel: c.POCKETPROXY_TUNNEL,
    openvpn: c.POCKETPROXY_OPENVPN,
    trustProxy: c.POCKETPROXY_TRUST_PROXY,
    apiProcesses: c.POCKETPROXY_API_PROCESSES,
    logLevel: c.POCKETPROXY_LOG_LEVEL,
    openvpnPort: c.POCKETPROXY_OPENVPN_PORT,
    openvpnSubnet: c.POCKETPROXY_OPENVPN_SUBNET,
    openvpnDns: c.POCKETPROXY_OPENVPN_DNS,
    openvpnDnsPort: c.POCKETPROXY_OPENVPN_DNS_PORT,
  });
}
