// Lab client: what a hostile (or merely greedy) customer does to a relay port, run inside the
// customer namespace. One mode per run; prints one JSON line (or, for `assoc`, a "ready" line first).
//
//   udp-spray <relay> <port> <targetIp> <targetPort> <count> [localAddress]
//       SOCKS5 UDP datagrams with no association of our own; answers counted for 1.5 s
//       -> {sent, answers}
//   assoc <relay> <port> <user> <pass> <targetIp> <targetPort> <holdMs> [localAddress]
//       authenticated UDP ASSOCIATE, one datagram to the target (prints {ready, bnd, reply, localPort}),
//       then holds the association open for holdMs -> {ok, held}
//   slow-heads <relay> <port> <count> <byteEveryMs> <maxMs> [localAddress] [firstHex]
//       count sockets that each send "G" (or the bytes of firstHex: 05ff, a SOCKS5 greeting announcing 255
//       methods) and then one byte every byteEveryMs (a head that never ends)
//       -> {opened, closedWithin1s, closed, stillOpen, lastCloseMs, answered408}
//   hold-connect <relay> <port> <protocol http|socks5> <user> <pass> <targetHost> <targetPort> <n> <holdMs>
//       n tunnels opened one after another and held -> {answers: ["200", "503", ...] | socks5 reply codes}
import * as net from 'node:net';
import * as dgram from 'node:dgram';

const [mode, ...a] = process.argv.slice(2) as string[];
const out = (o: object) => {
  console.log(JSON.stringify(o));
  process.exit(0);
};
const udpHeader = (ip: string, port: number) => {
  const h = Buffer.from([0, 0, 0, 1, ...ip.split('.').map(Number), 0, 0]);
  h.writeUInt16BE(port, 8);
  return h;
};

/** Reads exactly n bytes from a socket's stream. */
function reader(sock: net.Socket) {
  let buf = Buffer.alloc(0);
  const waiting: Array<() => void> = [];
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (const f of waiting.splice(0)) f();
  });
  sock.on('close', () => {
    for (const f of waiting.splice(0)) f();
  });
  return (n: number) =>
    new Promise<Buffer>((resolve, reject) => {
      const check = () => {
        if (buf.length >= n) {
          const b = buf.subarray(0, n);
          buf = buf.subarray(n);
          resolve(b);
        } else if (sock.destroyed) reject(new Error('closed'));
        else waiting.push(check);
      };
      check();
    });
}

/** SOCKS5 greeting + RFC 1929 auth; resolves with a reader for what follows. */
async function socks5Auth(sock: net.Socket, user: string, pass: string) {
  const need = reader(sock);
  sock.write(Buffer.from([5, 1, 2]));
  const m = await need(2);
  if (m[1] !== 2) throw new Error(`method ${m[1]}`);
  const u = Buffer.from(user),
    p = Buffer.from(pass);
  sock.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]));
  const s = await need(2);
  if (s[1] !== 0) throw new Error(`auth status ${s[1]}`);
  return need;
}

async function main(): Promise<void> {
  if (mode === 'udp-spray') {
    const [relay, port, tIp, tPort, count, local] = a;
    const s = dgram.createSocket('udp4');
    let answers = 0;
    s.on('message', () => answers++);
    await new Promise<void>((r) => s.bind(0, local, () => r()));
    const n = Number(count);
    for (let i = 0; i < n; i++) {
      s.send(Buffer.concat([udpHeader(tIp!, Number(tPort)), Buffer.from(`spray-${i}`)]), Number(port), relay);
      if (i % 50 === 49) await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 1500));
    return out({ sent: n, answers });
  }
  if (mode === 'assoc') {
    const [relay, port, user, pass, tIp, tPort, holdMs, local] = a;
    const sock = net.connect({ port: Number(port), host: relay, localAddress: local });
    await new Promise<void>((r, j) => {
      sock.once('connect', () => r());
      sock.once('error', j);
    });
    const need = await socks5Auth(sock, user!, pass!);
    sock.write(Buffer.from([5, 3, 0, 1, 0, 0, 0, 0, 0, 0]));
    const r = await need(10);
    if (r[1] !== 0) return out({ ok: false, error: `associate reply ${r[1]}` });
    const bndIp = [...r.subarray(4, 8)].join('.');
    const bndPort = r.readUInt16BE(8);
    const u = dgram.createSocket('udp4');
    await new Promise<void>((res) => u.bind(0, local, () => res()));
    const reply = await new Promise<string>((resolve) => {
      u.once('message', (msg) => resolve(msg.subarray(10).toString('utf8')));
      const send = () =>
        u.send(
          Buffer.concat([udpHeader(tIp!, Number(tPort)), Buffer.from('legit')]),
          bndPort,
          bndIp === '0.0.0.0' ? relay! : bndIp,
        );
      send();
      const t = setInterval(send, 500);
      u.once('message', () => clearInterval(t));
      setTimeout(() => {
        clearInterval(t);
        resolve('');
      }, 5000);
    });
    console.log(JSON.stringify({ ready: true, bnd: `${bndIp}:${bndPort}`, reply, localPort: u.address().port }));
    let closed = false;
    sock.on('close', () => (closed = true));
    await new Promise((res) => setTimeout(res, Number(holdMs)));
    return out({ ok: true, held: !closed });
  }
  if (mode === 'slow-heads') {
    const [relay, port, count, everyMs, maxMs, local, firstHex] = a;
    const first = firstHex ? Buffer.from(firstHex, 'hex') : Buffer.from('G');
    const t0 = Date.now();
    let opened = 0,
      closed = 0,
      closedWithin1s = 0,
      lastCloseMs = 0,
      answered408 = 0;
    const all: net.Socket[] = [];
    for (let i = 0; i < Number(count); i++) {
      const s = net.connect({ port: Number(port), host: relay, localAddress: local });
      all.push(s);
      let started = 0;
      let got = '';
      s.on('connect', () => {
        opened++;
        started = Date.now();
        s.write(first);
      });
      s.on('data', (d) => {
        got += d.toString('latin1');
      });
      s.on('error', () => {});
      s.on('close', () => {
        closed++;
        if (got.startsWith('HTTP/1.1 408')) answered408++;
        const at = Date.now();
        if (started && at - started < 1000) closedWithin1s++;
        lastCloseMs = Math.max(lastCloseMs, at - t0);
      });
      const t = setInterval(() => {
        if (!s.destroyed && s.writable) s.write('E');
      }, Number(everyMs));
      s.on('close', () => clearInterval(t));
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 20));
    }
    const deadline = t0 + Number(maxMs);
    while (Date.now() < deadline && closed < all.length) await new Promise((r) => setTimeout(r, 100));
    return out({ opened, closedWithin1s, closed, stillOpen: all.length - closed, lastCloseMs, answered408 });
  }
  if (mode === 'hold-connect') {
    const [relay, port, protocol, user, pass, tHost, tPort, n, holdMs] = a;
    const answers: string[] = [];
    for (let i = 0; i < Number(n); i++) {
      const sock = net.connect(Number(port), relay!);
      sock.on('error', () => {});
      await new Promise<void>((r) => sock.once('connect', () => r()));
      if (protocol === 'http') {
        const need = reader(sock);
        const basic = Buffer.from(`${user}:${pass}`).toString('base64');
        sock.write(
          `CONNECT ${tHost}:${tPort} HTTP/1.1\r\nHost: ${tHost}:${tPort}\r\nProxy-Authorization: Basic ${basic}\r\n\r\n`,
        );
        const line = await need(12).catch(() => Buffer.from('closed'));
        answers.push(line.toString('latin1').slice(9, 12));
      } else {
        try {
          const need = await socks5Auth(sock, user!, pass!);
          const h = Buffer.from(tHost!);
          const req = Buffer.concat([
            Buffer.from([5, 1, 0, 3, h.length]),
            h,
            Buffer.from([Number(tPort) >> 8, Number(tPort) & 255]),
          ]);
          sock.write(req);
          answers.push(String((await need(2))[1]));
        } catch (e) {
          answers.push(String((e as Error).message));
        }
      }
    }
    await new Promise((r) => setTimeout(r, Number(holdMs)));
    return out({ answers });
  }
  out({ error: `unknown mode ${mode}` });
}

main().catch((e: unknown) => out({ error: String(e) }));
setTimeout(() => out({ error: 'client timeout' }), 120_000).unref();
