// `pocketproxy tunnel`: reads the config, builds the real parts (kernel TUN, nft runner, batched
// UDP socket, HTTP API client), starts the tunnel and returns its stop function. main.ts (the CLI)
// handles signals. Runs in its own process so the packet path never shares an event loop with the API.
import pino from 'pino';
import { addonAvailable, configureTun, createBatchUdpSocket, execRunner, openTun } from '@pocketproxy/tun';
import { createFirewall, createRunner } from '@pocketproxy/netfw';
import type { Config } from '../config.js';
import { loadSecrets, relayKeyPath } from '../secrets.js';
import { createHttpApi } from './api-client.js';
import { loadOrCreateRelayKey } from './relay-key.js';
import { createTunnel } from './tunnel.js';
import { dgramUdpPort, type UdpPort } from './transport.js';

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
    },
    relayKey: key,
    internalToken: token,
    api: createHttpApi({ baseUrl: config.apiUrl, token }),
    firewall: createFirewall({ run: createRunner(), logger: logger.child({ subsys: 'netfw' }) }),
    tun,
    configureTun: (cfg) => configureTun(cfg, execRunner),
    openUdp,
    logger,
  });
  try {
    await tunnel.start();
  } catch (err) {
    await tunnel.stop().catch(() => {});
    throw err;
  }
  return () => tunnel.stop();
}
