// One way to declare a route: auth kind, zod schemas for params/query/body/response, and a handler
// that receives parsed input. The same declarations build /api/openapi.json, so the document cannot
// drift from what the server accepts; and a handler must return its response schema's output type,
// with no field the schema lacks, so it cannot drift from what the server answers either (checked
// against real answers by test/responses.test.ts).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
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

/**
 * A JSON answer with a status other than the route's `status` (one of its `statuses`): a rotation
 * still running (202), an unhealthy database (503). The body is typed and checked like any other.
 */
export class WithStatus<T> {
  constructor(
    readonly status: number,
    readonly body: T,
  ) {}
}
export const withStatus = <T>(status: number, body: T) => new WithStatus(status, body);

interface RouteBase<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  auth: AuthKind;
  summary: string;
  tag: string;
  params?: P;
  query?: Q;
  body?: B;
}
type Handler<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType, Out> = (
  input: RouteInput<z.output<P>, z.output<Q>, z.output<B>>,
) => Promise<Out>;

/**
 * A JSON route: the handler returns exactly what is serialised, so its type must be the response
 * schema's output type (what the OpenAPI document publishes, `io: 'output'`); nothing parses it on the
 * way out. `statuses`: other 2xx-5xx codes answered with the same schema through `withStatus`.
 */
export interface JsonRouteDef<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType, R extends z.ZodType>
  extends RouteBase<P, Q, B> {
  response: R;
  status?: number;
  statuses?: number[];
  produces?: never;
  handler: Handler<P, Q, B, Answer<R>>;
}
/** What a JSON route's handler may return: the response schema's output type, or it with another status. */
export type Answer<R extends z.ZodType> = z.output<R> | WithStatus<z.output<R>>;

type Elem<T> = T extends readonly (infer E)[] ? E : never;
/**
 * The fields of O (dotted paths, `[]` for array items) that T does not declare. Assignability alone lets
 * a handler return more than its schema (TypeScript checks excess properties of fresh literals only), and
 * the published schema says `additionalProperties: false`; this makes such a field a compile error.
 */
export type ExtraFields<O, T, Path extends string = ''> = O extends readonly (infer E)[]
  ? ExtraFields<E, Elem<T>, `${Path}[]`>
  : O extends object
    ? {
        [K in keyof O & string]-?: [Extract<T, object>] extends [never]
          ? never
          : K extends keyof Extract<T, object>
            ? ExtraFields<O[K], Extract<T, object>[K], `${Path}${Path extends '' ? '' : '.'}${K}`>
            : `${Path}${Path extends '' ? '' : '.'}${K}`;
      }[keyof O & string]
    : never;
type Unwrap<O> = O extends WithStatus<infer X> ? X : O;
type Returned<H> = H extends (...a: never[]) => Promise<infer O> ? Unwrap<O> : never;
/** Fails to typecheck, naming the fields, when the handler's answer has fields its schema lacks. */
type NoExtraFields<H, R extends z.ZodType> = [ExtraFields<Returned<H>, z.output<R>>] extends [never]
  ? unknown
  : { 'response fields its schema does not declare': ExtraFields<Returned<H>, z.output<R>> };
/** Raw responses (SVG, .ovpn, text) set their own content type. */
export interface RawRouteDef<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> extends RouteBase<P, Q, B> {
  produces: string;
  status?: number;
  response?: never;
  statuses?: never;
  handler: Handler<P, Q, B, string | Buffer>;
}
/** No body: 204. */
export interface EmptyRouteDef<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType>
  extends RouteBase<P, Q, B> {
  status: 204;
  response?: never;
  produces?: never;
  statuses?: never;
  handler: Handler<P, Q, B, void>;
}
export type RouteDef<
  P extends z.ZodType = z.ZodType,
  Q extends z.ZodType = z.ZodType,
  B extends z.ZodType = z.ZodType,
  R extends z.ZodType = z.ZodType,
> = JsonRouteDef<P, Q, B, R> | RawRouteDef<P, Q, B> | EmptyRouteDef<P, Q, B>;

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
  /** Other statuses answered with `response` (WithStatus). */
  statuses?: number[];
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

/**
 * Tests only: sees every answer of every route before it is sent (test/harness.ts checks it against the
 * route's schema in /api/openapi.json and throws on a mismatch). Unset in production: one branch.
 */
export type AnswerCheck = (route: RouteDoc, status: number, body: unknown) => void;
let answerCheck: AnswerCheck | undefined;
export function checkAnswersWith(check: AnswerCheck | undefined): void {
  answerCheck = check;
}

export class Router {
  readonly docs: RouteDoc[] = [];
  constructor(
    private readonly app: FastifyInstance,
    private readonly ctx: Ctx,
    private readonly cache: DeviceTokenCache,
  ) {}

  // One overload per kind of answer, the JSON one first. A handler that takes no arguments is typed
  // before the response schema is known, so a literal it answers needs `as const` (`{ ok: true as const }`).
  add<
    P extends z.ZodType = z.ZodUnknown,
    Q extends z.ZodType = z.ZodUnknown,
    B extends z.ZodType = z.ZodUnknown,
    R extends z.ZodType = z.ZodUnknown,
    H extends Handler<P, Q, B, Answer<R>> = Handler<P, Q, B, Answer<R>>,
  >(def: JsonRouteDef<P, Q, B, R> & { handler: H } & NoExtraFields<H, R>): void;
  add<P extends z.ZodType = z.ZodUnknown, Q extends z.ZodType = z.ZodUnknown, B extends z.ZodType = z.ZodUnknown>(
    def: RawRouteDef<P, Q, B>,
  ): void;
  add<P extends z.ZodType = z.ZodUnknown, Q extends z.ZodType = z.ZodUnknown, B extends z.ZodType = z.ZodUnknown>(
    def: EmptyRouteDef<P, Q, B>,
  ): void;
  add(def: RouteDef): void {
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
    if (def.statuses?.length) doc.statuses = def.statuses;
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
        let body: unknown;
        if (def.body) {
          if (req.body === undefined || req.body === null || typeof req.body !== 'object' || Array.isArray(req.body)) {
            if (req.body === undefined && def.method !== 'GET') body = parseOr400(def.body, {});
            else throw new ValidationError([{ path: '', message: 'the body must be a JSON object' }]);
          } else body = parseOr400(def.body, req.body);
        }
        const out: unknown = await (def.handler as Handler<z.ZodType, z.ZodType, z.ZodType, unknown>)({
          params,
          query,
          body,
          principal,
          req,
          reply,
        });
        if (reply.sent) return reply;
        const [code, answer] = out instanceof WithStatus ? [out.status, out.body as unknown] : [status, out];
        answerCheck?.(doc, code, answer);
        if (def.produces) return reply.code(code).type(def.produces).send(answer);
        if (!def.response) return reply.code(code).send();
        return reply.code(code).send(answer);
      },
    });
  }
}
