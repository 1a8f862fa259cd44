// createApi(ctx) builds the whole HTTP surface as a Fastify instance that tests drive with inject().
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Ctx } from '../context.js';
import { installProblemHandlers } from './problem.js';
import { DeviceTokenCache, issueJwt } from './auth.js';
import { Router, withStatus } from './route.js';
import { RateLimiter } from './ratelimit.js';
import { fleetRoutes } from './routes/fleet.js';
import { salesRoutes } from './routes/sales.js';
import { deviceRoutes } from './routes/device.js';
import { internalRoutes } from './routes/internal.js';
import { webhookRoutes } from './routes/webhooks.js';
import { fleetToolRoutes } from './routes/fleet-tools.js';
import { farmRoutes } from './routes/farm.js';
import { installWs } from './ws.js';
import { createMetrics } from './metrics.js';
import { buildOpenApi, OpenApiDocument } from './openapi.js';
import * as S from '@pocketproxy/api-schema';
import { checkLogin } from '../services/admins.js';
import { apiError } from '../errors.js';

export const VERSION = '0.1.0';
/** Failed logins one address may make in LOGIN_FAILURE_WINDOW_MS, across every email. */
export const LOGIN_FAILURES_PER_ADDRESS = 20;
export const LOGIN_FAILURE_WINDOW_MS = 15 * 60_000;

export interface ApiOptions {
  /** Static dashboard export to serve at `/`, if built. */
  dashboardDir?: string | undefined;
  /** Produces an .ovpn profile for a connection, or null when OpenVPN is off. */
  ovpnProfile?: (connectionId: string) => Promise<string | null>;
  logger?: boolean | object;
}

export async function createApi(ctx: Ctx, opts: ApiOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: ctx.log.child({ subsys: 'api' }) as unknown as FastifyBaseLogger,
    bodyLimit: 262_144,
    // Only the named proxies' X-Forwarded-For counts, read from the right (docs/operations.md).
    trustProxy: ctx.config.trustProxy.length ? [...ctx.config.trustProxy] : false,
    genReqId: () => `req_${Math.random().toString(36).slice(2, 12)}`,
    logController: new LogController({ disableRequestLogging: true }),
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
  });
  installProblemHandlers(app);
  // Every body is JSON: without this, Fastify's built-in text/plain parser hands a string to the
  // routes, which answer 400 'not an object' where 415 tells the client what is actually wrong.
  app.removeContentTypeParser('text/plain');
  const metrics = createMetrics(ctx);
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.http.observe({ method: req.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    if (reply.statusCode >= 500)
      req.log.error({ method: req.method, route, status: reply.statusCode }, 'request failed');
    done();
  });
  app.addHook('onSend', (_req, reply, payload, done) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    done(null, payload);
  });

  const cache = new DeviceTokenCache();
  const r = new Router(app, ctx, cache);
  const minute = 60_000;
  // Two login limits: every try per address and email (10/min), and failures per address whatever the
  // email (LOGIN_FAILURES_PER_ADDRESS per 15 min), so spraying many emails from one address stops too.
  // A try counts as a failure before the password is checked (parallel tries count) and is given back
  // when it succeeds.
  const loginLimit = new RateLimiter(10, minute, ctx.clock);
  const loginFailures = new RateLimiter(LOGIN_FAILURES_PER_ADDRESS, LOGIN_FAILURE_WINDOW_MS, ctx.clock);
  r.add({
    method: 'POST',
    url: '/api/auth/login',
    auth: 'public',
    tag: 'auth',
    summary: 'Sign in; answers a JWT for the Authorization header',
    body: S.LoginRequest,
    response: S.LoginResponse,
    handler: async ({ body, req }) => {
      loginLimit.hit(`${req.ip}|${body.email}`);
      try {
        loginFailures.hit(req.ip);
      } catch (e) {
        req.log.warn({ ip: req.ip }, 'login refused: too many failed logins from this address');
        throw e;
      }
      let admin: Awaited<ReturnType<typeof checkLogin>>;
      try {
        admin = await checkLogin(ctx, body.email, body.password);
      } catch (e) {
        loginFailures.undo(req.ip); // the database, not the password
        throw e;
      }
      if (!admin) {
        req.log.info({ ip: req.ip }, 'login failed');
        throw apiError('PP_ERR_API_LOGIN_FAILED');
      }
      loginFailures.undo(req.ip);
      return issueJwt(ctx, admin);
    },
  });
  fleetRoutes(r, ctx, { pairingCodes: new RateLimiter(30, minute, ctx.clock) }, (id) => cache.forget(id));
  salesRoutes(r, ctx, opts.ovpnProfile);
  deviceRoutes(
    r,
    ctx,
    {
      pair: new RateLimiter(ctx.config.pairingRatePerMin, minute, ctx.clock),
      rotateLink: new RateLimiter(ctx.config.rotateLinkRatePerMin, minute, ctx.clock),
      rotateLinkIp: new RateLimiter(ctx.config.rotateLinkRatePerMin * 10, minute, ctx.clock),
    },
    () => metrics.heartbeats.inc(),
  );
  webhookRoutes(r, ctx);
  fleetToolRoutes(r, ctx, opts.ovpnProfile !== undefined);
  // Enrollment: a farm host enrolls all its devices from one address, so its limit is ten times the
  // pairing one; refused tokens count against the pairing limit itself (the token is 256 random bits).
  farmRoutes(r, ctx, {
    enroll: new RateLimiter(ctx.config.pairingRatePerMin * 10, minute, ctx.clock),
    enrollRefused: new RateLimiter(ctx.config.pairingRatePerMin, minute, ctx.clock),
    tokens: new RateLimiter(30, minute, ctx.clock),
  });
  internalRoutes(r, ctx);

  // Operational routes go through the Router too, so /api/openapi.json lists every route there is.
  r.add({
    method: 'GET',
    url: '/healthz',
    auth: 'public',
    tag: 'meta',
    summary: 'Liveness and database reachability (503 when the database does not answer)',
    response: S.Health,
    statuses: [503],
    handler: async () => {
      try {
        await ctx.db.query('SELECT 1');
        return { status: 'ok' as const, database: ctx.db.kind, version: VERSION };
      } catch {
        return withStatus(503, { status: 'unavailable' as const, database: ctx.db.kind });
      }
    },
  });
  r.add({
    method: 'GET',
    url: '/metrics',
    auth: 'public',
    tag: 'meta',
    summary: 'Prometheus metrics (text exposition format)',
    produces: metrics.registry.contentType,
    handler: () => metrics.registry.metrics(),
  });
  let openapi: ReturnType<typeof buildOpenApi> | undefined;
  r.add({
    method: 'GET',
    url: '/api/openapi.json',
    auth: 'public',
    tag: 'meta',
    summary: 'This OpenAPI 3.1 document',
    response: OpenApiDocument,
    handler: async () => (openapi ??= buildOpenApi(r.docs, VERSION)),
  });
  await installWs(app, ctx, { inc: () => metrics.wsClients.inc(), dec: () => metrics.wsClients.dec() });

  if (opts.dashboardDir && existsSync(opts.dashboardDir)) {
    await app.register(fastifyStatic, {
      root: opts.dashboardDir,
      wildcard: true,
      index: ['index.html'],
      redirect: true,
      cacheControl: false,
      preCompressed: true,
    });
    // Browsers ask for /favicon.ico whatever the page links; the dashboard's icon answers it (a 404 there
    // is an error in every browser console).
    if (existsSync(join(opts.dashboardDir, 'icon.svg')))
      app.get('/favicon.ico', (_req, reply) => reply.type('image/svg+xml').sendFile('icon.svg'));
    app.addHook('onSend', (req, reply, payload, done) => {
      if (!req.url.startsWith('/api') && req.url.includes('/_next/static/'))
        reply.header('cache-control', 'public, max-age=31536000, immutable');
      done(null, payload);
    });
  }
  return app;
}
