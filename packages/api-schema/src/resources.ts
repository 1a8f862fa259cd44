import { z } from 'zod';
import {
  AgentText,
  Cidr,
  CommandId,
  ConnectionId,
  CustomerId,
  Description,
  DeviceId,
  FarmHostId,
  Hostname,
  JsonObject,
  Name,
  Port,
  RelayId,
  Timestamp,
} from './common.js';

// ---- auth ----
export const LoginRequest = z.strictObject({
  email: z.string().trim().toLowerCase().email('must be an email address').max(254),
  password: z.string().min(1, 'must not be empty').max(1024),
});
export const LoginResponse = z.object({ token: z.string(), expires_at: Timestamp });

// ---- relays ----
export const Relay = z.object({
  id: RelayId,
  name: z.string(),
  host: z.string().describe('address devices and customers dial'),
  tunnel_port: Port,
  push_url: z.string().describe('tunnel push API, e.g. http://127.0.0.1:8081'),
  public_key: z.string().nullable().describe('tunnel static X25519 public key, base64'),
  enabled: z.boolean(),
  devices_online: z.number().int(),
  created_at: Timestamp,
});
export const RelayCreate = z.strictObject({
  name: Name,
  host: Hostname,
  tunnel_port: Port.default(1194),
  push_url: z.string().url().max(300).default('http://127.0.0.1:8081'),
  public_key: z.string().max(100).optional(),
  enabled: z.boolean().default(true),
});
// Not RelayCreate.partial(): zod keeps a field's default under partial(), so a PATCH that left
// tunnel_port or push_url out would have reset them to 1194 and the local push URL.
export const RelayUpdate = z.strictObject({
  name: Name.optional(),
  host: Hostname.optional(),
  tunnel_port: Port.optional(),
  push_url: z.string().url().max(300).optional(),
  public_key: z.string().max(100).optional(),
  enabled: z.boolean().optional(),
});

// ---- customers ----
export const Customer = z.object({
  id: CustomerId,
  name: z.string(),
  email: z.string().nullable(),
  notes: z.string(),
  connections: z.number().int(),
  created_at: Timestamp,
  updated_at: Timestamp,
});
export const CustomerCreate = z.strictObject({
  name: Name,
  email: z.string().trim().email('must be an email address').max(254).nullable().optional(),
  notes: Description.default(''),
});
export const CustomerUpdate = CustomerCreate;

// ---- devices ----
/** device: a machine running `pocketproxy-agent run`; phone / modem: one device of a farm host. */
export const DeviceKind = z
  .enum(['device', 'phone', 'modem'])
  .describe(
    'device: paired alone (agent run); phone: an Android phone of a farm host (adb); modem: a USB modem of a farm host',
  );
/** What a device can be told to do (commands below); a device reports which of them it can run. */
export const CommandType = z.enum(['rotate_ip', 'wifi_toggle', 'airplane_mode', 'reboot', 'config_update']);
export const DeviceStatus = z.enum(['online', 'offline']);
export const NetworkType = z.string().max(32);
export const DeviceMetrics = z.object({
  battery: z.number().int().min(0).max(100).nullable(),
  charging: z.boolean().nullable(),
  signal: z.number().int().min(-200).max(100).nullable().describe('dBm (negative) or 0-4 bars'),
  carrier: z.string().max(64).nullable(),
  network_type: NetworkType.nullable(),
  temperature: z
    .number()
    .min(-50)
    .max(150)
    .nullable()
    .optional()
    .describe('battery temperature, °C (null: not reported; absent from agents older than issue 14)'),
});
const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** The device's proxy counters since its agent started (slow clients, refusals; docs/security.md). */
export const ProxyStats = z.strictObject({
  listeners: Count,
  open: Count,
  admitted: Count,
  handshake_timeouts: Count,
  idle_closed: Count,
  auth_failures: Count,
  denied: Count,
  unauth_refused_per_address: Count,
  unauth_refused_total: Count,
  unauth_active: Count,
  listen_failures: Count,
});
export const Device = z.object({
  id: DeviceId,
  name: z.string(),
  description: z.string(),
  status: DeviceStatus,
  tunnel_connected: z.boolean().describe('the device has a tunnel session with its relay (as the relay last reported)'),
  relay_id: RelayId.nullable(),
  vpn_ip: z.string().nullable(),
  current_ip: z.string().nullable(),
  last_seen_at: Timestamp.nullable(),
  paired_at: Timestamp,
  agent_version: z.string().nullable(),
  rotation_interval_s: z.number().int().nullable(),
  next_rotation_at: Timestamp.nullable(),
  metrics: DeviceMetrics,
  /** From the last heartbeat that carried them; null before one did. */
  proxy_stats: ProxyStats.nullable(),
  tunnel_transport: z
    .enum(['udp', 'tcp'])
    .nullable()
    .describe('what the device tunnel rides now (from the relay when it connects, then from its heartbeats)'),
  capabilities: z
    .array(CommandType)
    .nullable()
    .describe(
      "the command types the device's agent can run (its driver's, from its heartbeat); a command outside them is refused (409 PP_ERR_API_COMMAND_UNSUPPORTED); null: not reported yet (older agents), every command is accepted",
    ),
  farm_host_id: FarmHostId.nullable().describe('the farm host that enrolled the device (issue 14); null: paired alone'),
  farm_host_name: z.string().nullable().describe("that farm host's name"),
  kind: DeviceKind,
  hardware_id: z
    .string()
    .nullable()
    .describe("a farm device's hardware: the phone's adb serial or the modem's IMEI; null: not a farm device"),
  model: z.string().nullable().describe('the model the farm host reported (e.g. "Pixel 6", "EM7455")'),
  created_at: Timestamp,
  updated_at: Timestamp,
});
export const DeviceCreate = z.strictObject({
  name: Name,
  description: Description.default(''),
  relay_id: RelayId.optional(),
});
/** POST /api/devices: the device and, once, what its agent needs to connect (as pairing answers it). */
export const DeviceCreated = z.object({
  device: Device,
  auth_token: z.string().describe('the device token, shown once'),
  relay: z.object({ id: RelayId, host: z.string(), port: Port, public_key: z.string().nullable() }),
  tunnel: z.object({
    server_public_key: z
      .string()
      .nullable()
      .describe("the relay's X25519 key, base64 (null until its tunnel registers)"),
    psk: z.string(),
    private_key: z.string().optional().describe('the X25519 private key generated for the device, base64'),
    vpn_ip: z.string().nullable(),
    mtu: z.number().int(),
    subnet: z.string(),
  }),
});
export const DeviceUpdate = z.strictObject({
  name: Name.optional(),
  description: Description.optional(),
  relay_id: RelayId.optional(),
  rotation_interval_s: z
    .number()
    .int()
    .min(60, 'must be at least 60 seconds')
    .max(7 * 86400, 'must be at most 7 days')
    .nullable()
    .optional()
    .describe('auto-rotation interval; null turns it off'),
});

export const IpHistoryEntry = z.object({
  id: z.number().int(),
  old_ip: z.string().nullable(),
  new_ip: z.string(),
  reason: z.string(),
  changed_at: Timestamp,
});

// ---- commands ----
export const CommandStatus = z.enum(['pending', 'sent', 'acked', 'succeeded', 'failed', 'expired']);
export const Command = z.object({
  id: CommandId,
  device_id: DeviceId,
  type: CommandType,
  payload: z.record(z.string(), z.unknown()),
  status: CommandStatus,
  result: z.record(z.string(), z.unknown()).nullable(),
  source: z.string(),
  created_at: Timestamp,
  sent_at: Timestamp.nullable(),
  acked_at: Timestamp.nullable(),
  finished_at: Timestamp.nullable(),
  expires_at: Timestamp,
});
export const CommandCreate = z.strictObject({
  type: CommandType,
  payload: JsonObject.default({}),
  ttl_s: z.number().int().min(10).max(86400).default(600),
});
export const CommandResult = z.strictObject({
  status: z.enum(['acked', 'succeeded', 'failed']),
  result: JsonObject.optional(),
});

// ---- rotation (services/rotation.ts: every rotate_ip goes through one path) ----
/** POST /api/devices/rotate: one rotation per device; a device already rotating joins that rotation. */
export const BulkRotate = z.strictObject({
  device_ids: z.array(DeviceId).min(1, 'name at least one device').max(1000, 'at most 1000 devices at once'),
  ttl_s: z.number().int().min(10).max(86400).default(600),
});
export const BulkRotateResponse = z.object({
  items: z.array(
    z.object({
      device_id: z.string(),
      outcome: z
        .enum(['queued', 'joined', 'not_found', 'failed'])
        .describe(
          'queued: a new rotate_ip; joined: the rotation already running answers; not_found: no such device; failed: see error',
        ),
      command: Command.nullable(),
      error: z.string().nullable().describe('the PP_ERR_* code when outcome is failed or not_found'),
    }),
  ),
});
/** `wait` of the rotation link and its status URL: seconds to hold the answer until the rotation ends. */
export const RotationWaitQuery = z.object({
  wait: z.coerce
    .number()
    .int('must be a whole number of seconds')
    .min(1, 'must be at least 1 second')
    .max(60, 'must be at most 60 seconds')
    .optional()
    .describe('hold the answer until the rotation has finished, at most this many seconds (1-60)'),
});
export const RotationStatus = z.object({
  status: z
    .enum(['pending', 'succeeded', 'failed', 'expired'])
    .describe('pending: still queued or running (HTTP 202); the others are final (HTTP 200)'),
  command_id: CommandId,
  old_ip: z.string().nullable().describe('the public address before, as the device reported it (succeeded only)'),
  new_ip: z.string().nullable().describe('the public address after (succeeded only)'),
  rotated_at: Timestamp.nullable().describe('when the device reported success'),
  requested_at: Timestamp.describe('when this rotation was asked for (the minimum interval counts from here)'),
  status_url: z
    .string()
    .describe("GET it (optionally with ?wait=) for the state of the latest rotation of this connection's device"),
  already_queued: z
    .boolean()
    .optional()
    .describe('the request joined a rotation that was already running instead of starting another'),
});

// ---- pairing ----
export const PairingCodeCreate = z.strictObject({
  device_name: Name.optional(),
  relay_id: RelayId.optional(),
  ttl_s: z.number().int().min(60).max(3600).default(600),
});
export const ServerFingerprint = z
  .string()
  .regex(/^[A-Za-z0-9_-]{22}$/)
  .describe('base64url of the first 16 bytes of SHA-256 of the server key (Ed25519) that endorses relay keys');
export const PairingCode = z.object({
  code: z.string(),
  expires_at: Timestamp,
  qr_svg: z.string().describe('SVG QR code of pair_url'),
  pair_url: z
    .string()
    .describe(
      'pocketproxy://pair?server=<url>&code=<code>&fp=<server_fingerprint>: all `pocketproxy-agent pair` needs',
    ),
  server_fingerprint: ServerFingerprint,
});
export const PairRequest = z.strictObject({
  code: z.string().trim().min(4).max(64),
  public_key: z
    .string()
    .regex(/^[A-Za-z0-9+/]{43}=$/, 'must be a base64 X25519 public key')
    .optional(),
  name: Name.optional(),
  agent_version: AgentText.optional(),
});
export const PairResponse = z.object({
  device_id: DeviceId,
  auth_token: z.string(),
  relay: z.object({ id: RelayId, host: z.string(), port: Port }),
  tunnel: z.object({
    server_public_key: z
      .string()
      .nullable()
      .describe("the relay's X25519 key, base64 (null until its tunnel registers)"),
    server_public_key_endorsement: z
      .string()
      .nullable()
      .describe(
        'Ed25519 signature by server_key of "pocketproxy relay-key v1\\n<device_id>\\n<server_public_key>", base64',
      ),
    psk: z.string(),
    private_key: z
      .string()
      .optional()
      .describe('only when the request had no public_key: the X25519 private key generated for the device, base64'),
    vpn_ip: z.string().nullable().describe("the device's address in the device subnet, for its life"),
    mtu: z.number().int(),
    subnet: z.string(),
  }),
  server_key: z.object({ public_key: z.string().describe('Ed25519, base64'), fingerprint: ServerFingerprint }),
});
/** GET /api/devices/:id/tunnel */
export const DeviceTunnel = z.object({
  relay: z.object({
    host: z.string(),
    port: Port,
    public_key: z.string().nullable(),
    public_key_endorsement: z
      .string()
      .nullable()
      .describe("the server key's signature of public_key for this device (as in PairResponse)"),
    max_lanes: z
      .number()
      .int()
      .min(1)
      .max(16)
      .describe(
        'the most lanes (tunnel sessions at once, docs/protocol.md §3.1) the relay holds per device; 1 for a relay from before lanes',
      ),
  }),
  vpn_ip: z.string().nullable(),
  mtu: z.number().int(),
  subnet: z.string(),
});

// ---- connections ----
export const Protocol = z.enum(['http', 'socks5']);
export const Connection = z.object({
  id: ConnectionId,
  device_id: DeviceId,
  customer_id: CustomerId.nullable(),
  protocol: Protocol,
  host: z.string(),
  port: Port,
  username: z.string(),
  password: z.string(),
  enabled: z.boolean(),
  blocked_reason: z
    .enum(['expired', 'bandwidth'])
    .nullable()
    .describe('why the server blocked the connection (expires_at passed, monthly limit reached); null: not blocked'),
  bandwidth_limit_bytes: z.number().int().nullable(),
  max_connections: z.number().int().nullable(),
  rate_limit_down_kbps: z.number().int().nullable(),
  rate_limit_up_kbps: z.number().int().nullable(),
  bytes_used_month: z
    .number()
    .int()
    .describe(
      "this month's bytes relayed for the customer both ways, as the device counted them (every path, OpenVPN included); bandwidth_limit_bytes applies to it",
    ),
  bytes_relay_month: z
    .number()
    .int()
    .describe(
      "this month's bytes at the connection's relay port (IP packet lengths, both ways; not OpenVPN customers); informational",
    ),
  expires_at: Timestamp.nullable(),
  allow_from: z.array(z.string()),
  rotation_url: z.string(),
  rotation_min_interval_s: z
    .number()
    .int()
    .nullable()
    .describe(
      "minimum seconds between rotations asked for through rotation_url (measured from the start of the device's last rotation); null: no minimum",
    ),
  proxy_url: z.string(),
  ovpn_url: z
    .string()
    .nullable()
    .describe("path of the connection's OpenVPN profile (GET, admin); null when OpenVPN is off on this server"),
  device_status: DeviceStatus,
  device_tunnel_connected: z.boolean().describe("the device's tunnel to its relay is up"),
  live: z
    .object({
      state: z.enum(['live', 'pending']),
      relay_applied_at: Timestamp.nullable(),
      device_applied_at: Timestamp.nullable(),
    })
    .describe(
      'live: the current state (as of updated_at) is in force on the relay and on the connected device; pending: not yet (the age is now - updated_at), or the device is offline',
    ),
  created_at: Timestamp,
  updated_at: Timestamp,
});
const Username = z
  .string()
  .min(3, 'must be at least 3 characters')
  .max(64)
  .regex(/^[A-Za-z0-9._-]+$/, 'may contain letters, digits, dot, dash and underscore');
const RateKbps = z
  .number()
  .int('must be a whole number')
  .min(1, 'must be at least 1 kbps')
  .max(10_000_000, 'must be at most 10000000 kbps (10 Gbit/s)')
  .nullable()
  .optional();
const Password = z
  .string()
  .min(8, 'must be at least 8 characters')
  .max(128)
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');
export const ConnectionCreate = z.strictObject({
  device_id: DeviceId,
  customer_id: CustomerId.nullable().optional(),
  protocol: Protocol,
  username: Username.optional(),
  password: Password.optional(),
  enabled: z.boolean().default(true),
  bandwidth_limit_bytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().optional(),
  expires_at: z.iso.datetime({ offset: true }).nullable().optional(),
  allow_from: z.array(Cidr).max(64).default([]),
  max_connections: z
    .number()
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(100_000, 'must be at most 100000')
    .nullable()
    .optional()
    .describe('simultaneous customer connections the device accepts for it; null: no limit'),
  rate_limit_down_kbps: RateKbps.describe(
    'download rate (target → customer) in kilobits per second, 1 kbps = 1000 bit/s; null: no limit',
  ),
  rate_limit_up_kbps: RateKbps.describe(
    'upload rate (customer → target) in kilobits per second, 1 kbps = 1000 bit/s; null: no limit',
  ),
  rotation_min_interval_s: z
    .number()
    .int('must be a whole number')
    .min(0, 'must be at least 0 seconds')
    .max(86_400, 'must be at most 86400 seconds (a day)')
    .nullable()
    .optional()
    .describe(
      "the rotation link answers 429 with Retry-After while the device's last rotation started less than this many seconds ago; null: no minimum",
    ),
});
export const ConnectionUpdate = ConnectionCreate.omit({ device_id: true, protocol: true })
  .partial()
  .extend({
    enabled: z.boolean().optional(),
    allow_from: z.array(Cidr).max(64).optional(),
    regenerate_rotation_token: z.boolean().optional(),
  });

// ---- heartbeat (device → API) ----
export const Heartbeat = z.strictObject({
  metrics: DeviceMetrics.partial().default({}),
  public_ip: AgentText.nullable().optional(),
  agent_version: AgentText.optional(),
  uptime_s: z.number().int().min(0).optional(),
  usage: z
    .array(
      z.strictObject({
        connection_id: ConnectionId,
        bytes_in: z.number().int().min(0),
        bytes_out: z.number().int().min(0),
      }),
    )
    .max(10_000)
    .default([]),
  proxy: ProxyStats.optional(),
  tunnel_transport: z.enum(['udp', 'tcp']).optional(),
  capabilities: z
    .array(z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, 'must be a command type'))
    .max(32)
    .optional()
    .describe(
      'the command types this agent can run with its driver(s); types the server does not know are ignored (a newer agent); absent: not reported (every command is accepted)',
    ),
});
export const HeartbeatResponse = z.object({
  commands: z.array(z.object({ id: CommandId, type: CommandType, payload: z.record(z.string(), z.unknown()) })),
  heartbeat_interval_s: z.number().int(),
  credentials_version: z
    .string()
    .describe('equals GET /api/devices/:id/credentials version while nothing changed; refetch when it differs'),
});

// ---- credentials (device ← API) ----
export const ConnectionState = z.enum(['active', 'disabled', 'expired', 'bandwidth']);
export const CredentialItem = z.object({
  connection_id: ConnectionId,
  protocol: Protocol,
  port: Port.describe("the connection's relay port, which is also its listener port on the device's vpn_ip"),
  username: z.string(),
  verifier: z
    .string()
    .describe('v1$<salt>$<base64url HMAC-SHA256(key = salt, message = password)>; never the password'),
  state: ConnectionState.describe(
    'disabled (enabled false) > expired (expires_at passed or blocked) > bandwidth (monthly limit reached) > active',
  ),
  allow_from: z.array(z.string()).describe('customer CIDRs; [] = anyone with the credentials'),
  expires_at: Timestamp.nullable(),
  max_connections: z.number().int().nullable(),
  rate_limit_down_kbps: z.number().int().nullable(),
  rate_limit_up_kbps: z.number().int().nullable(),
  bandwidth_limit_bytes: z.number().int().nullable(),
  bytes_used_month: z
    .number()
    .int()
    .describe(
      "this month's usage as the device reported it (the only field that changes without changing the version)",
    ),
});
export const DeviceCredentials = z.object({
  version: z
    .string()
    .describe('changes whenever any item field but bytes_used_month changes; equals the heartbeat credentials_version'),
  items: z.array(CredentialItem),
});

// ---- overview ----
export const Overview = z.object({
  devices: z.object({ total: z.number().int(), online: z.number().int(), offline: z.number().int() }),
  connections: z.object({
    total: z.number().int(),
    enabled: z.number().int().describe('connections switched on (enabled), blocked or not'),
    blocked: z
      .number()
      .int()
      .describe('enabled connections the server has blocked (blocked_reason: bandwidth limit reached, expired)'),
  }),
  customers: z.number().int(),
  traffic: z.object({ today_bytes: z.number().int(), month_bytes: z.number().int() }),
  recent_events: z.array(
    z.object({
      id: z.number().int(),
      type: z.string(),
      device_id: z.string().nullable(),
      data: z.record(z.string(), z.unknown()),
      created_at: Timestamp,
    }),
  ),
});

export const UsagePoint = z.object({ t: Timestamp, bytes_in: z.number().int(), bytes_out: z.number().int() });

// ---- websocket events ----
export const WsEventType = z.enum([
  'device_connected',
  'device_disconnected',
  'heartbeat',
  'command_updated',
  'ip_changed',
  'device_paired',
  'device_updated',
  'connection_updated',
]);
export const WsEvent = z.object({ type: WsEventType, data: z.record(z.string(), z.unknown()), at: Timestamp });

// ---- webhooks ----
export const WebhookEvent = z.enum([
  'device_connected',
  'device_disconnected',
  'device_paired',
  'ip_changed',
  'command_failed',
]);
export const WebhookId = z.string().regex(/^whk_[0-9a-zA-Z]{10,40}$/, 'must be an id starting with whk_');
export const Webhook = z.object({
  id: WebhookId,
  url: z.string(),
  events: z.array(WebhookEvent),
  enabled: z.boolean(),
  created_at: Timestamp,
  secret: z.string().optional().describe('only in the answer to POST: the HMAC key for x-pocketproxy-signature'),
});
export const WebhookCreate = z.strictObject({
  url: z
    .string()
    .max(2000)
    .url('must be a URL')
    .refine((u) => /^https?:\/\//i.test(u), 'must be an http or https URL'),
  events: z.array(WebhookEvent).min(1).max(16).default(['device_connected', 'device_disconnected']),
  secret: z.string().min(16, 'must be at least 16 characters').max(256).optional().describe('generated when not given'),
  enabled: z.boolean().default(true),
});

// ---- meta ----
export const Health = z.object({
  status: z.enum(['ok', 'unavailable']),
  database: z.enum(['pglite', 'postgres']),
  version: z.string().optional(),
});
