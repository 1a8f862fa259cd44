// One absolute-form request forwarded to its origin over a socket we already dialed
// (customer -> device:8080 -> [this] -> target:80). node:http frames the upstream side; we write the
// answer to the customer ourselves because the customer socket belongs to our own parser.
import * as http from 'node:http';
import type * as net from 'node:net';
import { proxyError } from '../errors.js';
import type { Header } from './head.js';

/** RFC 9110 §7.6.1 hop-by-hop fields, plus the proxy-only ones we consume. */
export const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate',
  'te', 'trailer', 'transfer-encoding', 'upgrade',
]);

export function endToEndHeaders(headers: readonly Header[], connectionTokens: readonly string[]): Array<[string, string]> {
  const drop = new Set(connectionTokens);
  const out: Array<[string, string]> = [];
  for (const h of headers) if (!HOP_BY_HOP.has(h.lower) && !drop.has(h.lower) && h.lower !== 'host') out.push([h.name, h.value]);
  return out;
}

export interface ForwardParams {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  readonly method: string;
  readonly path: string;
  readonly headers: Array<[string, string]>;
  /** Whether the customer may get a chunked answer (HTTP/1.1). */
  readonly clientHttp11: boolean;
  readonly keepAlive: boolean;
}

export interface Forwarded {
  /** Write a body slice; false means "pause the customer until onDrain". */
  write(b: Buffer): boolean;
  end(): void;
  onDrain(cb: () => void): void;
  abort(): void;
  /** True once the answer's head went to the customer. */
  readonly responded: boolean;
  /** Settles when the answer was fully written: keepAlive tells whether the customer connection may serve another request. */
  readonly done: Promise<{ keepAlive: boolean }>;
}

function noBody(method: string, status: number): boolean {
  return method === 'HEAD' || (status >= 100 && status < 200) || status === 204 || status === 304;
}

export function forward(p: ForwardParams): Forwarded {
  const req = http.request({
    method: p.method,
    path: p.path,
    headers: p.headers.flat(),
    setHost: false,
    createConnection: () => p.upstream,
  });
  let responded = false;
  const done = new Promise<{ keepAlive: boolean }>((resolve, reject) => {
    req.on('error', (e) => {
      if (!responded) reject(e);
      else p.client.destroy();
    });
    // Interim answers (100 Continue, 103) are passed on as-is.
    req.on('information', (info) => {
      p.client.write(`HTTP/1.1 ${info.statusCode} ${info.statusMessage}\r\n\r\n`);
    });
    req.on('response', (res) => {
      responded = true;
      const status = res.statusCode ?? 502;
      const connTokens = (res.headers.connection ?? '').split(',').map((s) => s.trim().toLowerCase());
      const lines = [`HTTP/1.1 ${status} ${res.statusMessage ?? ''}`];
      const raw = res.rawHeaders;
      for (let i = 0; i + 1 < raw.length; i += 2) {
        const lower = raw[i]!.toLowerCase();
        if (HOP_BY_HOP.has(lower) || connTokens.includes(lower)) continue;
        if (lower === 'content-length' && res.headers['transfer-encoding'] !== undefined) continue;
        lines.push(`${raw[i]}: ${raw[i + 1]}`);
      }
      const empty = noBody(p.method, status);
      const hasLength = res.headers['content-length'] !== undefined && res.headers['transfer-encoding'] === undefined;
      const chunk = !empty && !hasLength && p.clientHttp11;
      const keepAlive = p.keepAlive && (empty || hasLength || chunk);
      if (chunk) lines.push('Transfer-Encoding: chunked');
      lines.push(keepAlive ? 'Connection: keep-alive' : 'Connection: close');
      // Head and the first body bytes (usually parsed from the same upstream segment) leave in one
      // write: with Nagle off they would be two segments, i.e. two sealed tunnel packets per answer.
      p.client.cork();
      p.client.write(lines.join('\r\n') + '\r\n\r\n');
      setImmediate(() => { if (p.client.writableCorked) p.client.uncork(); });
      res.on('aborted', () => p.client.destroy());
      res.on('error', () => p.client.destroy());
      if (empty) {
        res.resume();
        res.once('end', () => resolve({ keepAlive }));
        return;
      }
      res.on('data', (d: Buffer) => {
        const ok = chunk ? p.client.write(`${d.length.toString(16)}\r\n`) && p.client.write(d) && p.client.write('\r\n') : p.client.write(d);
        if (!ok) {
          res.pause();
          p.client.once('drain', () => res.resume());
        }
      });
      res.once('end', () => {
        if (!res.complete) return void p.client.destroy();
        if (chunk) p.client.write('0\r\n\r\n');
        resolve({ keepAlive });
      });
    });
  });
  done.catch(() => {});
  return {
    write: (b) => req.write(b),
    end: () => req.end(),
    onDrain: (cb) => req.once('drain', cb),
    abort: () => { req.destroy(); p.upstream.destroy(); },
    get responded() { return responded; },
    done: done.then((r) => { p.upstream.destroy(); return r; }, (e: unknown) => {
      p.upstream.destroy();
      throw (e as { code?: string }).code === 'HPE_INVALID_CONSTANT' || String((e as { code?: string }).code).startsWith('HPE_')
        ? proxyError('PP_ERR_PROXY_BAD_UPSTREAM_RESPONSE', {}, { cause: e }) : e;
    }),
  };
}
