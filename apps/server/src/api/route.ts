// One way to declare a route: auth kind, zod schemas for params/query/body/response, and a handler
// that receives parsed input. The same declarations build /api/openapi.json, so the document cannot
// drift from what the server accepts.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Ctx } from '../context.js';
import { apiError } from '../errors.js';
import { authenticate, type AuthKind, type DeviceTokenCache, type Principal } from './auth.js';
import { ValidationError } from './problem.js';

export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  principal: Principal;
  req: FastifyRequest;
  reply: FastifyReply;
}

export interface RouteDef<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  auth: AuthKind;
  summary: string;
  tag: string;
  params?: P;
  query?: Q;
  body?: B;
  response?: z.ZodType;
  status?: number;
  /** Raw responses (SVG, .ovpn, text) set their own content type. */
  produces?: string;
  handler: (input: RouteInput<z.output<P>, z.output<Q>, z.output<B>>) => Promise<unknown>;
}

export interface RouteDoc {
  method: string;
  url: string;
  auth: AuthKind;
  summary: string;
  tag: string;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  response?: z.ZodType;
  status: number;
  produces?: string;
}

export function issuesToFields(err: z.ZodError) {
  return err.issues.map((i) => ({
    path: i.path.map(String).join('.'),
    message: i.code === 'unrecognized_keys' ? `unknown field(s): ${i.keys.join(', ')}` : i.message,
  }));
}

export function parseOr400<T extends z.ZodType>(schema: T, data: unknown): z.output<T> {
  const r = schema.safeParse(data);
  if (!r.success) throw new ValidationError(issuesToFields(r.error));
  return r.data;
}

export class Router {
  readonly docs: RouteDoc[] = [];
  constructor(
    private readonly app: FastifyInstance,
    private readonly ctx: Ctx,
    private readonly cache: DeviceTokenCache,
  ) {}

  add<P extends z.ZodType = z.ZodUnknown, Q extends z.ZodType = z.ZodUnknown, B extends z.ZodType = z.ZodUnknown>(
    def: RouteDef<P, Q, B>,
  ): void {
    const status = def.status ?? 200;
    const doc: RouteDoc = {
      method: def.method,
      url: def.url,
      auth: def.auth,
      summary: def.summary,
      tag: def.tag,
      status,
    };
    if (def.params) doc.params = def.params;
    if (def.query) doc.query = def.query;
    if (def.body) doc.body = def.body;
    if (def.response) doc.response = def.response;
    if (def.produces) doc.produces = def.produces;
    this.docs.push(doc);
    const { ctx, cache } = this;
    this.app.route({
      method: def.method,
      url: def.url,
      handler: async (req, reply) => {
        const rawParams = (req.params ?? {}) as Record<string, string>;
        // A malformed id names nothing that could exist: answer 404, as for an unknown one.
        let params: unknown = rawParams;
        if (def.params) {
          const r = def.params.safeParse(rawParams);
          if (!r.success) throw apiError('PP_ERR_API_NOT_FOUND', { what: def.tag.replace(/s$/, '') });
          params = r.data;
        }
        const principal = await authenticate(ctx, cache, def.auth, req, rawParams);
        const query = def.query ? parseOr400(def.query, req.query ?? {}) : req.query;
        let body: unknown = undefined;
        if (def.body) {
          if (req.body === undefined || req.body === null || typeof req.body !== 'object' || Array.isArray(req.body)) {
            if (req.body === undefined && def.method !== 'GET') body = parseOr400(def.body, {});
            else throw new ValidationError([{ path: '', message: 'the body must be a JSON object' }]);
          } else body = parseOr400(def.body, req.body);
        }
        const out = await def.handler({ params, query, body, principal, req, reply } as RouteInput<
          z.output<P>,
          z.output<Q>,
          z.output<B>
        >);
        if (reply.sent) return reply;
        if (def.produces) return reply.code(status).type(def.produces).send(out);
        if (out === undefined) return reply.code(status === 200 ? 204 : status).send();
        return reply.code(status).send(out);
      },
    });
  }
}
