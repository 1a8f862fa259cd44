// Lab client: raw probes of a relay proxy port (HTTP or SOCKS5), run inside the customer namespace,
// for the answers curl cannot show (SOCKS5 auth status bytes, replies to malformed requests).
// argv: <mode> <host> <port> [args...]
//   raw <hex|->                   send bytes (hex; '-' reads the hex from stdin, for large inputs),
//                                 print what comes back (hex + text) and whether it closed
//   socks5-auth <user> <pass>     print {method, auth} status bytes
//   socks5-connect <user> <pass> <ipv4> <port> <payload>
//                                 greeting and credentials (each answer awaited), then a CONNECT with the
//                                 payload right behind it in one write; prints everything that came back,
//                                 how it ended, and `replyMs` (from the request to its reply's 10 bytes)
//   http-connect <user|-> <pass> <host:port> <payload>
//                                 a CONNECT head (with Basic Proxy-Authorization unless user is '-'), the
//                                 payload once the answer head is whole; prints as socks5-connect does,
//                                 `replyMs` from the head to its answer's blank line
// Prints one JSON line.
import * as net from 'node:net';
import { readFileSync } from 'node:fs';

const [mode, host, portS, ...rest] = process.argv.slice(2) as string[];
const out = (o: object) => {
  console.log(JSON.stringify(o));
  process.exit(0);
};
// socks5-connect and http-connect read a byte at a time. libuv (uv__stream_io) takes a read shorter than its
// buffer, in a wake-up whose poll said hang-up, for the end and reports EOF without reading again; so a
// reset that arrives while bytes ahead of it are still unread (the relay's early success, then its reset a
// device round trip later) would read as a close. A read that fills its buffer is followed by another,
// which returns the kernel's own verdict: 0 at a FIN, ECONNRESET at a reset.
const oneByte = Buffer.alloc(1);
const sock = net.connect({
  port: Number(portS),
  host: host!,
  onread:
    mode === 'socks5-connect' || mode === 'http-connect'
      ? {
          buffer: oneByte,
          callback: (n: number) => {
            sock.emit('data', Buffer.from(oneByte.subarray(0, n)));
            return true;
          },
        }
      : undefined,
});
let got = Buffer.alloc(0);
let closed = false;
sock.on('data', (d) => {
  got = Buffer.concat([got, d]);
});
sock.on('error', (e) => {
  if (!closed) out({ error: e.message, hex: got.toString('hex'), text: got.toString('latin1'), replyMs });
});
let sentAt = 0;
let replyMs: number | undefined;
const finish = () => out({ closed, hex: got.toString('hex'), text: got.toString('latin1'), replyMs });
sock.on('close', () => {
  closed = true;
  finish();
});
setTimeout(finish, 3000).unref();
sock.once('connect', () => {
  if (mode === 'raw') {
    sock.write(Buffer.from(rest[0] === '-' ? readFileSync(0, 'utf8').trim() : rest[0]!, 'hex'));
  } else if (mode === 'socks5-auth') {
    sock.write(Buffer.from([5, 1, 2]));
    sock.once('data', () => {
      const u = Buffer.from(rest[0]!),
        p = Buffer.from(rest[1]!);
      sock.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]));
    });
  } else if (mode === 'socks5-connect') {
    const [user, pass, ip, port, payload] = rest as [string, string, string, string, string];
    const u = Buffer.from(user),
      p = Buffer.from(pass);
    sock.write(Buffer.from([5, 1, 2]));
    const step = () => {
      if (got.length === 2) sock.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]));
      else if (got.length === 4 && sentAt === 0) {
        const port16 = Number(port);
        sentAt = performance.now();
        sock.write(
          Buffer.concat([
            Buffer.from([5, 1, 0, 1, ...ip.split('.').map(Number), port16 >> 8, port16 & 0xff]),
            Buffer.from(payload),
          ]),
        );
      } else if (got.length >= 14 && replyMs === undefined && sentAt > 0) replyMs = performance.now() - sentAt;
    };
    sock.on('data', step);
  } else if (mode === 'http-connect') {
    const [user, pass, target, payload] = rest as [string, string, string, string];
    const auth =
      user === '-' ? '' : `Proxy-Authorization: Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}\r\n`;
    sentAt = performance.now();
    sock.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth}\r\n`);
    const step = () => {
      if (replyMs !== undefined || got.indexOf('\r\n\r\n') < 0) return;
      replyMs = performance.now() - sentAt;
      if (got.subarray(0, 12).toString() === 'HTTP/1.1 200') sock.write(payload);
    };
    sock.on('data', step);
  } else out({ error: `unknown mode ${mode}` });
});
