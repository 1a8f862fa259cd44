// The tunnel's internal HTTP API on 127.0.0.1:pushPort, for the API process (push-routes.ts):
//   POST /push {device_id, message}      message = {kind:'command', id, type, payload?} | {kind:'control', type, payload?}
//   POST /sync {device_id}
//   GET  /status
// Bearer internal token on every route. node:http rather than Fastify: a handful of routes that
// must never share fate with the API's plugins, in a process that exists for the packet path.
import * as http from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';

export interface PushReply {
  status: number;
  body: unknown;
}

export type PushHandler = (body: unknown, url: URL) => PushReply | Promise<PushReply>;

export interface PushServer {
  readonly port: number;
  close(): Promise<void>;
}

export interface PushServerOptions {
  host: string;
  port: number;
  token: string;
  routes: Record<string, PushHandler>; // key: "POST /push"
  onError?: (err: unknown, route: string) => void;
}

const MAX_BODY = 64 * 1024;
const digest = (s: string) => createHash('sha256').update(s).digest();

export function badRequest(detail: string): PushReply {
  return { status: 400, body: { error: 'PP_ERR_TUNNEL_PUSH_INVALID', detail } };
}

export function startPushServer(o: PushServerOptions): Promise<PushServer> {
  const want = digest(`Bearer ${o.token}`);
  const server = http.createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    // Compare digests: constant time whatever the header's length.
    if (!timingSafeEqual(digest(req.headers.authorization ?? ''), want))
      return reply(401, { error: 'PP_ERR_TUNNEL_PUSH_UNAUTHENTICATED' });
    const url = new URL(req.url ?? '/', 'http://push.invalid');
    const key = `${req.method} ${url.pathname}`;
    const handler = o.routes[key];
    if (!handler) return reply(404, { error: 'PP_ERR_TUNNEL_PUSH_NOT_FOUND', detail: key });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reply(413, { error: 'PP_ERR_TUNNEL_PUSH_TOO_LARGE' });
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY) return;
      let body: unknown;
      if (size > 0) {
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return reply(400, { error: 'PP_ERR_TUNNEL_PUSH_INVALID', detail: 'body is not JSON' });
        }
      }
      Promise.resolve()
        .then(() => handler(body, url))
        .then(
          (r) => reply(r.status, r.body),
          (e) => {
            o.onError?.(e, key);
            reply(500, { error: 'PP_ERR_TUNNEL_PUSH_INTERNAL' });
          },
        );
    });
  });
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve({
        port: typeof addr === 'object' && addr ? addr.port : o.port,
        close: () =>
          new Promise<void>((res) => {
            server.close(() => res());
            server.closeAllConnections();
          }),
      });
    });
  });
}
