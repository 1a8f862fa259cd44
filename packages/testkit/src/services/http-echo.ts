// Lab service (runs inside `inet`): the "internet" web server, over HTTP and HTTPS.
//   GET /anything   → JSON {ip, port, method, path, headers} (+ sni, alpn over HTTPS): who called
//   GET /ip         → the caller's IP as plain text
//   GET /bytes?n=N  → N bytes (streamed, with backpressure) for download tests
//   POST /upload    → reads the body, answers {"bytes": N} for upload tests
//   GET /sleep?ms=N → answers after N ms (≤ 60 s), for timeout tests
// argv: --host IP --http-port N [--https-port N --cert FILE --key FILE]. Prints "ready http ..." when listening.
import { createServer as createHttp, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { exitWithParent } from './lifecycle.js';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '0.0.0.0' },
    'http-port': { type: 'string', default: '80' },
    'https-port': { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
  },
});

const CHUNK = Buffer.alloc(64 * 1024, 0x61);
const MAX_BYTES = 2 ** 40;

function callerIp(req: IncomingMessage): string {
  return (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
}

function sendBytes(res: ServerResponse, n: number) {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(n) });
  let left = n;
  const pump = () => {
    while (left > 0) {
      const piece = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
      left -= piece.length;
      if (!res.write(piece)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  res.on('close', () => {
    left = 0;
  });
  pump();
}

function handle(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://lab');
  if (url.pathname === '/ip') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`${callerIp(req)}\n`);
    return;
  }
  if (url.pathname === '/bytes') {
    const n = Number(url.searchParams.get('n') ?? '0');
    if (!Number.isSafeInteger(n) || n < 0 || n > MAX_BYTES) {
      res.writeHead(400).end('bad n\n');
      return;
    }
    sendBytes(res, n);
    return;
  }
  if (url.pathname === '/upload') {
    let bytes = 0;
    req.on('data', (d: Buffer) => {
      bytes += d.length;
    });
    req.on('end', () =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify({ bytes })}\n`),
    );
    return;
  }
  if (url.pathname === '/sleep') {
    const ms = Math.min(Math.max(Number(url.searchParams.get('ms') ?? '0') || 0, 0), 60_000);
    const t = setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end(`slept ${ms}\n`), ms);
    res.on('close', () => clearTimeout(t));
    return;
  }
  const tls = 'encrypted' in req.socket ? (req.socket as TLSSocket) : null;
  const body: Record<string, unknown> = {
    ip: callerIp(req),
    port: req.socket.remotePort,
    method: req.method,
    path: req.url,
    headers: req.headers,
  };
  if (tls) {
    body.sni = (tls as TLSSocket & { servername?: string | false }).servername || null;
    body.alpn = tls.alpnProtocol || null;
  }
  // Drain any request body so keep-alive connections stay usable.
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`));
}

const servers: { close(): void }[] = [];
const ready: Promise<string>[] = [];
const http = createHttp(handle);
servers.push(http);
ready.push(
  new Promise((r) => http.listen(Number(values['http-port']), values.host, () => r(`http=${values['http-port']}`))),
);
if (values['https-port'] && values.cert && values.key) {
  const https = createHttps(
    { cert: readFileSync(values.cert), key: readFileSync(values.key), ALPNProtocols: ['http/1.1'] },
    handle,
  );
  servers.push(https);
  ready.push(
    new Promise((r) =>
      https.listen(Number(values['https-port']), values.host, () => r(`https=${values['https-port']}`)),
    ),
  );
}
void Promise.all(ready).then((what) => console.log(`ready http ${values.host} ${what.join(' ')}`));
exitWithParent(() => {
  for (const s of servers) s.close();
});
