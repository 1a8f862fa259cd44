// Test doubles for the tunnel: a fake API (real HTTP on 127.0.0.1:0, the internal routes the tunnel
// calls, in memory), a device played by the protocol Initiator over real UDP or TCP on loopback,
// and a harness that builds createTunnel with FakeTun, netfw's fake runner and a movable clock.
import * as http from 'node:http';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import pino from 'pino';
import {
  createInitiator,
  type Lane,
  encodeKey,
  generateKeyPair,
  generatePsk,
  TcpFrameDecoder,
  encodeTcpFrame,
  type Initiator,
  type JsonMessage,
  type KeyPair,
  type TunnelTimers,
} from '@pocketproxy/protocol';
import { createFirewall, createFakeRunner, type FakeRunner } from '@pocketproxy/netfw';
import { FakeTun, RecordingRunner, buildIPv4Udp, type OpenPath, type SealPath } from '@pocketproxy/tun';
import { createTunnel, type Tunnel, type TunnelSettings } from '../../src/tunnel/tunnel.js';
import { createHttpApi, type ForwardedConnection } from '../../src/tunnel/api-client.js';
import { dgramUdpPort } from '../../src/tunnel/transport.js';

export const TOKEN = 'test-internal-token-0123456789abcdef';

export interface FakeDeviceRecord {
  device_id: string;
  keys: KeyPair;
  psk: Buffer;
  vpn_ip: string;
  /** The port of the device's first connection (HTTP, always there), whose forwarding connectDevice waits for. */
  port: number;
  connections: ForwardedConnection[];
}

export interface ApiCall {
  method: string;
  path: string;
  body: any;
}

export async function startFakeApi(devices: FakeDeviceRecord[]) {
  const calls: ApiCall[] = [];
  let failConnected = 0;
  const find = (id: string) => devices.find((d) => d.device_id === id);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url!, 'http://x');
      const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
      calls.push({ method: req.method!, path: url.pathname, body });
      const send = (status: number, b: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(b));
      };
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return send(401, { error: 'unauthenticated' });
      switch (`${req.method} ${url.pathname}`) {
        case 'POST /api/internal/relays/register':
          return send(200, { relay_id: 'rly_test' });
        case 'GET /api/internal/tunnel/peers':
          return send(200, {
            items: devices.map((d) => ({
              device_id: d.device_id,
              public_key: encodeKey(d.keys.publicKey),
              psk: encodeKey(d.psk),
              vpn_ip: d.vpn_ip,
            })),
          });
        case 'POST /api/internal/vpn/connected': {
          if (failConnected > 0) {
            failConnected--;
            return send(503, { error: 'unavailable' });
          }
          const d = find(body.device_id);
          if (!d) return send(404, {});
          return send(200, {
            vpn_ip: d.vpn_ip,
            connections: d.connections,
            credentials: [{ connection_id: 'con_1', username: 'u', verifier: 'v' }],
          });
        }
        case 'POST /api/internal/vpn/disconnected':
          return send(200, { ok: true });
        case 'POST /api/internal/tunnel/forwarding': {
          const out: Record<string, unknown> = {};
          for (const id of body.device_ids as string[]) {
            const d = find(id);
            if (d) out[id] = { vpn_ip: d.vpn_ip, connections: d.connections };
          }
          return send(200, { devices: out });
        }
        case 'POST /api/internal/usage':
          return send(200, { recorded: body.samples.length });
        default:
          return send(404, {});
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    devices,
    failNextConnected(n: number) {
      failConnected = n;
    },
    callsTo: (path: string) => calls.filter((c) => c.path === path),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Device n with an HTTP connection on 30000 + 3n, then `connections`. */
export function makeDevice(n: number, connections: ForwardedConnection[] = []): FakeDeviceRecord {
  const port = 30000 + 3 * n;
  const first: ForwardedConnection = {
    connection_id: `con_dev${n}`,
    protocol: 'http',
    port,
    allow_from: [],
    enabled: true,
  };
  return {
    device_id: `dev_${n}`,
    keys: generateKeyPair(),
    psk: generatePsk(),
    vpn_ip: `192.168.255.${n + 1}`,
    port,
    connections: [first, ...connections],
  };
}

/** The device side: an Initiator over a real UDP socket or TCP connection to the relay. */
export class DeviceSim {
  readonly initiator: Initiator;
  readonly packets: Buffer[] = [];
  readonly messages: JsonMessage[] = [];
  readonly raw: Buffer[] = [];
  established = false;
  /** Each frame this device sends leaves this much later (a far link's one way, as the relay sees it). */
  sendDelayMs = 0;
  private udp?: dgram.Socket;
  private tcp?: net.Socket;

  constructor(
    readonly rec: FakeDeviceRecord,
    relayPublicKey: Buffer,
    private readonly port: number,
    readonly transport: 'udp' | 'tcp' = 'udp',
    timers?: Partial<TunnelTimers>,
    lane?: Lane,
  ) {
    this.initiator = createInitiator({
      privateKey: rec.keys.privateKey,
      responderPublicKey: relayPublicKey,
      psk: rec.psk,
      timers,
      lane,
    });
  }

  async open(): Promise<void> {
    if (this.transport === 'udp') {
      this.udp = dgram.createSocket('udp4');
      this.udp.on('message', (m) => this.onFrame(m));
      await new Promise<void>((r) => this.udp!.bind(0, '127.0.0.1', r));
    } else {
      const dec = new TcpFrameDecoder();
      this.tcp = net.connect(this.port, '127.0.0.1');
      this.tcp.on('data', (c) => {
        for (const f of dec.push(c)) this.onFrame(Buffer.from(f));
      });
      this.tcp.on('error', () => {});
      await new Promise<void>((r) => this.tcp!.once('connect', () => r()));
    }
  }

  sendRaw(frame: Buffer): void {
    if (this.sendDelayMs > 0) {
      setTimeout(() => this.sendNow(frame), this.sendDelayMs);
      return;
    }
    this.sendNow(frame);
  }

  private sendNow(frame: Buffer): void {
    if (this.udp) this.udp?.send(frame, this.port, '127.0.0.1');
    else this.tcp!.write(encodeTcpFrame(frame));
  }

  /** Handshake (and retries) until established. */
  async connect(timeoutMs = 5000): Promise<void> {
    const until = Date.now() + timeoutMs;
    let nextTick = 0;
    while (!this.established) {
      if (Date.now() > until) throw new Error(`${this.rec.device_id}: no handshake`);
      if (Date.now() >= nextTick) {
        for (const f of this.initiator.tick(Date.now())) this.sendRaw(f);
        nextTick = Date.now() + 200;
      }
      await sleep(10);
    }
  }

  sendPacket(p: Buffer): void {
    const f = this.initiator.sendPacket(p, Date.now());
    if (f) this.sendRaw(f);
  }

  sendMessage(m: JsonMessage): void {
    const f = this.initiator.sendMessage(m, Date.now());
    if (f) this.sendRaw(f);
  }

  private onFrame(f: Buffer): void {
    this.raw.push(f);
    const r = this.initiator.receive(f, Date.now());
    if (r.kind === 'established') {
      this.established = true;
      for (const x of r.send) this.sendRaw(x);
    } else if (r.kind === 'packet') this.packets.push(Buffer.from(r.packet));
    else if (r.kind === 'message') this.messages.push(r.message);
  }

  /** The UDP socket's port (what the relay sees as this sim's endpoint). */
  get localPort(): number {
    return this.udp!.address().port;
  }

  close(): void {
    this.udp?.close();
    this.udp = undefined;
    this.tcp?.destroy();
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, f: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export function udpPacket(src: string, dst: string, payload = 'hello'): Buffer {
  return buildIPv4Udp({ src, dst, srcPort: 5000, dstPort: 6000, payload: Buffer.from(payload) });
}

export interface Harness {
  tunnel: Tunnel;
  tun: FakeTun;
  runner: FakeRunner;
  tunRunner: RecordingRunner;
  api: Awaited<ReturnType<typeof startFakeApi>>;
  relayKeys: KeyPair;
  clock: { offset: number };
  /** `lane`: one lane of the device (docs/protocol.md §3.1), a sim of its own. */
  device(
    rec: FakeDeviceRecord,
    transport?: 'udp' | 'tcp',
    timers?: Partial<TunnelTimers>,
    lane?: Lane,
  ): Promise<DeviceSim>;
  close(): Promise<void>;
}

export async function startHarness(
  devices: FakeDeviceRecord[],
  opts: {
    counters?: () => string;
    initiationRate?: { perSec: number; burst: number };
    warmMs?: number;
    /** A stand-in for the kernel TUN's native seal path (tunnel-seal.test.ts). */
    sealPath?: SealPath;
    /** A stand-in for the UDP socket's native open path (tunnel-open.test.ts). */
    openPath?: OpenPath;
    /** Opens the tunnel's UDP socket (default dgramUdpPort). */
    openUdp?: typeof dgramUdpPort;
    /** The relay's front in the firewall state, and POCKETPROXY_HTTP_FRONT=auto's settings. */
    socks5Front?: TunnelSettings['socks5Front'];
    httpFrontAuto?: TunnelSettings['httpFrontAuto'];
  } = {},
): Promise<Harness> {
  const api = await startFakeApi(devices);
  const tun = new FakeTun({ name: 'pp0' });
  const runner = createFakeRunner((call) => ({
    stdout: call.args.includes('counters') ? (opts.counters?.() ?? '{"nftables":[]}') : '',
    stderr: '',
  }));
  const tunRunner = new RecordingRunner();
  const relayKeys = generateKeyPair();
  const clock = { offset: 0 };
  const sims: DeviceSim[] = [];
  const tunnel = createTunnel({
    settings: {
      relayName: 'local',
      publicHost: '127.0.0.1',
      tunnelPort: 0,
      pushPort: 0,
      pushUrl: 'http://127.0.0.1:0',
      deviceSubnet: '192.168.255.0/24',
      tunnelMtu: 1380,
      tunnelInterface: 'pp0',
      listenHost: '127.0.0.1',
      ...(opts.socks5Front ? { socks5Front: opts.socks5Front } : {}),
      ...(opts.httpFrontAuto ? { httpFrontAuto: opts.httpFrontAuto } : {}),
    },
    relayKey: relayKeys,
    internalToken: TOKEN,
    api: createHttpApi({ baseUrl: api.url, token: TOKEN, timeoutMs: 2000 }),
    firewall: createFirewall({ run: runner }),
    tun,
    configureTun: async (cfg) => {
      const { configureTun } = await import('@pocketproxy/tun');
      await configureTun(cfg, tunRunner);
    },
    openUdp: opts.openUdp ?? dgramUdpPort,
    logger: pino({ level: process.env.TUNNEL_TEST_LOG ?? 'silent' }),
    now: () => Date.now() + clock.offset,
    autoTimers: false,
    intervals: { retryMaxMs: 200, peersMinGapMs: 0, ...(opts.warmMs !== undefined ? { warmMs: opts.warmMs } : {}) },
    ...(opts.initiationRate ? { initiationRate: opts.initiationRate } : {}),
    ...(opts.sealPath ? { sealPath: () => opts.sealPath } : {}),
    ...(opts.openPath ? { openPath: () => opts.openPath } : {}),
  });
  await tunnel.start();
  await tunnel.ready;
  return {
    tunnel,
    tun,
    runner,
    tunRunner,
    api,
    relayKeys,
    clock,
    async device(rec, transport = 'udp', timers, lane) {
      const s = new DeviceSim(rec, relayKeys.publicKey, tunnel.addresses.udp, transport, timers, lane);
      sims.push(s);
      await s.open();
      return s;
    },
    async close() {
      for (const s of sims) s.close();
      await tunnel.stop();
      await api.close();
    },
  };
}

/** A device that handshakes, sends its confirmation, and is forwarded (vpn/connected answered, ports applied). */
export async function connectDevice(
  h: Harness,
  rec: FakeDeviceRecord,
  transport: 'udp' | 'tcp' = 'udp',
): Promise<DeviceSim> {
  const d = await h.device(rec, transport);
  await d.connect();
  await waitFor('vpn/connected', () =>
    h.api.callsTo('/api/internal/vpn/connected').some((c) => c.body.device_id === rec.device_id),
  );
  await waitFor(
    'ports forwarded',
    () =>
      h.tunnel.devices.byId.get(rec.device_id)?.reported &&
      h.runner.scripts().some((s) => s.includes(`${rec.port} : ${rec.vpn_ip} . ${rec.port}`)),
  );
  return d;
}
