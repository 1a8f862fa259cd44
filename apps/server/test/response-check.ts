// Answers against the published contract: the response schemas of /api/openapi.json (JSON Schema 2020-12,
// generated from the zod schemas in packages/api-schema), validated with Ajv. Used by responses.test.ts
// (every route, real requests) and by the harness, which checks every answer of every API test.
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { buildOpenApi } from '../src/api/openapi.js';
import type { RouteDoc } from '../src/api/route.js';

export type OpenApiDoc = ReturnType<typeof buildOpenApi>;
interface Operation {
  responses: Record<string, { content?: Record<string, { schema: object }> }>;
}

const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
const compiled = new WeakMap<object, ValidateFunction>();

/** The OpenAPI path of a Fastify route URL: /api/devices/:id -> /api/devices/{id}. */
export const oaPath = (url: string) => url.replace(/:(\w+)/g, '{$1}');

export function operation(doc: OpenApiDoc, method: string, path: string): Operation | undefined {
  return (doc.paths[path] as Record<string, Operation> | undefined)?.[method.toLowerCase()];
}

/**
 * What is wrong with an answer of `method path` by the document: an undocumented status, a body where
 * none is documented or none where one is, a content type other than the documented one, or the JSON
 * schema's errors. [] when it conforms. `body` is the parsed JSON, or the raw text for non-JSON answers.
 */
export function violations(
  doc: OpenApiDoc,
  method: string,
  path: string,
  status: number,
  body: unknown,
  contentType?: string,
): string[] {
  const op = operation(doc, method, path);
  if (!op) return [`${method} ${path} is not in the document`];
  const documented = Object.keys(op.responses).filter((s) => s !== 'default');
  const r = op.responses[String(status)];
  if (!r) return [`status ${status} is not documented (documented: ${documented.join(', ')})`];
  const content = r.content ?? {};
  const types = Object.keys(content);
  if (types.length === 0)
    return body === undefined || body === '' ? [] : [`status ${status} documents no body, got one`];
  const json = content['application/json'];
  if (!json) {
    const type = types[0]!;
    if (contentType !== undefined && contentType.split(';')[0] !== type.split(';')[0])
      return [`content type ${contentType}, documented ${type}`];
    return typeof body === 'string' ? [] : [`expected a ${type} text body`];
  }
  if (contentType !== undefined && !contentType.startsWith('application/json'))
    return [`content type ${contentType}, documented application/json`];
  let validate = compiled.get(json.schema);
  if (!validate) {
    validate = ajv.compile(json.schema);
    compiled.set(json.schema, validate);
  }
  if (validate(body)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '(body)'} ${e.message}${paramsOf(e.params)}`);
}

const paramsOf = (p: Record<string, unknown>) =>
  'additionalProperty' in p ? `: '${String(p.additionalProperty)}'` : '';

const docs = new WeakMap<RouteDoc, OpenApiDoc>();
/**
 * The harness's answer check (Router checkAnswersWith): the answer, as it goes on the wire, against the
 * route's entry in the document the server publishes. Throws (and prints why: the test logs are silent)
 * on a mismatch, so the request fails with a 500 instead of sending what the contract does not allow.
 */
export function checkAnswer(route: RouteDoc, status: number, answer: unknown): void {
  let doc = docs.get(route);
  if (!doc) {
    doc = buildOpenApi([route], 'check');
    docs.set(route, doc);
  }
  const wire = route.produces
    ? typeof answer === 'string'
      ? answer
      : String(answer)
    : answer === undefined
      ? undefined
      : JSON.parse(JSON.stringify(answer));
  const bad = violations(doc, route.method, oaPath(route.url), status, wire);
  if (bad.length === 0) return;
  const msg = `${route.method} ${route.url} answered ${status} against its published schema:\n  ${bad.join('\n  ')}`;
  console.error(`response check: ${msg}`);
  throw new Error(msg);
}
