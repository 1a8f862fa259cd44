// SOCKS5 UDP ASSOCIATE (RFC 1928 §7) on an authenticated control connection: register an
// association on the shared relay port (or open a private one), answer with where to send
// datagrams, and tie the association's life to the control connection in both directions.
import type { ProxySocket } from '../socket.js';
import { proxyError } from '../errors.js';
import { type ProxyServer, normalizeIp } from '../server-base.js';
import type { Logger, Meter, ResolveChecked, UdpSocketFactory } from '../types.js';
import type { AddressInfo } from 'node:net';
import { createUdpRelay, type RegisterOptions, type UdpRelay } from '../udp/relay.js';
import { REP } from './reply.js';
import { encodeReply } from './wire.js';

/**
 * Where a control connection's association is registered: a UdpRelay, or a stand-in for one that lives on
 * another thread (the agent's lanes: the relay's socket is bound on the main thread).
 */
export interface AssociationPort {
  register(o: RegisterOptions): { close(): void; onClosed?: () => void } | null;
  address(): AddressInfo;
}

export interface Socks5UdpOptions {
  /** Shared relay port (the agent's: the connection's own UDP port). Without it each association gets its own port. */
  readonly relay?: AssociationPort;
  /** BND.ADDR/BND.PORT to announce (the relay's public address, DNATed to the device). */
  readonly advertise?: { readonly address: string; readonly port?: number };
  /** For private per-association relays: egress sockets and destination policy. */
  readonly createSocket?: UdpSocketFactory;
  readonly resolve?: ResolveChecked;
}

export interface AssociateParams {
  /** The control connection. */
  readonly socket: ProxySocket;
  readonly udp: Socks5UdpOptions;
  readonly logger: Logger;
  readonly events: ProxyServer;
  readonly principal: string;
  readonly meter?: Meter;
  readonly clientIp: string;
  /** DST.PORT of the request: the port the client will send from (0 = it does not know yet). */
  readonly clientPort: number;
  /** Runs right before the success reply: the handshake is over. */
  readonly finishHandshake: () => void;
}

export async function associate(p: AssociateParams): Promise<void> {
  const { socket, udp } = p;
  let relayPort: AssociationPort | undefined = udp.relay;
  let own: UdpRelay | undefined;
  if (!relayPort) {
    // A private port on the address the control connection reached us on.
    own = createUdpRelay({
      bind: { address: normalizeIp(socket.localAddress) || '0.0.0.0', port: 0 },
      createSocket: udp.createSocket,
      resolve: udp.resolve,
      logger: p.logger,
    });
    own.on('requestFailed', (e) => p.events.emit('requestFailed', e));
    own.on('connectionClosed', (e) => p.events.emit('connectionClosed', e));
    await own.listen();
    relayPort = own;
  }
  const assoc = relayPort.register({
    principal: p.principal,
    clientIp: p.clientIp,
    clientPort: p.clientPort,
    meter: p.meter,
  });
  if (!assoc) {
    await own?.close();
    throw proxyError('PP_ERR_PROXY_NETWORK_UNREACHABLE', { host: 'udp', port: 0 });
  }
  if (socket.destroyed) {
    assoc.close();
    await own?.close();
    return;
  }
  p.finishHandshake();
  const bound = relayPort.address();
  const host =
    udp.advertise?.address ?? (isUnspecified(bound.address) ? normalizeIp(socket.localAddress) : bound.address);
  socket.write(encodeReply(REP.SUCCEEDED, host, udp.advertise?.port ?? bound.port));
  // RFC 1928 §7: the association lives exactly as long as the TCP control connection; and when the
  // association ends first (budget spent, relay closed) the client learns it by the control closing.
  assoc.onClosed = () => socket.destroy();
  socket.on('data', () => {}); // nothing more is expected; keep reading so FIN/RST are seen
  socket.on('end', () => socket.end());
  socket.once('close', () => {
    assoc.close();
    void own?.close();
  });
  socket.setTimeout(0);
  socket.resume();
}

function isUnspecified(a: string): boolean {
  return a === '0.0.0.0' || a === '::';
}
