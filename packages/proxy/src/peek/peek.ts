// First-bytes peek for the transparent proxy: which host does this intercepted TCP connection want?
//
//   customer(OpenVPN) -> relay tun -> REDIRECT :12345 -> [peek] -> connectVia(device:<connection port>) -> target
//
// Waits at most `timeoutMs` (server-first protocols send nothing), returns as soon as the SNI or
// Host header is known, and hands back every byte read so the caller replays them. The socket is
// left paused with no 'data' listener of ours.
import type { ProxySocket } from '../socket.js';
import { isPPError } from '@pocketproxy/errors';
import { findHeadEnd } from '../http/head.js';
import { looksLikeTls, parseClientHello, validHost } from './clienthello.js';

export interface PeekResult {
  readonly kind: 'tls' | 'http' | 'unknown';
  readonly host?: string;
  /** Port from an HTTP Host header, when it names one. */
  readonly port?: number;
  readonly buffered: Buffer;
}

export interface PeekOptions {
  readonly timeoutMs?: number;
  readonly maxBytes?: number;
}

type Verdict =
  | { done: false; kind: PeekResult['kind'] }
  | { done: true; kind: PeekResult['kind']; host?: string; port?: number };

const METHOD = /^[A-Z]{3,12} /;

/** Pure classification of the bytes so far (exported for tests and fuzzing). */
export function classifyFirstBytes(b: Buffer, maxBytes = 16 * 1024): Verdict {
  if (b.length === 0) return { done: false, kind: 'unknown' };
  if (looksLikeTls(b)) {
    try {
      const r = parseClientHello(b, maxBytes);
      if (r.state === 'need-more') return { done: false, kind: 'tls' };
      return r.sni ? { done: true, kind: 'tls', host: r.sni } : { done: true, kind: 'tls' };
    } catch (e) {
      if (!isPPError(e)) throw e;
      return { done: true, kind: 'unknown' };
    }
  }
  const start = b.toString('latin1', 0, Math.min(b.length, 13));
  if (!METHOD.test(start)) {
    // Could still become a method ("GE" so far)?
    return /^[A-Z]{1,12}$/.test(start) && b.length < 13
      ? { done: false, kind: 'unknown' }
      : { done: true, kind: 'unknown' };
  }
  const text = b.toString('latin1', 0, Math.min(b.length, maxBytes));
  const m = /\r\nhost:[ \t]*([^\r\n]*?)[ \t]*\r\n/i.exec(text);
  if (m) return { done: true, kind: 'http', ...splitHostPort(m[1]!) };
  let complete = false;
  try {
    complete = findHeadEnd(b, maxBytes) >= 0;
  } catch {
    complete = true;
  }
  return complete ? { done: true, kind: 'http' } : { done: false, kind: 'http' };
}

function splitHostPort(v: string): { host?: string; port?: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]+))(?::(\d{1,5}))?$/.exec(v);
  if (!m) return {};
  const host = m[1] ?? validHost(m[2]!);
  const port = m[3] ? Number(m[3]) : undefined;
  return { ...(host ? { host } : {}), ...(port && port <= 65535 ? { port } : {}) };
}

export function peekTarget(socket: ProxySocket, opts: PeekOptions = {}): Promise<PeekResult> {
  const timeoutMs = opts.timeoutMs ?? 300;
  const maxBytes = opts.maxBytes ?? 16 * 1024;
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    let last: Verdict = { done: false, kind: 'unknown' };
    const finish = (): void => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('end', finish);
      socket.removeListener('close', finish);
      socket.removeListener('error', finish);
      socket.pause();
      const { kind } = last;
      const host = last.done ? last.host : undefined;
      const port = last.done ? last.port : undefined;
      resolve({ kind, buffered: buf, ...(host ? { host } : {}), ...(port ? { port } : {}) });
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      last = classifyFirstBytes(buf, maxBytes);
      if (last.done || buf.length >= maxBytes) finish();
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on('data', onData);
    socket.once('end', finish);
    socket.once('close', finish);
    socket.once('error', finish);
    socket.resume();
  });
}
