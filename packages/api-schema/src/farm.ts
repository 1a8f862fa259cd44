// Farm hosts and enrollment (issue 14): one Linux box (`pocketproxy-agent farm`) runs many Android phones
// and USB modems, each its own device, all enrolled with one enrollment token (docs/design.md §2.11).
import { z } from 'zod';
import { AgentText, DeviceId, EnrollmentTokenId, FarmHostId, Name, RelayId, Timestamp } from './common.js';
import { BulkRotateResponse, Device, PairResponse } from './resources.js';

// ---- enrollment tokens (admin) ----
export const EnrollmentTokenCreate = z.strictObject({
  name: Name.optional().describe('shown in lists, e.g. "rack 3"'),
  max_devices: z
    .number()
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(100_000, 'must be at most 100000')
    .optional()
    .describe('how many devices the token may enroll in all; absent: no limit'),
  ttl_s: z
    .number()
    .int('must be a whole number of seconds')
    .min(60, 'must be at least 60 seconds')
    .max(366 * 86400, 'must be at most 366 days')
    .optional()
    .describe('the token expires this many seconds from now; absent: never'),
  relay_id: RelayId.optional().describe('the relay its devices belong to; absent: the default relay'),
});
export const EnrollmentTokenState = z
  .enum(['active', 'revoked', 'expired', 'exhausted'])
  .describe('active: enrolls; revoked: revoked_at set; expired: expires_at passed; exhausted: max_devices reached');
export const EnrollmentToken = z.object({
  id: EnrollmentTokenId,
  name: z.string(),
  token_prefix: z
    .string()
    .describe('the first characters of the token, to tell tokens apart (the token is shown once)'),
  relay_id: RelayId.nullable(),
  max_devices: z.number().int().nullable(),
  devices_enrolled: z.number().int().describe('devices enrolled with this token so far (slots used)'),
  expires_at: Timestamp.nullable(),
  revoked_at: Timestamp.nullable(),
  state: EnrollmentTokenState,
  created_at: Timestamp,
});
/** POST /api/enrollment-tokens: the token itself is in this answer only (stored as SHA-256). */
export const EnrollmentTokenCreated = EnrollmentToken.extend({
  token: z.string().describe('the enrollment token, shown once'),
  enroll_command: z
    .string()
    .describe('pocketproxy-agent farm --server <public URL> --enroll <token> --fingerprint <server fingerprint>'),
});

// ---- enrollment (the farm host, public: the token is the credential) ----
/** An adb serial (e.g. R58M123ABC, emulator-5554, 192.168.1.20:5555) or a modem's IMEI. */
export const HardwareId = z
  .string()
  .min(1, 'must not be empty')
  .max(64, 'must be at most 64 characters')
  .regex(/^[A-Za-z0-9._:-]+$/, 'may contain letters, digits, dot, colon, dash and underscore');
/** What the phone or modem says it is (adb's ro.product.model, ModemManager's model); empty means none. */
export const DeviceModel = z
  .string()
  .trim()
  .max(100, 'must be at most 100 characters')
  // biome-ignore lint/suspicious/noControlCharactersInRegex: this regex exists to reject control characters
  .regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters');
export const EnrollRequest = z.strictObject({
  token: z
    .string()
    .trim()
    .min(16)
    .max(128)
    .regex(/^[A-Za-z0-9_-]+$/, 'must be an enrollment token'),
  host: z.strictObject({
    key: z
      .string()
      .regex(/^[A-Za-z0-9_-]{32,128}$/, 'must be 32-128 base64url characters')
      .describe("the farm process's own random secret; the server keeps its SHA-256 and finds the host by it"),
    name: Name.describe("the farm host's name (used when the host is new; rename with PATCH /api/farm-hosts/:id)"),
  }),
  device: z.strictObject({
    hardware_id: HardwareId,
    kind: z.enum(['phone', 'modem']),
    model: DeviceModel.optional(),
    name: Name.optional().describe('default: "<model> <hardware_id>"'),
  }),
  public_key: z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'must be a base64 X25519 public key'),
  agent_version: AgentText.optional(),
});
/** What POST /api/public/pair answers, plus the farm host the device now belongs to. */
export const EnrollResponse = PairResponse.extend({ farm_host_id: FarmHostId });

// ---- farm hosts (admin) ----
export const FarmHost = z.object({
  id: FarmHostId,
  name: z.string(),
  enrollment_token_id: EnrollmentTokenId.nullable().describe('the token that created the host'),
  created_at: Timestamp,
  last_seen_at: Timestamp.nullable().describe('the latest of its last enrollment and its devices’ last heartbeats'),
  devices: z.number().int().describe('devices of this host'),
  online: z.number().int().describe('of them online'),
});
/** GET /api/farm-hosts/:id: the host with its devices (by name). */
export const FarmHostDetail = FarmHost.omit({ devices: true }).extend({ devices: z.array(Device) });
export const FarmHostUpdate = z.strictObject({ name: Name });
export const FarmHostRotate = z.strictObject({
  ttl_s: z.number().int().min(10).max(86400).default(600).describe('how long the rotate_ip commands may wait'),
});
export const FarmRotateResponse = BulkRotateResponse.extend({
  skipped: z
    .array(
      z.object({
        device_id: DeviceId,
        name: z.string(),
        reason: z
          .enum(['offline', 'no_rotate_capability'])
          .describe(
            'offline: the device is not online; no_rotate_capability: its agent has not reported the rotate_ip capability (its driver cannot rotate, or it has not reported yet)',
          ),
      }),
    )
    .describe('devices of the host that got no rotation, and why'),
});
/** The same schema under the name the contract first gave it. */
export const FarmHostRotateResponse = FarmRotateResponse;
