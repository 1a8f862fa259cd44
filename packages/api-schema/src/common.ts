import { z } from 'zod';

/** Typed, prefixed ids make logs and URLs self-explaining: dev_…, con_…, cmd_…, cus_…, rly_…, adm_…, enr_…, farm_…. */
export const idOf = (prefix: string) =>
  z.string().regex(new RegExp(`^${prefix}_[0-9a-zA-Z]{10,40}$`), `must be an id starting with ${prefix}_`);

export const DeviceId = idOf('dev');
export const ConnectionId = idOf('con');
export const CommandId = idOf('cmd');
export const CustomerId = idOf('cus');
export const RelayId = idOf('rly');
export const EnrollmentTokenId = idOf('enr');
export const FarmHostId = idOf('farm');

/** Names shown to operators: printable, trimmed, 1–64 chars. */
export const Name = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(64, 'must be at most 64 characters')
  // biome-ignore lint/suspicious/noControlCharactersInRegex: this regex exists to reject control characters
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters');

/** Short text an agent reports (its version, its public address): printable, at most 64 chars. */
export const AgentText = z
  .string()
  .max(64, 'must be at most 64 characters')
  // biome-ignore lint/suspicious/noControlCharactersInRegex: this regex exists to reject control characters
  .regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters');

/** Free text; line breaks allowed, NUL not (PostgreSQL's text holds none: it was a 500, not a 400). */
export const Description = z
  .string()
  .max(500, 'must be at most 500 characters')
  .refine((s) => !s.includes('\u0000'), 'must not contain NUL characters');
export const Timestamp = z.string().describe('RFC 3339 timestamp');
export const Port = z.number().int().min(1).max(65535);
export const IPv4 = z
  .string()
  .regex(/^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/, 'must be an IPv4 address');
export const Cidr = z
  .string()
  .regex(
    /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\/(3[0-2]|[12]?\d)$/,
    'must be an IPv4 CIDR like 203.0.113.0/24',
  );
export const Hostname = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[a-zA-Z0-9.\-:[\]]+$/, 'must be a hostname or IP address');

/** RFC 9457 problem details, as every error response carries them. */
export const Problem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  code: z.string().describe('stable PP_ERR_* code, see docs/errors.md'),
  detail: z.string(),
  request_id: z.string(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});
export type Problem = z.infer<typeof Problem>;

export const Paging = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
});

function jsonDepth(v: unknown, d = 0): number {
  if (d > 64 || v === null || typeof v !== 'object') return d;
  let max = d;
  for (const x of Object.values(v as Record<string, unknown>)) max = Math.max(max, jsonDepth(x, d + 1));
  return max;
}

/**
 * A free-form JSON object from a client (command payloads and results), bounded: at most 16 levels
 * deep and 16 KiB. PostgreSQL's jsonb parser refuses very deep documents with a stack-depth error,
 * which would otherwise surface as a 500 instead of a 400.
 */
export const JsonObject = z.record(z.string(), z.unknown()).superRefine((v, ctx) => {
  // depth first: JSON.stringify itself overflows the stack on a deep enough document
  if (jsonDepth(v) > 16) ctx.addIssue({ code: 'custom', message: 'must be at most 16 levels deep' });
  else if (JSON.stringify(v).length > 16_384)
    ctx.addIssue({ code: 'custom', message: 'must be at most 16 KiB as JSON' });
});
