// Every error leaves as application/problem+json (RFC 9457) with a stable code and the request id.
// Internal messages never leave: a non-PPError becomes PP_ERR_API_INTERNAL and is logged at error.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isPPError, PPError } from '@pocketproxy/errors';
import { API_ERRORS, apiError } from '../errors.js';

export interface FieldError {
  path: string;
  message: string;
}

export class ValidationError extends PPError {
  constructor(readonly errors: FieldError[]) {
    super('PP_ERR_API_VALIDATION', API_ERRORS.PP_ERR_API_VALIDATION, {
      detail: errors.map((e) => `${e.path || '(body)'}: ${e.message}`).join('; '),
    });
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function sendProblem(
  req: FastifyRequest,
  reply: FastifyReply,
  e: PPError,
  headers: Record<string, string> = {},
) {
  const body: Record<string, unknown> = {
    type: `https://pocketproxy.dev/errors#${e.code}`,
    title: TITLES[e.status] ?? 'Error',
    status: e.status,
    code: e.code,
    detail: e.message,
    request_id: req.id,
  };
  if (e instanceof ValidationError) body.errors = e.errors;
  for (const [k, v] of Object.entries(headers)) reply.header(k, v);
  return reply.code(e.status).type('application/problem+json').send(body);
}

/** Maps Fastify's own errors (body parsing, size) onto our codes. */
function fromFastify(err: FastifyError): PPError | null {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return apiError('PP_ERR_API_BODY_TOO_LARGE', { limit: 262144 });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return apiError('PP_ERR_API_UNSUPPORTED_MEDIA');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return apiError('PP_ERR_API_BAD_JSON');
  }
  // A unique constraint that a concurrent request won: the same answer as the checks before it give.
  if ((err as { code?: string }).code === '23505')
    return apiError('PP_ERR_API_CONFLICT', {
      detail: 'it conflicts with an existing record (a name, username or port already in use)',
    });
  if (err instanceof SyntaxError || err.statusCode === 400) return apiError('PP_ERR_API_BAD_JSON');
  return null;
}

export function installProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const pp = isPPError(err) ? err : fromFastify(err);
    if (pp) {
      if (pp.status >= 500) req.log.error({ err, code: pp.code }, 'request failed');
      else req.log.info({ code: pp.code }, pp.message);
      const headers: Record<string, string> = {};
      if (pp.code === 'PP_ERR_API_RATE_LIMITED' || pp.code === 'PP_ERR_API_ROTATION_TOO_SOON')
        headers['retry-after'] = String(pp.params.retry_s ?? 60);
      return sendProblem(req, reply, pp, headers);
    }
    req.log.error({ err }, 'unhandled error');
    return sendProblem(req, reply, apiError('PP_ERR_API_INTERNAL'));
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0]!;
    // A page of the dashboard that does not exist gets the dashboard's own 404 page (HTML, status 404)
    // when the dashboard is served (@fastify/static decorates reply.sendFile); API paths keep problem+json.
    const sendFile = (reply as { sendFile?: (file: string) => FastifyReply }).sendFile;
    if (
      (req.method === 'GET' || req.method === 'HEAD') &&
      !/^\/(api|ws|healthz|metrics)(\/|$)/.test(path) &&
      typeof sendFile === 'function' &&
      !(req as { [NOT_FOUND_PAGE]?: true })[NOT_FOUND_PAGE]
    ) {
      (req as { [NOT_FOUND_PAGE]?: true })[NOT_FOUND_PAGE] = true; // 404.html missing: problem+json next time
      return sendFile.call(reply.code(404).header('cache-control', 'no-cache'), '404.html');
    }
    return sendProblem(
      req,
      reply,
      apiError('PP_ERR_API_ROUTE_NOT_FOUND', { method: req.method, url: path.slice(0, 200) }),
    );
  });
}

const NOT_FOUND_PAGE = Symbol('not-found page tried');
