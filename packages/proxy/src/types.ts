// Types shared by every server in this package: the caller supplies authentication, dialing,
// UDP sockets and a logger; the servers report business facts as events.
import type { ProxySocket } from './socket.js';
import type * as dgram from 'node:dgram';
import type { PPError } from './errors.js';

/** What the server knows about a customer when it asks `authenticate`. */
export interface AuthContext {
  readonly protocol: 'http' | 'socks5';
  /** The customer's connection (an app may attach what it learns, e.g. the principal, to it). */
  readonly socket: ProxySocket;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localPort: number;
}

/** up = bytes from the customer, down = bytes to the customer. */
export type Direction = 'up' | 'down';

/**
 * Byte accounting and limits of one customer (see limits/meter.ts for the stock implementation).
 * Called on every byte path of a principal that has one: per slice of at most 16 KiB on TCP, per
 * datagram on UDP.
 */
export interface Meter {
  /**
   * The bytes were read and are being delivered. Returns 0 = go on; > 0 = ms to wait before reading
   * more in that direction (rate limit; a UDP datagram is dropped instead); -1 = byte budget spent:
   * end the customer connection and its target now.
   */
  take(dir: Direction, bytes: number): number;
  /**
   * Optional: bytes taken but not delivered after all (a policed UDP datagram), so a sender above
   * its rate still gets the rate through instead of paying for what was dropped.
   */
  refund?(dir: Direction, bytes: number): void;
  /**
   * Optional: true while no byte budget and no rate limit applies, so bytes may be counted after
   * they moved instead of before (a native relay, lean/handoff.ts, reports them once a second and
   * at its end; a budget set later still ends it at the next report).
   */
  unlimited?(): boolean;
}

export interface Principal {
  /** Opaque id chosen by the app (e.g. a connection id); carried into dial and events. */
  readonly principal: string;
  /** Applied to every byte this customer moves (tunnels, absolute-form bodies and answers, UDP). */
  readonly meter?: Meter;
  /**
   * The credentials were right but the customer is refused (disabled, expired, over its bandwidth,
   * too many connections). Answered at the request stage: HTTP with the error's status, SOCKS5 with
   * authentication success followed by the mapped reply code; then the connection closes.
   */
  readonly deny?: PPError;
}

export type Authenticate = (user: string, pass: string, ctx: AuthContext) => Promise<Principal | null>;

/** Accept customers without credentials: `true` (principal "anonymous") or a source check. */
export type AllowNoAuth = boolean | ((ctx: AuthContext) => Promise<Principal | null>);

export interface DialRequest {
  readonly host: string;
  readonly port: number;
  readonly principal: string;
  /**
   * Optional: called with each attempt's socket right after its connect() was issued, before it is
   * connected. What the caller writes there leaves the moment the connection is up, from the connect
   * callback itself, before the dial's promise settles; if the attempt fails it goes with the socket.
   * The HTTP proxy writes an absolute-form request's head here. A dial that never calls it is fine:
   * the caller then writes after the dial.
   */
  readonly onSocket?: (socket: ProxySocket) => void;
}

/**
 * Opens the egress TCP connection. Rejections should be PPErrors or errno errors (see dialer.ts).
 * A dial that can also hand out its steps without connecting (`prepare`) lets the native fronts
 * (front/connection.ts) connect natively while resolution, the destination policy and the egress binding
 * stay here.
 */
export type Dial = ((req: DialRequest) => Promise<ProxySocket>) & { prepare?: PrepareDial };

/** A dial without its connect: what to connect to, in order, and the egress socket for each attempt. */
export interface DialPlan {
  /** Resolved addresses that passed the destination policy, in the order to try them. */
  readonly attempts: readonly { readonly address: string; readonly family: 4 | 6 }[];
  readonly port: number;
  /** The dial's deadline over all attempts (Date.now() time). */
  readonly deadline: number;
  /** An unconnected egress socket's fd for one attempt (bound, pinned, Nagle off): the caller's to connect and close. Throws as the dial would. */
  openFd(family: 4 | 6): number;
}

export type PrepareDial = (req: Pick<DialRequest, 'host' | 'port'>) => Promise<DialPlan>;

/** Creates an egress UDP socket (the app binds it to the cellular interface). Not yet bound. */
export type UdpSocketFactory = (type: 'udp4' | 'udp6') => dgram.Socket;

/** Resolves a UDP destination and applies the destination policy. */
export type ResolveChecked = (host: string) => Promise<{ address: string; family: 4 | 6 }>;

/** pino-compatible subset. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface ConnectionClosedEvent {
  readonly principal: string;
  readonly protocol: 'http' | 'socks5' | 'udp';
  /** Bytes received from the customer (upload), including protocol handshakes. */
  readonly bytesIn: number;
  /** Bytes sent to the customer (download). */
  readonly bytesOut: number;
  readonly durationMs: number;
}

export interface RequestFailedEvent {
  readonly principal?: string;
  readonly protocol: 'http' | 'socks5' | 'udp';
  readonly code: string;
  readonly remoteAddress?: string;
}

export interface ProxyEvents {
  connectionClosed: [ConnectionClosedEvent];
  requestFailed: [RequestFailedEvent];
}
