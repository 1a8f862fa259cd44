// The relay's transparent proxy (createTransparentProxy, native engine) in a process of its own, for the
// `ovpn` phase's BENCH_OVPN_SOLO=1: the bench REDIRECTs one target address of the bare OpenVPN tunnel here,
// so our proxy and redsocks are measured behind the same openvpn server, and ours without the tunnel's thread.
// argv: port, a /24 whose every address maps to the route (the bare tunnel's clients), device VPN address,
// device proxy port, username, password.
import { createLogger } from '@pocketproxy/server/src/log.js';
import { createTransparentProxy } from '@pocketproxy/server/src/tunnel/tproxy.js';

const [port, net24, deviceVpnIp, proxyPort, username, password] = process.argv.slice(2);
if (!password || !/^\d+\.\d+\.\d+\.0\/24$/.test(net24 ?? ''))
  throw new Error('usage: port a.b.c.0/24 devIp devPort user password');
const tp = createTransparentProxy({
  host: '0.0.0.0',
  port: Number(port),
  logger: createLogger({ logLevel: 'warn' }),
  sockets: 'native',
});
const route = {
  deviceVpnIp: deviceVpnIp!,
  proxyPort: Number(proxyPort),
  protocol: 'http' as const,
  username: username!,
  password,
};
const prefix = net24!.slice(0, net24!.lastIndexOf('.'));
for (let i = 1; i < 255; i++) tp.clients.set(`${prefix}.${i}`, route);
await tp.start();
console.log(`tproxy-solo listening on ${tp.port}`);
// The engine's poll handle does not keep the loop alive (in the tunnel the transport does): a timer does.
const alive = setInterval(() => {}, 60_000);
process.on('SIGTERM', () => {
  clearInterval(alive);
  void tp.close().then(() => process.exit(0));
});
