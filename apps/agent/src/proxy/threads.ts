// A device's HTTP listeners served by more than one thread (`run --listener-threads N`).
//
//   main thread:       Listeners (every connection: SOCKS5 and its UDP, limited connections, the
//                      listening sockets), the tunnel's packet path, heartbeat, commands
//   listener thread k: a second Listeners with its own native engine, accepting from the main thread's
//                      listening sockets of the unlimited HTTP connections (an fd of each, dup'd there)
//
// Each new customer connection is taken by whichever thread's engine accepts it first, and that
// thread serves it to its end (head, credentials, dial, splice; a request the engine does not serve
// is adopted by that thread's JS). Why: the device's work per connection was one thread's, and on a
// host whose cores that thread cannot fill it bounds new connections per second (docs/benchmarks.md
// "one agent's listeners on more than one thread").
//
// What crosses the boundary is data: the ListenerSetup once, and at every change the main thread's
// view of the shared connections (their CredentialItems, verifiers only, as the main thread has them),
// the OpenVPN subnet and a new fd of each listener the thread does not have yet; back come the bytes
// each connection relayed (every second, and at the end: the main thread's UsageMeter, hence the
// heartbeat's usage) and the thread's counters (stats()). A change is applied on the threads before it
// is final on the main thread (Listeners.applyNow waits for sync): a revoked password, a disabled
// connection, a narrowed allow-list or a new limit ends the threads' sockets as it ends the main
// thread's, and a listener that closes is released by the threads first. A thread that fails ends the
// process (as the tunnel worker does): the service manager starts it again.
import { closeSync } from 'node:fs';
import { Worker, type MessagePort } from 'node:worker_threads';
import type { Logger } from 'pino';
import { ConnectionMeter, type AssociationPort } from '@pocketproxy/proxy';
import { SpliceEngine } from '@pocketproxy/tun';
import type { CredentialItem } from '../api-client.js';
import { CredentialStore } from '../credentials.js';
import { createLogger } from '../log.js';
import { UsageMeter, type UsageEntry } from '../ops/usage.js';
import { addStats, type ListenerPeers, type ListenerStats, type SharedListener } from './listeners.js';
import { buildListeners, threadEngine, type ListenerSetup } from './setup.js';
import { kernelTun, runTunnel, type TunnelSpec } from '../tunnel/host.js';
import type { TunnelClient } from '../tunnel/client.js';
import type { Transport } from '../tunnel/transport-policy.js';

/** A SOCKS5 customer's UDP association, or a thread's stand-in for one on the main thread. */
type Association = NonNullable<ReturnType<AssociationPort['register']>>;

/** How often a thread reports its connections' bytes and its counters (ms). */
export const REPORT_MS = 1000;

/** main thread -> listener thread */
export type ToListenerThread =
  | {
      t: 'sync';
      req: number;
      items: CredentialItem[];
      /** New fds of listeners this thread does not accept from yet, by connection id (its to close). */
      fds: [string, number][];
      openvpnSubnet: string | null;
    }
  | { t: 'cut' }
  | { t: 'stop'; req: number }
  /** The main thread's association `id` ended (or could not be made): the control connection goes. */
  | { t: 'udp-closed'; id: number }
  /**
   * Lane 0's session was presumed lost at `at` (Date.now) and it has a new one: the relay may have
   * restarted, so a lane whose session is older handshakes again now.
   */
  | { t: 'relay-lost'; at: number; transport: Transport }
  /** Lane 0 is back on UDP after a time on TCP: a lane on TCP goes back too. */
  | { t: 'udp-again' };

/** listener thread -> main thread */
export type FromListenerThread =
  | { t: 'done'; req: number; error?: string }
  | { t: 'report'; usage: UsageEntry[]; stats: ListenerStats }
  /** A SOCKS5 customer of this thread asked UDP ASSOCIATE: an association on the main thread's relay. */
  | { t: 'udp-open'; id: number; connectionId: string; clientIp: string; clientPort: number }
  | { t: 'udp-close'; id: number };

/** workerData of a listener thread (main.ts dispatches on ppRole). */
export interface ListenerWorkerData {
  readonly ppRole: 'listeners';
  readonly setup: ListenerSetup;
  readonly logLevel: string;
  readonly bindings: Record<string, unknown>;
  /** A lane's packet path (tunnel/host.ts TunnelSpec with its `lane`): a TUN queue and a session of its own. */
  readonly tunnel?: TunnelSpec;
}

/** What the main thread holds of a running thread. */
export interface ListenerThreadHandle {
  post(m: ToListenerThread): void;
  terminate(): Promise<unknown>;
}

/** Starts a listener thread; `onMessage` gets what it sends, `onFail` its failure or an end it was not asked for. */
export type StartListenerThread = (
  setup: ListenerSetup,
  onMessage: (m: FromListenerThread) => void,
  onFail: (e: Error) => void,
  tunnel?: TunnelSpec,
) => ListenerThreadHandle;

/** A worker thread of the agent's own entry (main.ts: ppRole 'listeners'). */
export function workerListenerThread(entry: string, logger: Logger): StartListenerThread {
  return (setup, onMessage, onFatal, tunnel) => {
    const data: ListenerWorkerData = {
      ppRole: 'listeners',
      setup,
      logLevel: logger.level,
      bindings: logger.bindings(),
      ...(tunnel ? { tunnel } : {}),
    };
    const w = new Worker(entry, { workerData: data });
    let ending = false;
    w.on('message', onMessage);
    w.on('error', (e) => onFatal(e));
    w.on('exit', (code) => {
      if (!ending) onFatal(new Error(`listener thread exited (${code})`));
    });
    return {
      post: (m) => w.postMessage(m),
      terminate: () => {
        ending = true;
        return w.terminate();
      },
    };
  };
}

/** The worker's entry (main.ts). */
export function runListenerThread(port: MessagePort, data: ListenerWorkerData): void {
  const lane = data.tunnel?.lane;
  const logger = createLogger({ level: data.logLevel }).child({
    ...data.bindings,
    thread: lane ? `lane ${lane.index}` : 'listeners',
  });
  // A lane: its own queue of the TUN and its own session with the relay, on this thread. Only packets
  // cross it (the relay sends commands on lane 0); a lane that cannot start ends the process as a
  // failing thread does (the service manager starts it again).
  const ran = data.tunnel
    ? runTunnel(data.tunnel, kernelTun, (m) => logger.warn({ kind: m.kind }, 'a message on a lane; ignored'), logger)
    : undefined;
  ran?.catch((err) => {
    logger.fatal({ err }, 'lane failed to start');
    process.exit(1);
  });
  // Lane 0's word that the relay was lost (its clock is Date.now, as this lane's client's), or that it is
  // back on UDP. A lane that failed to start has ended the process above: nothing to do then.
  const onLane = (fn: (client: TunnelClient) => void): void => {
    void ran?.then(
      (r) => fn(r.client),
      () => {},
    );
  };
  serveListenerThread(
    port,
    data.setup,
    logger,
    threadEngine(() => new SpliceEngine(), logger),
    async () => {
      const r = await ran;
      if (!r) return;
      await r.client.stop();
      r.tun.close();
    },
    {
      relayLost: (at, transport) => onLane((c) => c.relayLost(at, transport)),
      udpAgain: () => onLane((c) => c.udpAgain()),
    },
  );
}

/** A listener thread: a Listeners of its own over the main thread's listening sockets, driven by messages. */
export function serveListenerThread(
  port: Pick<MessagePort, 'on' | 'postMessage'>,
  setup: ListenerSetup,
  logger: Logger,
  engine: SpliceEngine | undefined,
  /** What else stops with the thread (a lane's packet path), after its listeners. */
  alsoStop?: () => Promise<void>,
  /**
   * A lane's: lane 0 had its session presumed lost at `at`, and has a new one over `transport` (message
   * 'relay-lost'); lane 0 is back on UDP (message 'udp-again').
   */
  lane?: { relayLost(at: number, transport: Transport): void; udpAgain(): void },
): { close(): Promise<void> } {
  const credentials = new CredentialStore();
  // Shared connections have no limits (Listeners' shareable): the meter counts, it never holds back.
  const usage = new UsageMeter(() => new ConnectionMeter({}));
  const given = new Map<string, number>();
  // SOCKS5 customers' UDP associations live on the main thread, where each connection's relay socket is
  // bound: a stand-in per association here, ended by either side.
  const associations = new Map<number, Association>();
  let nextAssociation = 1;
  const remoteUdp = (item: CredentialItem): AssociationPort => ({
    register: (o) => {
      const id = nextAssociation++;
      const a: Association = {
        close: () => {
          if (!associations.delete(id)) return;
          port.postMessage({ t: 'udp-close', id } satisfies FromListenerThread);
        },
      };
      associations.set(id, a);
      port.postMessage({
        t: 'udp-open',
        id,
        connectionId: item.connection_id,
        clientIp: o.clientIp,
        clientPort: o.clientPort ?? 0,
      } satisfies FromListenerThread);
      return a;
    },
    address: () => ({ address: setup.host, port: item.port, family: 'IPv4' }),
  });
  const listeners = buildListeners(setup, {
    credentials,
    usage,
    logger,
    engine,
    sharedFd: (item) => {
      const fd = given.get(item.connection_id);
      given.delete(item.connection_id);
      return fd;
    },
    remoteUdp,
  });
  const report = (): void => {
    port.postMessage({ t: 'report', usage: usage.drain(), stats: listeners.stats() } satisfies FromListenerThread);
  };
  const timer = setInterval(report, REPORT_MS);
  timer.unref();
  let turn: Promise<void> = Promise.resolve();
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    await listeners.close();
    report();
    await alsoStop?.();
  };
  port.on('message', (m: ToListenerThread) => {
    if (m.t === 'udp-closed') {
      const a = associations.get(m.id);
      associations.delete(m.id);
      a?.onClosed?.();
      return;
    }
    if (m.t === 'relay-lost') {
      lane?.relayLost(m.at, m.transport);
      return;
    }
    if (m.t === 'udp-again') {
      lane?.udpAgain();
      return;
    }
    if (m.t === 'cut') {
      const n = listeners.closeCustomerSockets();
      logger.info({ closed: n }, 'closed customer sockets after rotation');
      return;
    }
    turn = turn.then(async () => {
      let error: string | undefined;
      try {
        if (m.t === 'stop') await stop();
        else {
          for (const [id, fd] of m.fds) given.set(id, fd);
          credentials.replace('', m.items);
          listeners.setOpenvpnSubnet(m.openvpnSubnet);
          await listeners.apply();
        }
      } catch (e) {
        error = (e as Error).message;
      } finally {
        // An fd not taken (its connection already served here, or gone): this thread's to close.
        for (const fd of given.values()) closeQuietly(fd);
        given.clear();
      }
      port.postMessage({ t: 'done', req: m.req, ...(error ? { error } : {}) } satisfies FromListenerThread);
    });
  });
  return { close: () => (turn = turn.then(stop)) };
}

/**
 * The main thread's side: `count` threads, each told every change (Listeners.applyNow awaits sync).
 * Their usage goes to `credit`, their counters are summed in stats().
 */
export class ListenerThreads implements ListenerPeers {
  private readonly threads: {
    handle: ListenerThreadHandle;
    /** What it accepts from: the listener object by connection id, as last synced. */
    sent: Map<string, object>;
    stats?: ListenerStats;
    /** Its SOCKS5 customers' UDP associations on this thread's relays, by its id. */
    associations: Map<number, Association>;
  }[] = [];
  /** Where a thread's SOCKS5 customer's association is made (Listeners.udpRegister; serveUdp). */
  private udp: ((connectionId: string, clientIp: string, clientPort: number) => Association | null) | undefined;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private nextReq = 1;
  private closed = false;

  constructor(
    count: number,
    setup: ListenerSetup,
    start: StartListenerThread,
    private readonly credit: (entries: readonly UsageEntry[]) => void,
    onFatal: (e: Error) => void,
    private readonly log: Logger,
    /** With lanes: the packet path's spec, thread k running lane k+1 of count+1 (this thread lane 0). */
    tunnel?: TunnelSpec,
  ) {
    // A thread that fails fails what waits for it (nothing hangs on it), then the process (onFatal).
    const fail = (e: Error): void => {
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
      onFatal(e);
    };
    for (let i = 0; i < count; i++) {
      const slot: (typeof this.threads)[number] = {
        handle: undefined as never,
        sent: new Map(),
        associations: new Map(),
      };
      const lane = tunnel ? { ...tunnel, lane: { index: i + 1, count: count + 1 } } : undefined;
      slot.handle = start(setup, (m) => this.onMessage(slot, m), fail, lane);
      this.threads.push(slot);
    }
  }

  async sync(shared: readonly SharedListener[], openvpnSubnet: string | null): Promise<void> {
    if (this.closed) return;
    const items = shared.map((s) => s.item);
    await Promise.all(
      this.threads.map((th, k) => {
        const fds: [string, number][] = [];
        const sent = new Map<string, object>();
        try {
          for (const s of shared) {
            const id = s.item.connection_id;
            if (th.sent.get(id) !== s.listener) fds.push([id, s.dup(k)]);
            sent.set(id, s.listener);
          }
        } catch (e) {
          for (const [, fd] of fds) closeQuietly(fd);
          return Promise.reject(e);
        }
        th.sent = sent;
        return this.ask(th.handle, (req) => ({ t: 'sync', req, items, fds, openvpnSubnet }), fds);
      }),
    );
  }

  /** The main thread's Listeners, once built: the threads' SOCKS5 customers' associations are made there. */
  serveUdp(register: (connectionId: string, clientIp: string, clientPort: number) => Association | null): void {
    this.udp = register;
  }

  closeCustomerSockets(): void {
    for (const th of this.threads) th.handle.post({ t: 'cut' });
  }

  /**
   * Lane 0's session was presumed lost at `at` and it has a new one over `transport`: the lanes' threads
   * check theirs, and handshake again over the same transport.
   */
  relayLost(at: number, transport: Transport): void {
    for (const th of this.threads) th.handle.post({ t: 'relay-lost', at, transport });
  }

  /** Lane 0 is back on UDP after a time on TCP: the lanes' threads follow. */
  udpAgain(): void {
    for (const th of this.threads) th.handle.post({ t: 'udp-again' });
  }

  stats(): ListenerStats | undefined {
    let sum: ListenerStats | undefined;
    for (const th of this.threads) {
      if (!th.stats) continue;
      sum = sum ? addStats(sum, th.stats) : th.stats;
    }
    return sum;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const th of this.threads) {
      for (const a of th.associations.values()) a.close();
      th.associations.clear();
    }
    await Promise.all(
      this.threads.map(async (th) => {
        try {
          await this.ask(th.handle, (req) => ({ t: 'stop', req }), []);
        } catch (err) {
          this.log.warn({ err }, 'listener thread did not stop cleanly');
        }
        await th.handle.terminate();
      }),
    );
  }

  private ask(handle: ListenerThreadHandle, make: (req: number) => ToListenerThread, fds: [string, number][]) {
    const req = this.nextReq++;
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(req, { resolve, reject });
      try {
        handle.post(make(req));
      } catch (e) {
        this.waiting.delete(req);
        for (const [, fd] of fds) closeQuietly(fd);
        reject(e as Error);
      }
    });
  }

  private onMessage(slot: (typeof this.threads)[number], m: FromListenerThread): void {
    if (m.t === 'udp-open') {
      const a = this.closed ? null : (this.udp?.(m.connectionId, m.clientIp, m.clientPort) ?? null);
      if (!a) return void slot.handle.post({ t: 'udp-closed', id: m.id });
      slot.associations.set(m.id, a);
      a.onClosed = () => {
        if (slot.associations.delete(m.id)) slot.handle.post({ t: 'udp-closed', id: m.id });
      };
      return;
    }
    if (m.t === 'udp-close') {
      const a = slot.associations.get(m.id);
      slot.associations.delete(m.id);
      a?.close();
      return;
    }
    if (m.t === 'report') {
      if (m.usage.length > 0) this.credit(m.usage);
      slot.stats = m.stats;
      return;
    }
    const w = this.waiting.get(m.req);
    if (!w) return;
    this.waiting.delete(m.req);
    if (m.error) w.reject(new Error(`listener thread: ${m.error}`));
    else w.resolve();
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
