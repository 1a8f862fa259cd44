// `pocketproxy tunnel`: reads the config, builds the real parts (kernel TUN, nft runner, batched
// UDP socket, HTTP API client), starts the tunnel and returns its stop function. main.ts (the CLI)
// handles signals. Runs in its own process so the packet path never shares an event loop with the API.
import {
  addonAvailable,
  BatchUdpSocket,
  configureTun,
  createBatchUdpSocket,
  execRunner,
  openTun,
} from '@pocketproxy/tun';
import { createFirewall, createRunner } from '@pocketproxy/netfw';
import type { Config } from '../config.js';
import { createLogger } from '../log.js';
import { loadSecrets, relayKeyPath } from '../secrets.js';
import { createHttpApi, createOpenvpnApi } from './api-client.js';
import { loadOrCreateRelayKey } from './relay-key.js';
import type { DeviceTable } from './devices.js';
import { createTunnel } from './tunnel.js';
import { dgramUdpPort, type UdpPort } from './transport.js';
import { createTransparentProxy, type TransparentProxy } from './tproxy.js';
import { createSocks5Front, SOCKS5_FRONT_MARK } from './socks5-front.js';
import {
  OPENVPN_INTERFACE,
  OPENVPN_TUN_MTU,
  openvpnDecision,
  startOpenvpn,
  type OpenvpnServer,
} from '../openvpn/main.js';
import { startCarrier, type Carrier } from '../openvpn/carry.js';

export async function runTunnel(config: Config): Promise<() => Promise<void>> {
  const logger = createLogger(config);
  const token = config.internalToken ?? loadSecrets(config).internalToken;
  const key = loadOrCreateRelayKey(relayKeyPath(config));
  if (key.created) logger.info({ path: relayKeyPath(config) }, 'relay key created');
  if (!addonAvailable())
    throw new Error('pocketproxy tunnel: the TUN addon is not built (run npm run build -w @pocketproxy/tun)');
  const tun = openTun({
    name: config.tunnelInterface,
    maxPacket: Math.max(config.tunnelMtu, 2048),
    offload: config.offload,
  });
  // A read of pp0 that finds several pure ACKs of one flow queued sends the device only the newest (packages/tun
  // native/ack_filter.h): carried OpenVPN customers' ACKs and the relay's own sockets' (docs/benchmarks.md).
  tun.thinAcks(config.ackThinning);
  const openUdp = async (host: string, port: number): Promise<UdpPort> => {
    try {
      return createBatchUdpSocket({
        type: 'udp4',
        address: host,
        port,
        recvBufferSize: 8 << 20,
        sendBufferSize: 8 << 20,
        maxDatagram: 65535,
        offload: config.offload,
      });
    } catch (err) {
      logger.warn({ err: String(err) }, 'batched UDP socket unavailable; using node:dgram');
      return dgramUdpPort(host, port);
    }
  };
  // OpenVPN customers reach devices through the transparent proxy (only when OpenVPN is enabled).
  const ovpn = openvpnDecision(config);
  if (!ovpn.enabled && config.openvpn !== 'off') logger.warn({ reason: ovpn.reason }, 'customer OpenVPN is OFF');
  const tproxy: TransparentProxy | undefined = !ovpn.enabled
    ? undefined
    : createTransparentProxy({
        host: '0.0.0.0',
        port: config.tproxyPort,
        sockets: config.tproxySockets,
        splice: config.tproxySplice,
        fastOpen: config.tproxyFastOpen,
        logger,
      });
  // POCKETPROXY_SOCKS5_FRONT: SOCKS5 greetings answered on the relay (socks5-front.ts). It listens before the
  // firewall can redirect a port to it; one that cannot start (its port taken, no IP_TRANSPARENT) leaves
  // the SOCKS5 ports DNAT'ed to the devices instead of taking the tunnel down.
  // Credentials it can check itself come from the devices' forwarding (the tunnel's device table).
  let devices: DeviceTable | undefined;
  let front = config.socks5Front
    ? createSocks5Front({
        host: '0.0.0.0',
        port: config.socks5Front.port,
        logger,
        credentials: (ip, p, protocol) => devices?.frontCredentials(ip, p, protocol),
        earlyReply: config.socks5Front.earlyReply,
        httpEarlyReply: config.socks5Front.httpEarlyReply,
      })
    : undefined;
  try {
    await front?.start();
  } catch (err) {
    logger.error({ err: String(err) }, "SOCKS5 front did not start; SOCKS5 ports are DNAT'ed to the devices");
    await front?.close().catch(() => {});
    front = undefined;
  }
  const firewall = createFirewall({ run: createRunner(), logger: logger.child({ subsys: 'netfw' }) });
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
      ...(tproxy
        ? {
            openvpn: {
              subnet: config.openvpnSubnet,
              interface: OPENVPN_INTERFACE,
              tproxyPort: config.tproxyPort,
              dnsRedirectPort: config.openvpnDnsPort,
              ...(config.openvpnCarry ? { carried: true } : {}),
            },
          }
        : {}),
      ...(front && config.socks5Front
        ? {
            socks5Front: {
              port: config.socks5Front.port,
              mark: SOCKS5_FRONT_MARK,
              ...(config.socks5Front.http ? { http: config.socks5Front.http } : {}),
            },
            httpFrontAuto: { rttMs: config.socks5Front.httpRttMs, holdMs: config.socks5Front.httpHoldMs },
          }
        : {}),
    },
    relayKey: key,
    internalToken: token,
    api: createHttpApi({ baseUrl: config.apiUrl, token }),
    firewall: front ? front.wrap(firewall) : firewall,
    tun,
    configureTun: (cfg) => configureTun(cfg, execRunner),
    openUdp,
    // Packets to devices sealed and sent in C++ once JS has routed a device (datapath.ts).
    // POCKETPROXY_NATIVE_SEAL=0: every packet through JS (an escape hatch, and the A/B of docs/benchmarks.md).
    sealPath: (udp) => (udp instanceof BatchUdpSocket && config.nativeSeal ? tun.sealPath(udp) : undefined),
    // Frames from devices opened and written to the TUN in C++ on the same routes (datapath.ts).
    // POCKETPROXY_NATIVE_OPEN=0: every frame through JS.
    openPath: (udp) => (udp instanceof BatchUdpSocket && config.nativeOpen ? udp.openPath(tun) : undefined),
    logger,
    ...(front ? { socks5FrontStats: front.stats } : {}),
  });
  devices = tunnel.devices;
  let openvpn: OpenvpnServer | undefined;
  let carrier: Carrier | undefined;
  const stop = async () => {
    await openvpn?.stop();
    if (carrier) {
      tun.stampSyns(null);
      await carrier.stop().catch(() => {});
    }
    await tproxy?.close();
    await tunnel.stop();
    await front?.close();
  };
  try {
    await tunnel.start();
    await tproxy?.start();
    // OpenVPN customers of devices that read SYN stamps: their TCP is carried to the device (openvpn/carry.ts);
    // the tunnel stamps their SYNs on the way. Without it (or if the table cannot be made) the transparent
    // proxy serves everyone.
    if (tproxy && config.openvpnCarry) {
      try {
        carrier = await startCarrier({ run: createRunner(), iface: OPENVPN_INTERFACE, logger });
        // The device's segments (cut for the device tunnel) are cut again at each customer's own MSS on the way
        // back (the carry table keeps it; at most what tun1 carries): fewer packets through both openvpns.
        tun.stampSyns(config.openvpnSubnet, config.openvpnCarryMss ? { maxSegment: OPENVPN_TUN_MTU - 40 } : {});
      } catch (err) {
        logger.error(
          { err: String(err) },
          'OpenVPN customers cannot be carried to devices; the transparent proxy serves them',
        );
        carrier = undefined;
      }
    }
    if (tproxy)
      openvpn = await startOpenvpn({
        config,
        logger,
        binary: ovpn.binary!,
        clients: tproxy.clients,
        api: createOpenvpnApi({ baseUrl: config.apiUrl, token, timeoutMs: 5_000 }),
        ...(carrier ? { carry: { carrier, readsStamps: (ip: string) => tunnel.devices.readsStamps(ip) } } : {}),
      });
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
  return stop;
}
