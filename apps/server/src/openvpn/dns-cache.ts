// Answers of the customer DNS forwarder (dns.ts), kept per connection for their TTL.
//
// Without it every lookup of an OpenVPN customer is a CONNECT through the device and a DNS-over-TCP
// exchange with the resolver: 17-25 ms per name in the bench (docs/benchmarks.md, issue 13), paid
// again by every program that does not cache (curl, most CLI tools, many apps). A cached answer is
// the resolver's own answer to that question through that same connection, reused until its
// smallest TTL runs out, so nothing is answered that the device's resolver did not say. The key
// includes the connection (device, port, username): one customer's lookups never answer, or reveal
// by their speed, another's. Only plain answers are kept: one question, opcode QUERY, not truncated;
// NOERROR with answer records (for their smallest TTL), or NODATA / NXDOMAIN with an SOA in the
// authority section (for its negative TTL, RFC 2308); every TTL > 0, capped at `maxTtlS`.
//
// The parser reads untrusted bytes (a device's or a resolver's); it never throws and never reads
// past the buffer (fuzzed in openvpn.test.ts).
import type { ConnectionRoute } from '../tunnel/device-dial.js';

const HEADER = 12;

/** End offset of the name at `off` (labels or a compression pointer), or -1 when malformed. */
function skipName(b: Buffer, off: number): number {
  for (let hops = 0; hops < 128; hops++) {
    if (off >= b.length) return -1;
    const len = b[off]!;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2 <= b.length ? off + 2 : -1;
    if ((len & 0xc0) !== 0) return -1;
    off += 1 + len;
  }
  return -1;
}

/** The question section of a one-question standard query (the cache key's tail), or undefined. */
export function questionOf(q: Buffer): Buffer | undefined {
  if (q.length < HEADER + 5) return undefined;
  const flags = q.readUInt16BE(2);
  if (flags & 0x8000 || ((flags >> 11) & 0xf) !== 0 || q.readUInt16BE(4) !== 1) return undefined;
  const end = skipName(q, HEADER);
  if (end < 0 || end + 4 > q.length) return undefined;
  // Names are case-insensitive; the key is not (a different case is another entry: harmless).
  return q.subarray(HEADER, end + 4);
}

/**
 * Seconds an answer may be reused (min TTL of its answer records, capped; 0 = it must not be) and
 * where those records' TTL fields are (rewritten with the time left when the answer is served).
 */
export function cacheableTtl(a: Buffer, question: Buffer, maxTtlS: number): { ttl: number; at: number[] } {
  const no = { ttl: 0, at: [] };
  if (a.length < HEADER + question.length) return no;
  const flags = a.readUInt16BE(2);
  const rcode = flags & 0xf;
  // A response, opcode QUERY, not truncated, NOERROR or NXDOMAIN; one question, the one asked.
  if (!(flags & 0x8000) || ((flags >> 11) & 0xf) !== 0 || flags & 0x0200 || (rcode !== 0 && rcode !== 3)) return no;
  if (a.readUInt16BE(4) !== 1 || !a.subarray(HEADER, HEADER + question.length).equals(question)) return no;
  const answers = a.readUInt16BE(6);
  // Records with answers; without (NODATA, NXDOMAIN) the authority section's SOA gives the negative
  // TTL: min(its TTL, its MINIMUM) (RFC 2308 §5). No SOA: not kept.
  const negative = answers === 0;
  if (rcode === 3 && !negative) return no;
  const records = negative ? a.readUInt16BE(8) : answers;
  let off = HEADER + question.length;
  let ttl = maxTtlS;
  let soa = false;
  const at: number[] = [];
  for (let i = 0; i < records; i++) {
    off = skipName(a, off);
    if (off < 0 || off + 10 > a.length) return no;
    const type = a.readUInt16BE(off);
    const rdEnd = off + 10 + a.readUInt16BE(off + 8);
    if (rdEnd > a.length) return no;
    if (!negative || (type === 6 && rdEnd - (off + 10) >= 22)) {
      ttl = Math.min(ttl, a.readUInt32BE(off + 4), negative ? a.readUInt32BE(rdEnd - 4) : Number.POSITIVE_INFINITY);
      at.push(off + 4);
      soa ||= negative;
    }
    off = rdEnd;
  }
  if (negative && !soa) return no;
  return ttl > 0 ? { ttl, at } : no;
}

export interface DnsAnswerCache {
  /** A copy of the cached answer with the query's id, or undefined. */
  get(route: ConnectionRoute, query: Buffer, now?: number): Buffer | undefined;
  put(route: ConnectionRoute, query: Buffer, answer: Buffer, now?: number): void;
  readonly size: number;
}

export function createDnsAnswerCache(o: { maxEntries?: number; maxTtlS?: number } = {}): DnsAnswerCache {
  const maxEntries = o.maxEntries ?? 4096;
  const maxTtlS = o.maxTtlS ?? 300;
  const m = new Map<string, { answer: Buffer; stored: number; expires: number; at: number[] }>();
  const keyOf = (r: ConnectionRoute, question: Buffer) =>
    `${r.deviceVpnIp}|${r.proxyPort}|${r.username}|${question.toString('latin1')}`;
  return {
    get(route, query, now = Date.now()) {
      const question = questionOf(query);
      if (!question) return undefined;
      const key = keyOf(route, question);
      const e = m.get(key);
      if (!e) return undefined;
      if (e.expires <= now) {
        m.delete(key);
        return undefined;
      }
      const out = Buffer.from(e.answer);
      out.writeUInt16BE(query.readUInt16BE(0), 0);
      // The time left, as a resolver's cache answers: the customer never keeps a name longer than it may.
      const age = Math.floor((now - e.stored) / 1000);
      for (const at of e.at) out.writeUInt32BE(Math.max(1, e.answer.readUInt32BE(at) - age), at);
      return out;
    },
    put(route, query, answer, now = Date.now()) {
      const question = questionOf(query);
      if (!question) return;
      const { ttl, at } = cacheableTtl(answer, question, maxTtlS);
      if (ttl <= 0) return;
      const key = keyOf(route, question);
      m.delete(key);
      // Oldest first out (Map keeps insertion order): bounded memory whatever customers ask.
      while (m.size >= maxEntries) m.delete(m.keys().next().value!);
      const copy = Buffer.from(answer);
      // A negative answer's SOA carries the negative TTL itself, so the time left served is never
      // more than what the resolver allowed (its MINIMUM may be shorter than the record's TTL).
      if (copy.readUInt16BE(6) === 0) for (const o of at) copy.writeUInt32BE(ttl, o);
      m.set(key, { answer: copy, stored: now, expires: now + ttl * 1000, at });
    },
    get size() {
      return m.size;
    },
  };
}
