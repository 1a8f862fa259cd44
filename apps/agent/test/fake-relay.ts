// A minimal relay for tests: the protocol Responder behind a UDP socket and/or a TCP listener on
// 127.0.0.1. It echoes every IP packet back to the device (so probes and data get answers) and
// records messages. `restart()` swaps in a fresh Responder, like a relay process restart.
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { once } from 'node:events';
import {
  createResponder,
  encodeTcpFrame,
  generateKeyPair,
  generatePsk,
  TcpFrameDecoder,
  type JsonMessage,
  type KeyPair,
  type Responder,
} from '@pocketproxy/protocol';

type Ep = string; // "udp:ip:port" or "tcp:<n>"

export interface FakeRelay {
  port: number;
  keys: KeyPair;
  device: KeyPair;
  psk: Buffer;
  packets: Buffer[];
  messages: JsonMessage[];
  responder(): Responder<Ep>;
  restart(): void;
  push(message: JsonMessage): boolean;
  /** Seals an IP packet to the device on its current session and sends it (false: no session). */
  sendPacket(packet: Buffer): boolean;
  close(): Promise<void>;
  silent: boolean;
  /** Frames arriving over UDP are ignored (UDP blocked on the way in); TCP still works. */
  silentUdp: boolean;
  /** false: lookupPeer does not know the device yet (a relay whose peer list predates its pairing). */
  knowsDevice: boolean;
}

/** `device`/`psk`: serve a device another fake relay already knows (a device that moves relays). */
export async function startFakeRelay(
  opts: { udp?: boolean; tcp?: boolean; echo?: boolean; device?: KeyPair; psk?: Buffer } = {},
): Promise<FakeRelay> {
  const keys = generateKeyPair();
  const device = opts.device ?? generateKeyPair();
  const psk = opts.psk ?? generatePsk();
  const packets: Buffer[] = [];
  const messages: JsonMessage[] = [];
  const tcpConns = new Map<string, net.Socket>();
  let udp: dgram.Socket | undefined;
  let tcp: net.Server | undefined;
  const make = () =>
    createResponder<Ep>({
      privateKey: keys.privateKey,
      lookupPeer: (pk) =>
        relay.knowsDevice && pk.equals(device.publicKey) ? { deviceId: 'dev_test', psk } : undefined,
    });
  let r = make();
  const relay: FakeRelay = {
    port: 0,
    keys,
    device,
    psk,
    packets,
    messages,
    silent: false,
    silentUdp: false,
    knowsDevice: true,
    responder: () => r,
    restart: () => {
      r = make();
    },
    push: (m) => {
      const o = r.sendMessage('dev_test', m, Date.now());
      if (o) send(o.endpoint, o.frame);
      return Boolean(o);
    },
    sendPacket: (p) => {
      const o = r.sendPacket('dev_test', p, Date.now());
      if (o) send(o.endpoint, o.frame);
      return Boolean(o);
    },
    close: async () => {
      clearInterval(ticker);
      for (const s of tcpConns.values()) s.destroy();
      if (udp) await new Promise<void>((res) => udp!.close(() => res()));
      if (tcp) await new Promise<void>((res) => tcp!.close(() => res()));
    },
  };
  const send = (ep: Ep, frame: Buffer) => {
    if (ep.startsWith('udp:')) {
      const [, ip, port] = ep.split(':');
      udp?.send(frame, Number(port), ip);
    } else tcpConns.get(ep)?.write(encodeTcpFrame(frame));
  };
  const onFrame = (frame: Buffer, ep: Ep) => {
    if (relay.silent || (relay.silentUdp && ep.startsWith('udp:'))) return;
    const now = Date.now();
    const res = r.receive(frame, ep, now);
    if (res.kind === 'reply') send(res.endpoint, res.frame);
    else if (res.kind === 'packet') {
      packets.push(Buffer.from(res.packet));
      if (opts.echo !== false) {
        const o = r.sendPacket('dev_test', res.packet, now);
        if (o) send(o.endpoint, o.frame);
      }
    } else if (res.kind === 'message') messages.push(res.message);
  };
  let port = 0;
  if (opts.tcp) {
    let n = 0;
    tcp = net.createServer((s) => {
      const ep = `tcp:${++n}`;
      tcpConns.set(ep, s);
      const dec = new TcpFrameDecoder();
      s.on('data', (c) => {
        try {
          for (const f of dec.push(c)) onFrame(f, ep);
        } catch {
          s.destroy();
        }
      });
      s.on('error', () => {});
      s.on('close', () => tcpConns.delete(ep));
    });
    tcp.listen(0, '127.0.0.1');
    await once(tcp, 'listening');
    port = (tcp.address() as net.AddressInfo).port;
  }
  if (opts.udp !== false) {
    udp = dgram.createSocket('udp4');
    udp.on('message', (m, ri) => onFrame(m, `udp:${ri.address}:${ri.port}`));
    await new Promise<void>((res) => udp!.bind(port, '127.0.0.1', () => res()));
    port = udp.address().port;
  }
  relay.port = port;
  const ticker = setInterval(() => {
    for (const o of r.tick(Date.now())) send(o.endpoint, o.frame);
  }, 200);
  return relay;
}
