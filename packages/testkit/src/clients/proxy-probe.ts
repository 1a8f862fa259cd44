// Lab client: raw probes of a relay proxy port (HTTP or SOCKS5), run inside the customer namespace,
// for the answers curl cannot show (SOCKS5 auth status bytes, replies to malformed requests).
// argv: <mode> <host> <port> [args...]
//   raw <hex|->                   send bytes (hex; '-' reads the hex from stdin, for large inputs),
//                                 print what comes back (hex + text) and whether it closed
//   socks5-auth <user> <pass>     print {method, auth} status bytes
// Prints one JSON line.
import * as net from 'node:net';
import { readFileSync } from 'node:fs';

const [mode, host, portS, ...rest] = process.argv.slice(2) as string[];
const out = (o: object) => {
  console.log(JSON.stringify(o));
  process.exit(0);
};
const sock = net.connect(Number(portS), host!);
let got = Buffer.alloc(0);
let closed = false;
sock.on('data', (d) => {
  got = Buffer.concat([got, d]);
});
sock.on('error', (e) => {
  if (!closed) out({ error: e.message, hex: got.toString('hex'), text: got.toString('latin1') });
});
const finish = () => out({ closed, hex: got.toString('hex'), text: got.toString('latin1') });
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
  } else out({ error: `unknown mode ${mode}` });
});
