// Lab service (runs inside `inet`): the classic echo service (RFC 862) on TCP and UDP, plus a UDP
// "whoami" port that answers {"ip","port"} of the sender — the UDP twin of the HTTP echo, to see
// which address a datagram arrived from (e.g. through a SOCKS5 UDP ASSOCIATE on a device).
// argv: --host IP --echo-port N --whoami-port N. Prints "ready echo ..." when listening.
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { exitWithParent } from './lifecycle.js';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '0.0.0.0' },
    'echo-port': { type: 'string', default: '7' },
    'whoami-port': { type: 'string', default: '8' },
  },
});
const host = values.host!;

const udpEcho = createSocket('udp4');
udpEcho.on('message', (msg, r) => udpEcho.send(msg, r.port, r.address));
const whoami = createSocket('udp4');
whoami.on('message', (_msg, r) => whoami.send(JSON.stringify({ ip: r.address, port: r.port }), r.port, r.address));
const tcp = createServer((s) => {
  s.on('error', () => s.destroy());
  s.pipe(s);
});

await Promise.all([
  new Promise<void>((r) => udpEcho.bind(Number(values['echo-port']), host, r)),
  new Promise<void>((r) => whoami.bind(Number(values['whoami-port']), host, r)),
  new Promise<void>((r) => tcp.listen(Number(values['echo-port']), host, r)),
]);
console.log(`ready echo ${host} tcp+udp=${values['echo-port']} whoami=${values['whoami-port']}`);
exitWithParent(() => {
  udpEcho.close();
  whoami.close();
  tcp.close();
});
