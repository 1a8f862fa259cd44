// Routes a device calls: public pairing and address echo, then, with its token, heartbeat, command
// results, credentials sync and its tunnel parameters. Also the public rotation link.
import { z } from 'zod';
import * as S from '@pocketproxy/api-schema';
import type { Ctx } from '../../context.js';
import { withStatus, type Router } from '../route.js';
import type { FastifyReply } from 'fastify';
import { RateLimiter } from '../ratelimit.js';
import { pair } from '../../services/pairing.js';
import { heartbeat } from '../../services/heartbeat.js';
import { getCommand, transition, type CommandView } from '../../services/commands.js';
import {
  isFinished,
  latestRotation,
  requestRotation,
  rotationLink,
  rotationView,
  waitForCommand,
} from '../../services/rotation.js';
import { deviceTunnel, type DeviceSecrets } from '../../services/devices.js';
import { deviceCredentials } from '../../services/connections.js';
import { markDeviceApplied } from '../../services/live.js';
import { apiError } from '../../errors.js';

/** What a new device is told, paired by code or enrolled by a farm host: its identity, tunnel and the keys to check. */
export function pairingAnswer(ctx: Ctx, s: DeviceSecrets) {
  const relayKey = s.relay.public_key;
  return {
    device_id: s.device.id,
    auth_token: s.auth_token,
    relay: { id: s.relay.id, host: s.relay.host, port: s.relay.port },
    tunnel: {
      server_public_key: relayKey,
      server_public_key_endorsement: relayKey ? ctx.serverKey.endorseRelayKey(s.device.id, relayKey) : null,
      psk: s.psk,
      private_key: s.private_key,
      mtu: ctx.config.tunnelMtu,
      subnet: ctx.config.deviceSubnet,
      vpn_ip: s.device.vpn_ip,
    },
    server_key: { public_key: ctx.serverKey.publicKey, fingerprint: ctx.serverKey.fingerprint },
  };
}

export function deviceRoutes(
  r: Router,
  ctx: Ctx,
  limits: { pair: RateLimiter; rotateLink: RateLimiter; rotateLinkIp: RateLimiter },
  onHeartbeat: () => void,
) {
  const tag = 'device';
  r.add({
    method: 'POST',
    url: '/api/public/pair',
    auth: 'public',
    tag,
    status: 201,
    summary: 'Pair a device with a pairing code (the code is the credential)',
    body: S.PairRequest,
    response: S.PairResponse,
    handler: async ({ body, req }) => {
      limits.pair.hit(req.ip);
      const s = await pair(ctx, body);
      return pairingAnswer(ctx, s);
    },
  });
  r.add({
    method: 'GET',
    url: '/api/public/ip',
    auth: 'public',
    tag,
    summary: "The caller's address, so a device learns its egress IP",
    response: z.object({ ip: z.string() }),
    handler: async ({ req }) => ({ ip: req.ip.replace(/^::ffff:/, '') }),
  });
  // The public rotation link: the token is the credential. A malformed token, an unknown one and (on the
  // status URL) a link whose device has never rotated all answer the same 404 "rotation not found";
  // the per-address limit comes first (token guessing), the per-connection one (abuse) next.
  const Token = z.object({
    token: z
      .string()
      .min(16)
      .max(128)
      .regex(/^[A-Za-z0-9_-]+$/),
  });
  const statusIp = new RateLimiter(ctx.config.rotateLinkRatePerMin * 10, 60_000, ctx.clock);
  const link = (token: string) => rotationLink(ctx.db, token);
  /** 200 once the rotation has finished, 202 while it is open; with `wait`, held until it finishes (at most that long). */
  const answer = async (
    reply: FastifyReply,
    token: string,
    cmd: CommandView,
    waitS: number | undefined,
    extra: { already_queued?: boolean } = {},
  ) => {
    let c = cmd;
    if (waitS && !isFinished(c)) {
      const gone = new AbortController();
      reply.raw.once('close', () => gone.abort());
      c = await waitForCommand(ctx, c, waitS * 1000, gone.signal);
    }
    const body = { ...rotationView(c, `${ctx.config.publicUrl}/api/public/rotate/${token}/status`), ...extra };
    return withStatus(isFinished(c) ? 200 : 202, body);
  };
  r.add({
    method: 'GET',
    url: '/api/public/rotate/:token',
    auth: 'public',
    tag: 'rotation',
    status: 202,
    statuses: [200],
    summary:
      "Rotate the connection's device (rate-limited; joins a rotation already running; 429 + Retry-After inside " +
      "the connection's rotation_min_interval_s). With ?wait=1..60: held until it finishes, 200 when it has, " +
      '202 when still running',
    params: Token,
    query: S.RotationWaitQuery,
    response: S.RotationStatus,
    handler: async ({ params, query, req, reply }) => {
      limits.rotateLinkIp.hit(req.ip);
      const c = await link(params.token);
      limits.rotateLink.hit(c.id);
      const { command, joined } = await requestRotation(ctx, c.device_id, {
        source: 'rotation_link',
        actor: `link:${c.id}`,
        ttl_s: 300,
        minIntervalS: c.rotation_min_interval_s,
      });
      return answer(reply, params.token, command, query.wait, { already_queued: joined });
    },
  });
  r.add({
    method: 'GET',
    url: '/api/public/rotate/:token/status',
    auth: 'public',
    tag: 'rotation',
    status: 200,
    statuses: [202],
    summary:
      "The latest rotation of the connection's device, whoever asked for it: 200 finished, 202 still running " +
      '(?wait=1..60 holds the answer until it finishes); 404 before the first',
    params: Token,
    query: S.RotationWaitQuery,
    response: S.RotationStatus,
    handler: async ({ params, query, req, reply }) => {
      statusIp.hit(req.ip);
      const c = await link(params.token);
      const last = await latestRotation(ctx.db, c.device_id);
      if (!last) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'rotation' });
      return answer(reply, params.token, last, query.wait);
    },
  });

  const IdParams = z.object({ id: S.DeviceId });
  r.add({
    method: 'POST',
    url: '/api/devices/:id/heartbeat',
    auth: 'device',
    tag,
    summary: 'Report metrics and usage; answers the commands to run',
    params: IdParams,
    body: S.Heartbeat,
    response: S.HeartbeatResponse,
    handler: async ({ params, body }) => {
      onHeartbeat();
      return heartbeat(ctx, params.id, body);
    },
  });
  r.add({
    method: 'POST',
    url: '/api/devices/:id/commands/:cmd/result',
    auth: 'device',
    tag,
    summary: 'Acknowledge or finish a command',
    params: z.object({ id: S.DeviceId, cmd: S.CommandId }),
    body: S.CommandResult,
    response: S.Command,
    handler: async ({ params, body }) => {
      // Already in that state: answered as it is.
      return (
        (await transition(ctx, params.id, params.cmd, body.status, body.result ?? null)) ??
        (await getCommand(ctx.db, params.cmd))!
      );
    },
  });
  r.add({
    method: 'GET',
    url: '/api/devices/:id/credentials',
    auth: 'device',
    tag,
    summary:
      'Every connection this device serves: password verifier, state, allow-list, expiry, limits, usage; version as in the heartbeat answer',
    params: IdParams,
    response: S.DeviceCredentials,
    handler: ({ params }) => deviceCredentials(ctx, ctx.db, params.id),
  });
  r.add({
    method: 'POST',
    url: '/api/devices/:id/credentials/applied',
    auth: 'device',
    tag,
    summary:
      'The agent applied the credentials of this version: its connections are in force on the device (shown as live)',
    params: IdParams,
    body: z.strictObject({ version: z.string().min(1).max(200) }),
    response: z.object({ current: z.boolean() }),
    handler: async ({ params, body }) => ({ current: await markDeviceApplied(ctx, params.id, body.version) }),
  });
  r.add({
    method: 'GET',
    url: '/api/devices/:id/tunnel',
    auth: 'device',
    tag,
    summary: 'Where and how to open the tunnel (relay address, key and its endorsement, VPN address, MTU)',
    params: IdParams,
    response: S.DeviceTunnel,
    handler: ({ params }) => deviceTunnel(ctx, params.id),
  });
}
