// Lab client: SOCKS5 UDP ASSOCIATE round trip (RFC 1928 §7), run inside the customer namespace.
//   customer --TCP--> relay:PORT (auth, UDP ASSOCIATE) ; customer --UDP--> BND.ADDR:BND.PORT --> target
// argv: <proxyHost> <proxyPort> <user> <pass> <targetIp> <targetPort> <payload> [timeoutMs]
// Prints one JSON line: {ok, bnd, reply, ms} or {ok:false, error}.
import * as net from 'node:net';
import * as dgram from 'node:dgram';

const [host, portS, user, pass, tIp, tPortS, payload, tmo] = process.argv.slice(2) as string[];
const timeoutMs = Number(tmo ?? 5000);
const done = (o: object) => {
  console.log(JSON.stringify(o));
  process.exit(0);
};
setTimeout(() => done({ ok: false, error: 'timeout' }), timeoutMs).unref();

const sock = net.connect(Number(portS), host!);
let buf = Buffer.alloc(0);
const need = (n: number) =>
  new Promise<Buffer>((resolve, reject) => {
    const check = () => {
      if (buf.length >= n) {
        const b = buf.subarray(0, n);
        buf = buf.subarray(n);
        sock.off('data', onData);
        resolve(b);
        return true;
      }
      return false;
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      check();
    };
    if (!check()) {
      sock.on('data', onData);
      sock.once('close', () => reject(new Error('control connection closed')));
    }
  });
sock.on('error', (e) => done({ ok: false, error: `tcp: ${e.message}` }));
sock.once('connect', async () => {
  try {
    sock.write(Buffer.from([5, 1, 2]));
    const m = await need(2);
    if (m[1] !== 2) return done({ ok: false, error: `method ${m[1]}` });
    const u = Buffer.from(user!),
      p = Buffer.from(pass!);
    sock.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]));
    const a = await need(2);
    if (a[1] !== 0) return done({ ok: false, error: `auth status ${a[1]}` });
    sock.write(Buffer.from([5, 3, 0, 1, 0, 0, 0, 0, 0, 0]));
    const r = await need(4);
    if (r[1] !== 0) return done({ ok: false, error: `associate reply ${r[1]}` });
    if (r[3] !== 1) return done({ ok: false, error: `atyp ${r[3]}` });
    const ab = await need(6);
    const bndIp = [...ab.subarray(0, 4)].join('.');
    const bndPort = ab.readUInt16BE(4);
    // An unspecified BND.ADDR means "the address you reached me on".
    const relayIp = bndIp === '0.0.0.0' ? host! : bndIp;
    const u4 = dgram.createSocket('udp4');
    const hdr = Buffer.from([0, 0, 0, 1, ...tIp!.split('.').map(Number), 0, 0]);
    hdr.writeUInt16BE(Number(tPortS), 8);
    const t0 = Date.now();
    u4.on('message', (msg) => {
      if (msg.length < 10 || msg[3] !== 1) return done({ ok: false, error: 'bad reply header' });
      const from = `${[...msg.subarray(4, 8)].join('.')}:${msg.readUInt16BE(8)}`;
      done({
        ok: true,
        bnd: `${bndIp}:${bndPort}`,
        from,
        reply: msg.subarray(10).toString('utf8'),
        ms: Date.now() - t0,
      });
    });
    const send = () => u4.send(Buffer.concat([hdr, Buffer.from(payload!)]), bndPort, relayIp);
    send();
    // UDP may be lost while conntrack entries settle: resend a few times, bounded by the timeout.
    setInterval(send, 700).unref();
  } catch (e) {
    done({ ok: false, error: String(e) });
  }
});
