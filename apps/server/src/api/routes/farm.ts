// Farm hosts and enrollment (issue 14, docs/design.md §2.11): enrollment tokens (admin), the farm host's
// public enroll, and the farm hosts (admin): list, one with its devices, rename, bulk rotation.
import { z } from 'zod';
import * as S from '@pocketproxy/api-schema';
import { isPPError } from '@pocketproxy/errors';
import type { Ctx } from '../../context.js';
import type { Router } from '../route.js';
import type { RateLimiter } from '../ratelimit.js';
import {
  createEnrollmentToken,
  enroll,
  listEnrollmentTokens,
  revokeEnrollmentToken,
} from '../../services/enrollment.js';
import { pairingAnswer } from './device.js';
import {
  deleteFarmHost,
  getFarmHost,
  listFarmHosts,
  renameFarmHost,
  rotateFarmHost,
} from '../../services/farm-hosts.js';

/** Refusals of the token itself (counted by the stricter per-address limit). */
const TOKEN_REFUSALS = new Set([
  'PP_ERR_API_ENROLLMENT_TOKEN_INVALID',
  'PP_ERR_API_ENROLLMENT_TOKEN_REVOKED',
  'PP_ERR_API_ENROLLMENT_TOKEN_EXPIRED',
]);

export function farmRoutes(
  r: Router,
  ctx: Ctx,
  limits: { enroll: RateLimiter; enrollRefused: RateLimiter; tokens: RateLimiter },
) {
  r.add({
    method: 'POST',
    url: '/api/enrollment-tokens',
    auth: 'admin',
    tag: 'enrollment tokens',
    status: 201,
    summary: 'Create an enrollment token for farm hosts; the token is in this answer only',
    body: S.EnrollmentTokenCreate,
    response: S.EnrollmentTokenCreated,
    handler: ({ body, principal }) => {
      limits.tokens.hit(principal.id);
      return createEnrollmentToken(ctx, body, principal.id);
    },
  });
  r.add({
    method: 'GET',
    url: '/api/enrollment-tokens',
    auth: 'admin',
    tag: 'enrollment tokens',
    summary: 'Enrollment tokens, newest first (without the tokens themselves)',
    response: z.object({ items: z.array(S.EnrollmentToken) }),
    handler: () => listEnrollmentTokens(ctx),
  });
  r.add({
    method: 'DELETE',
    url: '/api/enrollment-tokens/:id',
    auth: 'admin',
    tag: 'enrollment tokens',
    summary: 'Revoke an enrollment token (the devices it enrolled stay); answers the token',
    params: z.object({ id: S.EnrollmentTokenId }),
    response: S.EnrollmentToken,
    handler: ({ params, principal }) => revokeEnrollmentToken(ctx, params.id, principal.id),
  });
  r.add({
    method: 'POST',
    url: '/api/public/enroll',
    auth: 'public',
    tag: 'device',
    status: 201,
    summary:
      "Enroll one device of a farm host with an enrollment token (the token is the credential); answers what pairing answers, plus the farm host's id",
    body: S.EnrollRequest,
    response: S.EnrollResponse,
    handler: async ({ body, req }) => {
      limits.enroll.hit(req.ip);
      // Refused tokens count against a stricter limit: an address that has had that many refused in the
      // window gets 429 for every enroll until it ends. Only refusals count, when they happen: a farm's
      // devices enrolling at once with a good token must not meet it (counting every try first and
      // giving it back afterwards, as logins do, refused the 11th of 50 parallel enrollments).
      limits.enrollRefused.hit(req.ip); // throws 429 once the window holds the limit of refusals
      limits.enrollRefused.undo(req.ip); // this try is not a refusal (yet)
      let s: Awaited<ReturnType<typeof enroll>>;
      try {
        s = await enroll(ctx, body);
      } catch (e) {
        if (isPPError(e) && TOKEN_REFUSALS.has(e.code)) {
          try {
            limits.enrollRefused.hit(req.ip);
          } catch {
            // past the limit through parallel refusals: this one still hears why it was refused
          }
        }
        throw e;
      }
      return { ...pairingAnswer(ctx, s), farm_host_id: s.farm_host_id };
    },
  });

  const tag = 'farm hosts';
  const IdParams = z.object({ id: S.FarmHostId });
  r.add({
    method: 'GET',
    url: '/api/farm-hosts',
    auth: 'admin',
    tag,
    summary: 'Farm hosts with their device counts, by name',
    response: z.object({ items: z.array(S.FarmHost) }),
    handler: () => listFarmHosts(ctx.db),
  });
  r.add({
    method: 'GET',
    url: '/api/farm-hosts/:id',
    auth: 'admin',
    tag,
    summary: 'A farm host with its devices',
    params: IdParams,
    response: S.FarmHostDetail,
    handler: ({ params }) => getFarmHost(ctx.db, params.id),
  });
  r.add({
    method: 'PATCH',
    url: '/api/farm-hosts/:id',
    auth: 'admin',
    tag,
    summary: 'Rename a farm host',
    params: IdParams,
    body: S.FarmHostUpdate,
    response: S.FarmHost,
    handler: ({ params, body, principal }) => renameFarmHost(ctx, params.id, body.name, principal.id),
  });
  r.add({
    method: 'DELETE',
    url: '/api/farm-hosts/:id',
    auth: 'admin',
    tag,
    status: 204,
    summary:
      'Delete a farm host without devices (409 while it has any); its farm process, if it still runs, makes it anew at its next enrollment',
    params: IdParams,
    handler: ({ params, principal }) => deleteFarmHost(ctx, params.id, principal.id),
  });
  r.add({
    method: 'POST',
    url: '/api/farm-hosts/:id/rotate',
    auth: 'admin',
    tag,
    summary:
      'Rotate the farm host’s online devices that can rotate (rotate_ip capability): one rotate_ip each, as POST /api/devices/rotate; the others are listed in skipped with the reason',
    params: IdParams,
    body: S.FarmHostRotate,
    response: S.FarmRotateResponse,
    handler: ({ params, body, principal }) => rotateFarmHost(ctx, params.id, body, principal.id),
  });
}
