// A device's listeners built from data: the one place that turns the run's settings and the tunnel's
// parameters into Listeners with their egress, handshake guard and native engine. The agent's main
// thread builds its own here (agent.ts bringUp), and each listener thread (threads.ts) builds its
// second set here from the same ListenerSetup, which is plain data so that it crosses to a worker.
import type { Logger } from 'pino';
import {
  addonAvailable,
  openTcpFd,
  openTcpSocket,
  type OpenTcpSocketOptions,
  type SpliceEngine,
} from '@pocketproxy/tun';
import { createHandoff, createHandshakeGuard, LeanSocket, type HandoffStats } from '@pocketproxy/proxy';
import type { CredentialItem } from '../api-client.js';
import type { CredentialStore } from '../credentials.js';
import type { UsageMeter } from '../ops/usage.js';
import { createEgress } from './egress.js';
import { Listeners, type ListenerLimits, type ListenerPeers, type ListenersOptions } from './listeners.js';
import { useLeanSockets } from './sockets.js';

/** Everything but the parts with state (credentials, usage, engine): crosses to a listener thread as is. */
export interface ListenerSetup {
  /** The tunnel address every listener binds (vpn_ip), the relay's tunnel address and its public host. */
  readonly host: string;
  readonly relayAddress?: string;
  readonly relayHost: string;
  readonly egress: {
    readonly interface?: string;
    readonly tunnelSubnet: string;
    readonly allowPrivate: boolean;
    readonly dnsCacheMs?: number;
    /** Loopback destinations other than this host's own addresses (tests: a target on 127.0.0.2). */
    readonly allowLoopback?: boolean;
  };
  readonly limits: ListenerLimits;
  /**
   * Unauthenticated connections allowed per customer address and in all, on this thread (the device's
   * caps divided among its listener threads, so that all of them together hold no more than the caps).
   */
  readonly caps: { readonly maxPerAddress: number; readonly maxTotal: number };
  /** Established tunnels spliced in the kernel / listeners accepted by the native engine (RunConfig's). */
  readonly splice: boolean;
  readonly front: boolean;
}

export interface ListenerParts {
  readonly credentials: CredentialStore;
  readonly usage: UsageMeter;
  readonly logger: Logger;
  readonly now?: () => number;
  /** This thread's native engine (undefined: no addon; tunnels pumped and listeners accepted in JS). */
  readonly engine: SpliceEngine | undefined;
  /** Listener threads accepting from this thread's HTTP listeners too (main thread). */
  readonly peers?: ListenerPeers;
  /** The device's lanes (main thread, with peers): the shared listeners are lane groups (ListenersOptions.lanes). */
  readonly lanes?: number;
  /** A listener thread: accept from the main thread's listener of this connection (its fd) instead of opening one. */
  readonly sharedFd?: (item: CredentialItem) => number | undefined;
  /** A listener thread: its SOCKS5 customers' UDP associations are made on the main thread (threads.ts). */
  readonly remoteUdp?: ListenersOptions['remoteUdp'];
}

/** Caps per thread: the device's divided among `threads`, rounded up. */
export function capsPerThread(
  maxPerAddress: number,
  maxTotal: number,
  threads: number,
): { maxPerAddress: number; maxTotal: number } {
  return { maxPerAddress: Math.ceil(maxPerAddress / threads), maxTotal: Math.ceil(maxTotal / threads) };
}

export function buildListeners(s: ListenerSetup, p: ListenerParts): Listeners {
  const lean = useLeanSockets();
  const log = p.logger;
  const egress = createEgress({
    interface: s.egress.interface,
    tunnelSubnet: s.egress.tunnelSubnet,
    allowPrivate: s.egress.allowPrivate,
    allowLoopback: s.egress.allowLoopback,
    dnsCacheMs: s.egress.dnsCacheMs,
    openSocket: lean ? leanEgressSocket : egressSocket,
    openFd: lean ? egressFd : undefined,
    lean,
    logger: log,
  });
  const engine = lean && s.splice ? p.engine : undefined;
  let handoff: { relay: ReturnType<typeof createHandoff>; stats: HandoffStats } | undefined;
  if (engine) {
    const stats: HandoffStats = { handedOff: 0, declined: 0 };
    handoff = { relay: createHandoff(engine, stats), stats };
  }
  let front: SpliceEngine | undefined;
  if (engine && s.front) {
    // The engine's caps on unauthenticated connections are the handshake guard's (counted apart from it).
    engine.frontInit({ ...s.caps, decideMs: s.limits.headTimeoutMs + 15_000 });
    front = engine;
  }
  return new Listeners({
    lean,
    handoff,
    front,
    host: s.host,
    relayAddress: s.relayAddress,
    relayHost: s.relayHost,
    credentials: p.credentials,
    usage: p.usage,
    egress,
    // The relay's transparent proxy opens every OpenVPN customer's connections from one address.
    guard: createHandshakeGuard({
      ...s.caps,
      exempt: (ip) => ip === s.relayAddress,
    }),
    limits: s.limits,
    logger: log,
    now: p.now,
    peers: p.peers,
    lanes: p.lanes,
    sharedFd: p.sharedFd,
    remoteUdp: p.remoteUdp,
  });
}

/** The native engine, made once per thread (its handles do not keep the loop alive); undefined without the addon. */
export function threadEngine(make: () => SpliceEngine, log: Logger): SpliceEngine | undefined {
  if (engineOfThisThread !== null) return engineOfThisThread;
  engineOfThisThread = undefined;
  if (!addonAvailable()) return undefined;
  try {
    engineOfThisThread = make();
  } catch (err) {
    log.warn({ err }, 'native relay unavailable; tunnels are pumped in JS');
  }
  return engineOfThisThread;
}
let engineOfThisThread: SpliceEngine | undefined | null = null;

/**
 * Target connections: bound with IP_BIND_ADDRESS_NO_PORT (with a plain bind to the egress address,
 * each new connection searches for a local port no socket holds, TIME_WAIT included, and that
 * search slows to a crawl past ~10,000 recent connections) and in delayed-ACK mode from
 * the start, so the handshake's last ACK rides the request and our FIN carries the ACK of the
 * answer. Pinned to the egress interface (SO_BINDTODEVICE) when the egress passes `device`; a
 * socket that cannot be pinned throws (no unpinned fallback). Without a device, if the addon is
 * missing or refuses: net.connect's own socket.
 */
function egressOpener<T>(open: (family: 4 | 6, localAddress: string | undefined, o: OpenTcpSocketOptions) => T) {
  return (family: 4 | 6, localAddress: string | undefined, device?: string): T | undefined => {
    try {
      return open(family, localAddress, { quietAck: true, device });
    } catch (e) {
      if (device !== undefined) throw e;
      return undefined;
    }
  };
}
const egressSocket = egressOpener(openTcpSocket);

/** egressSocket as a bare fd, for the front's native connect (the same binding and pinning). */
function egressFd(family: 4 | 6, localAddress: string | undefined, device: string | undefined): number {
  return openTcpFd(family, localAddress, { quietAck: true, device });
}

/** egressSocket as a LeanSocket (proxy/sockets.ts). */
const leanEgressSocket = egressOpener((family, localAddress, o) =>
  LeanSocket.fromFd(openTcpFd(family, localAddress, o)),
);
