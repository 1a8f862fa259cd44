// Just enough of the DNS wire format (RFC 1035 §4) for the lab's `*.test` server: parse one
// question, answer A records from a table, NODATA for other types of known names, NXDOMAIN
// otherwise. No compression on input names is expected (queries never use it).

export interface DnsQuestion {
  id: number;
  flags: number;
  name: string;
  qtype: number;
  qclass: number;
  /** Byte offset just past the question, i.e. the question section's raw bytes end here. */
  end: number;
}

export const QTYPE_A = 1;
export const QTYPE_AAAA = 28;
export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;

export function parseQuery(msg: Buffer): DnsQuestion | null {
  if (msg.length < 12) return null;
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  if (msg.readUInt16BE(4) < 1) return null;
  const labels: string[] = [];
  let off = 12;
  for (let guard = 0; guard < 128; guard++) {
    if (off >= msg.length) return null;
    const len = msg[off]!;
    off++;
    if (len === 0) break;
    if (len > 63 || off + len > msg.length) return null;
    labels.push(msg.subarray(off, off + len).toString('latin1'));
    off += len;
  }
  if (off + 4 > msg.length) return null;
  return {
    id,
    flags,
    name: labels.join('.').toLowerCase(),
    qtype: msg.readUInt16BE(off),
    qclass: msg.readUInt16BE(off + 2),
    end: off + 4,
  };
}

/** Build the answer to `query` (the raw query bytes, so the question is echoed verbatim). */
export function buildAnswer(
  query: Buffer,
  q: DnsQuestion,
  rcode: number,
  aRecords: readonly string[],
  ttl = 5,
): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  // QR=1, opcode copied, AA=1, RD copied, RA=1.
  const flags = 0x8000 | (q.flags & 0x7800) | 0x0400 | (q.flags & 0x0100) | 0x0080 | (rcode & 0xf);
  header.writeUInt16BE(flags, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(aRecords.length, 6);
  const question = query.subarray(12, q.end);
  const answers = aRecords.map((ip) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the question's name at offset 12
    rr.writeUInt16BE(QTYPE_A, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(ttl, 6);
    rr.writeUInt16BE(4, 10);
    for (const [i, o] of ip.split('.').entries()) rr.writeUInt8(Number(o), 12 + i);
    return rr;
  });
  return Buffer.concat([header, question, ...answers]);
}

export function errorAnswer(query: Buffer, rcode: number): Buffer {
  const header = Buffer.from(query.subarray(0, 12));
  if (header.length < 12) return Buffer.alloc(0);
  header.writeUInt16BE(0x8000 | (header.readUInt16BE(2) & 0x7900) | 0x0080 | rcode, 2);
  header.writeUInt16BE(0, 4);
  header.writeUInt16BE(0, 6);
  header.writeUInt16BE(0, 8);
  header.writeUInt16BE(0, 10);
  return header;
}

/** The whole server policy: what to answer for one query, given the name table. */
export function answerQuery(msg: Buffer, records: Readonly<Record<string, string>>): Buffer {
  const q = parseQuery(msg);
  if (!q) return errorAnswer(msg, RCODE_FORMERR);
  if ((q.flags & 0x7800) !== 0) return buildAnswer(msg, q, RCODE_NOTIMP, []);
  const name = q.name.replace(/\.$/, '');
  const ip = records[name];
  if (ip === undefined) return buildAnswer(msg, q, RCODE_NXDOMAIN, []);
  // Known name, other type (AAAA, MX, ...): NOERROR with no answers, so resolvers fall back to A.
  return buildAnswer(msg, q, RCODE_NOERROR, q.qtype === QTYPE_A || q.qtype === 255 ? [ip] : []);
}
