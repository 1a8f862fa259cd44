// Inner messages: the plaintext of a transport frame. The first byte says what it is:
//   empty plaintext          keepalive
//   0x4_ / 0x6_ (version)    an IPv4 / IPv6 packet, carried as is (no extra byte, no copy)
//   0x05 + UTF-8 JSON        command push      {id, type, payload?}
//   0x06 + UTF-8 JSON        command ack       {id, status, result?, error?}
//   0x07 + UTF-8 JSON        control message   {type, payload?}
// Everything else is reserved. JSON messages must fit one tunnel MTU (never rely on fragmentation).
import { MAX_JSON_MESSAGE_LEN } from './constants.js';
import { tunnelError } from './errors.js';

export const INNER_COMMAND = 0x05;
export const INNER_ACK = 0x06;
export const INNER_CONTROL = 0x07;

export interface CommandPush {
  /** Server-assigned, e.g. `cmd_...`; receivers de-duplicate on it (pushes may be retried). */
  id: string;
  type: string;
  payload?: unknown;
}

export const ACK_STATUSES = ['received', 'succeeded', 'failed', 'rejected'] as const;
export type AckStatus = (typeof ACK_STATUSES)[number];

export interface CommandAck {
  id: string;
  status: AckStatus;
  result?: unknown;
  error?: string;
}

export interface ControlMessage {
  type: string;
  payload?: unknown;
}

export type JsonMessage =
  | { kind: 'command'; command: CommandPush }
  | { kind: 'ack'; ack: CommandAck }
  | { kind: 'control'; control: ControlMessage };

export type InnerMessage = { kind: 'keepalive' } | { kind: 'packet'; packet: Buffer } | JsonMessage;

const KEEPALIVE: InnerMessage = Object.freeze({ kind: 'keepalive' });
const UTF8 = new TextDecoder('utf-8', { fatal: true });
const MAX_ID = 128;
const MAX_TYPE = 64;

/** True when the plaintext is an IP packet (version nibble 4 or 6) — the data-path fast check. */
export function isIpPacket(plaintext: Buffer): boolean {
  const v = (plaintext[0] ?? 0) >> 4;
  return v === 4 || v === 6;
}

/** Decodes a plaintext. Throws only PPError. A packet is returned as the same Buffer, not a copy. */
export function decodeInner(pt: Buffer): InnerMessage {
  if (pt.length === 0) return KEEPALIVE;
  const b = pt[0] as number;
  const v = b >> 4;
  if (v === 4 || v === 6) {
    if (pt.length < (v === 4 ? 20 : 40))
      throw malformed(`IPv${v} packet of ${pt.length} bytes is shorter than its header`);
    return { kind: 'packet', packet: pt };
  }
  if (b !== INNER_COMMAND && b !== INNER_ACK && b !== INNER_CONTROL)
    throw tunnelError('PP_ERR_TUNNEL_INNER_TYPE', { type: `0x${b.toString(16).padStart(2, '0')}` });
  if (pt.length > MAX_JSON_MESSAGE_LEN) throw tooLarge(pt.length);
  let obj: unknown;
  try {
    obj = JSON.parse(UTF8.decode(pt.subarray(1)));
  } catch {
    throw malformed('body is not UTF-8 JSON');
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw malformed('body must be a JSON object');
  const o = obj as Record<string, unknown>;
  if (b === INNER_COMMAND) return { kind: 'command', command: checkCommand(o) };
  if (b === INNER_ACK) return { kind: 'ack', ack: checkAck(o) };
  return { kind: 'control', control: checkControl(o) };
}

export function encodeCommand(c: CommandPush): Buffer {
  return encodeJson(INNER_COMMAND, checkCommand(c as unknown as Record<string, unknown>));
}
export function encodeAck(a: CommandAck): Buffer {
  return encodeJson(INNER_ACK, checkAck(a as unknown as Record<string, unknown>));
}
export function encodeControl(c: ControlMessage): Buffer {
  return encodeJson(INNER_CONTROL, checkControl(c as unknown as Record<string, unknown>));
}
export function encodeJsonMessage(m: JsonMessage): Buffer {
  return m.kind === 'command'
    ? encodeCommand(m.command)
    : m.kind === 'ack'
      ? encodeAck(m.ack)
      : encodeControl(m.control);
}

function encodeJson(type: number, value: object): Buffer {
  const body = Buffer.from(JSON.stringify(value), 'utf8');
  if (body.length + 1 > MAX_JSON_MESSAGE_LEN) throw tooLarge(body.length + 1);
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = type;
  body.copy(out, 1);
  return out;
}

// Fresh objects with only the known fields: nothing unexpected (or `__proto__`) rides along.
function checkCommand(o: Record<string, unknown>): CommandPush {
  const c: CommandPush = { id: str(o, 'id', MAX_ID), type: str(o, 'type', MAX_TYPE) };
  if (o.payload !== undefined) c.payload = o.payload;
  return c;
}

function checkAck(o: Record<string, unknown>): CommandAck {
  const status = o.status;
  if (typeof status !== 'string' || !(ACK_STATUSES as readonly string[]).includes(status))
    throw malformed(`status must be one of ${ACK_STATUSES.join(', ')}`);
  const a: CommandAck = { id: str(o, 'id', MAX_ID), status: status as AckStatus };
  if (o.result !== undefined) a.result = o.result;
  if (o.error !== undefined) {
    if (typeof o.error !== 'string') throw malformed('error must be a string');
    a.error = o.error;
  }
  return a;
}

function checkControl(o: Record<string, unknown>): ControlMessage {
  const c: ControlMessage = { type: str(o, 'type', MAX_TYPE) };
  if (o.payload !== undefined) c.payload = o.payload;
  return c;
}

function str(o: Record<string, unknown>, key: string, max: number): string {
  const v = Object.hasOwn(o, key) ? o[key] : undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > max)
    throw malformed(`${key} must be a string of 1..${max} characters`);
  return v;
}

function malformed(reason: string) {
  return tunnelError('PP_ERR_TUNNEL_INNER_MALFORMED', { reason });
}
function tooLarge(size: number) {
  return tunnelError('PP_ERR_TUNNEL_MESSAGE_TOO_LARGE', {
    what: 'JSON inner message',
    size,
    limit: MAX_JSON_MESSAGE_LEN,
  });
}
