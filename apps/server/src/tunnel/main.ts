// `pocketproxy tunnel`: reads the config, builds the real parts (kernel TUN, nft runner, batched
// UDP socket, HTTP API client), starts the tunnel and returns its stop function. main.ts (the CLI)
// handles signals. Runs in its own process so the packet path never shares an event loop with the API.
import pino from 'pino';
import { addonAvailable, configureTun, createBatchUdpSocket, execRunner, getOriginalDst, openTun } from '@pocketproxy/tun';
import { createFirewall, createRunner } from '@pocketproxy/netfw';
import type { Config } from '../config.js';
import { loadSecrets, relayKeyPath } from '../secrets.js';
import { createHttpApi } from './api-client.js';
import { loadOrCreateRelayKey } from './relay-key.js';
import { createTunnel } from './tunnel.js';
import { dgramUdpPort, type UdpPort } from './transport.js';
import { createTransparentProxy, type TransparentProxy } from './tproxy.js';

/** The customer OpenVPN server's subnet and interface (generated config of `pocketproxy openvpn`). */
export const OPENVPN_SUBNET = '10.9.0.0/24';
export const OPENVPN_INTERFACE = 'tun1';

export async function runTunnel(config: Config): Promise<() => Promise<void>> {
  const logger = pino({ level: config.logLevel, redact: { paths: ['*.password', '*.psk', '*.token'], censor: '[redacted]' } });
  const token = config.internalToken ?? loadSecrets(config).internalToken;
  const key = loadOrCreateRelayKey(relayKeyPath(config));
  if (key.created) logger.info({ path: relayKeyPath(config) }, 'relay key created');
  if (!addonAvailable()) throw new Error('pocketproxy tunnel: the TUN addon is not built (run npm run build -w @pocketproxy/tun)');
  const tun = openTun({ name: config.tunnelInterface, maxPacket: Math.max(config.tunnelMtu, 2048) });
  const openUdp = async (host: string, port: number): Promise<UdpPort> => {
    try {
      return createBatchUdpSocket({ type: 'udp4', address: host, port, recvBufferSize: 8 << 20, sendBufferSize: 8 << 20, maxDatagram: 65535 });
    } catch (err) {
      logger.warn({ err: String(err) }, 'batched UDP socket unavailable; using node:dgram');
      return dgramUdpPort(host, port);
    }
  };
  // OpenVPN customers reach devices through the transparent proxy (only when OpenVPN is enabled).
  const tproxy: TransparentProxy | undefined =
    config.openvpn === 'off' ? undefined : createTransparentProxy({ host: '0.0.0.0', port: config.tproxyPort, logger, getOriginalDst });
  const tunnel = createTunnel({
    settings: {
      relayName: config.relayName,
      publicHost: config.publicHost,
      tunnelPort: config.tunnelPort,
      pushPort: config.pushPort,
      pushUrl: config.pushUrl,
      deviceSubnet: config.deviceSubnet,
      tunnelMtu: config.tunnelMtu,
      tunnelInterface: tun.name,
      ...(tproxy ? { openvpn: { subnet: OPENVPN_SUBNET, interface: OPENVPN_INTERFACE, tproxyPort: config.tproxyPort } } : {}),
    },
    extraRoutes: tproxy?.routes,
    relayKey: key,
    internalToken: token,
    api: createHttpApi({ baseUrl: config.apiUrl, token }),
    firewall: createFirewall({ run: createRunner(), logger: logger.child({ subsys: 'netfw' }) }),
    tun,
    configureTun: (cfg) => configureTun(cfg, execRunner),
    openUdp,
    logger,
  });
  const stop = async () => {
    await tproxy?.close();
    await tunnel.stop();
  };
  try {
    await tunnel.start();
    await tproxy?.start();
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
  return stop;
}
