import { z } from 'zod';
import { Problem } from '@pocketproxy/api-schema';
import type { RouteDoc } from './route.js';

const js = (s: z.ZodType, io: 'input' | 'output') =>
  z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Record<string, unknown>;

/**
 * The document's own schema, as GET /api/openapi.json declares it: the top level only (the paths are
 * whatever the routes are).
 */
export const OpenApiDocument = z.looseObject({
  openapi: z.literal('3.1.0'),
  info: z.looseObject({ title: z.string(), version: z.string() }),
  components: z.looseObject({}),
  paths: z.record(z.string(), z.record(z.string(), z.unknown())),
});

/** OpenAPI 3.1 from the route declarations. */
export function buildOpenApi(docs: RouteDoc[], version: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const d of docs) {
    const path = d.url.replace(/:(\w+)/g, '{$1}');
    const parameters: unknown[] = [];
    for (const [where, schema] of [
      ['path', d.params],
      ['query', d.query],
    ] as const) {
      if (!schema) continue;
      const j = js(schema, 'input') as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, s] of Object.entries(j.properties ?? {}))
        parameters.push({
          name,
          in: where,
          required: where === 'path' || (j.required ?? []).includes(name),
          schema: s,
        });
    }
    // A JSON route's response schema is its handler's return type (route.ts), for each status it answers.
    const responses: Record<string, unknown> = {};
    for (const status of [d.status, ...(d.statuses ?? [])])
      responses[String(status)] = d.produces
        ? { description: 'OK', content: { [d.produces]: { schema: { type: 'string' } } } }
        : d.response
          ? {
              description: status === d.status ? 'OK' : String(status),
              content: { 'application/json': { schema: js(d.response, 'output') } },
            }
          : { description: 'No content' };
    responses.default = {
      description: 'Problem',
      content: { 'application/problem+json': { schema: js(Problem, 'output') } },
    };
    const op: Record<string, unknown> = { summary: d.summary, tags: [d.tag], parameters, responses };
    if (d.body) op.requestBody = { required: true, content: { 'application/json': { schema: js(d.body, 'input') } } };
    if (d.auth !== 'public') op.security = [{ [d.auth]: [] }];
    const ops = paths[path] ?? {};
    ops[d.method.toLowerCase()] = op;
    paths[path] = ops;
  }
  return {
    openapi: '3.1.0' as const,
    info: {
      title: 'PocketProxy API',
      version,
      description: 'Errors are application/problem+json with a stable code; see docs/errors.md.',
    },
    components: {
      securitySchemes: {
        admin: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'from POST /api/auth/login' },
        device: { type: 'http', scheme: 'bearer', description: 'the auth_token returned by pairing' },
        internal: { type: 'http', scheme: 'bearer', description: 'POCKETPROXY_INTERNAL_TOKEN' },
      },
    },
    paths,
  };
}
