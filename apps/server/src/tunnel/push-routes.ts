// Routes of the push API: what the API process calls to reach a device through this relay.
//   POST /push {device_id, message: {kind:'command', id, type, payload?} | {kind:'control', type, payload?}}
//     -> {delivered: true} once the frame went out on the device's session, else {delivered: false}
//        (offline: the API leaves the command for the next heartbeat answer)
//   POST /sync {device_id} -> {ok: true, connected} once the device's connections as the API has them
//        now are applied to the firewall and the device was told to refetch its credentials; a device
//        the peer list has wrong (new, re-keyed, deleted, moved) refreshes the list first, so a freshly
//        paired device's first initiation is answered and a deleted one's session ends
//   GET /status -> TunnelStatus
import { encodeJsonMessage, type JsonMessage } from '@pocketproxy/protocol';
import { badRequest, type PushHandler } from './push-server.js';

export interface PushRouteDeps {
  push(deviceId: string, message: JsonMessage): boolean;
  syncDevice(deviceId: string): Promise<boolean>;
  status(): unknown;
}

const str = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;

/** The API's message shape -> the protocol's; a string saying what is wrong otherwise. */
export function toJsonMessage(m: unknown): JsonMessage | string {
  if (typeof m !== 'object' || m === null) return 'message must be an object';
  const o = m as Record<string, unknown>;
  if (o.kind === 'command') {
    if (!str(o.id, 128)) return 'message.id must be a string of 1..128 characters';
    if (!str(o.type, 64)) return 'message.type must be a string of 1..64 characters';
    return {
      kind: 'command',
      command: { id: o.id, type: o.type, ...(o.payload === undefined ? {} : { payload: o.payload }) },
    };
  }
  if (o.kind === 'control') {
    if (!str(o.type, 64)) return 'message.type must be a string of 1..64 characters';
    return { kind: 'control', control: { type: o.type, ...(o.payload === undefined ? {} : { payload: o.payload }) } };
  }
  return "message.kind must be 'command' or 'control'";
}

export function createPushRoutes(d: PushRouteDeps): Record<string, PushHandler> {
  return {
    'POST /push': (body) => {
      const b = (body ?? {}) as Record<string, unknown>;
      if (!str(b.device_id, 64)) return badRequest('device_id must be a string');
      const m = toJsonMessage(b.message);
      if (typeof m === 'string') return badRequest(m);
      try {
        encodeJsonMessage(m); // size and shape limits of the wire (one tunnel MTU)
      } catch (e) {
        return badRequest((e as Error).message);
      }
      return { status: 200, body: { delivered: d.push(b.device_id, m) } };
    },
    'POST /sync': async (body) => {
      const b = (body ?? {}) as Record<string, unknown>;
      if (!str(b.device_id, 64)) return badRequest('device_id must be a string');
      return { status: 200, body: { ok: true, connected: await d.syncDevice(b.device_id) } };
    },
    'GET /status': () => ({ status: 200, body: d.status() }),
  };
}
