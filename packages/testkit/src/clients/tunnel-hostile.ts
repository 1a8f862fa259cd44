// Lab client: hostile frames at the relay's tunnel port (UDP), run from the customer namespace.
// A legitimate session (a device registered via the API, keys given on argv) proves the relay
// answers; then truncated, oversized, forged and replayed frames are sent, each from a fresh
// socket, and every answer to those sockets is counted. The relay must answer none of them.
// argv: <relayHost> <relayPort> <relayPublicKey b64> <devicePrivateKey b64> <psk b64> <vpnIp> <gatewayIp>
// Prints one JSON line: {established, pingReply, answers: {case: n}, pingAfter}.
import * as dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { createInitiator, decodeKey, generateKeyPair, generatePsk } from '@pocketproxy/protocol';

const [host, portS, relayPub, priv, psk, vpnIp, gw] = process.argv.slice(2) as string[];
const port = Number(portS);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fail = (e: unknown) => {
  console.log(JSON.stringify({ error: String(e) }));
  process.exit(1);
};
setTimeout(() => fail('timeout'), 40_000).unref();

function checksum(b: Buffer): number {
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s += b.readUInt16BE(i);
  if (b.length % 2) s += b[b.length - 1]! << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return ~s & 0xffff;
}
function icmpEcho(src: string, dst: string, seq: number): Buffer {
  const icmp = Buffer.alloc(16);
  icmp[0] = 8;
  icmp.writeUInt16BE(0x4242, 4);
  icmp.writeUInt16BE(seq, 6);
  icmp.write('ppecho!!', 8);
  icmp.writeUInt16BE(checksum(icmp), 2);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + icmp.length, 2);
  ip.writeUInt16BE(seq, 4);
  ip[8] = 64;
  ip[9] = 1;
  Buffer.from(src.split('.').map(Number)).copy(ip, 12);
  Buffer.from(dst.split('.').map(Number)).copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  return Buffer.concat([ip, icmp]);
}
const isEchoReply = (p: Buffer) => p.length >= 28 && p[9] === 1 && p[20] === 0 && p.readUInt16BE(24) === 0x4242;

async function main() {
  const ini = createInitiator({
    privateKey: decodeKey(priv!),
    responderPublicKey: decodeKey(relayPub!),
    psk: decodeKey(psk!),
  });
  const legit = dgram.createSocket('udp4');
  await new Promise<void>((r) => legit.bind(0, r));
  let established = false;
  let pingReplies = 0;
  const sentFrames: Buffer[] = [];
  legit.on('message', (m) => {
    const r = ini.receive(m, Date.now());
    if (r.kind === 'established') {
      established = true;
      for (const f of r.send) legit.send(f, port, host);
    } else if (r.kind === 'packet' && isEchoReply(r.packet)) pingReplies++;
  });
  const send = (f: Buffer) => {
    sentFrames.push(f);
    legit.send(f, port, host);
  };
  // Freshly registered device: the relay refetches peers on an unknown key; retry for up to 15 s.
  for (let i = 0; i < 60 && !established; i++) {
    ini.tick(Date.now()).forEach(send);
    await sleep(250);
  }
  if (!established) return fail('no session');
  const initiation = sentFrames.find((f) => f[0] === 1)!;
  const ping = (seq: number) => {
    const f = ini.sendPacket(icmpEcho(vpnIp!, gw!, seq), Date.now());
    if (f) legit.send(f, port, host);
    return f;
  };
  const pingFrame = ping(1)!;
  await sleep(800);
  const pingReply = pingReplies;

  const answers: Record<string, number> = {};
  const hostile = async (name: string, frames: Buffer[]) => {
    const s = dgram.createSocket('udp4');
    answers[name] = 0;
    s.on('message', () => {
      answers[name]!++;
    });
    await new Promise<void>((r) => s.bind(0, r));
    for (const f of frames) s.send(f, port, host);
    return s;
  };
  const hdr = (type: number, len: number) => {
    const b = randomBytes(len);
    b[0] = type;
    b[1] = 1;
    b[2] = 0;
    b[3] = 0;
    return b;
  };
  const stranger = createInitiator({
    privateKey: generateKeyPair().privateKey,
    responderPublicKey: decodeKey(relayPub!),
    psk: generatePsk(),
  });
  const forgedPing = Buffer.from(pingFrame);
  forgedPing[forgedPing.length - 5]! ^= 0x40;
  const socks = await Promise.all([
    hostile('truncated', [
      Buffer.from([1]),
      hdr(1, 4),
      initiation.subarray(0, 100),
      hdr(4, 16),
      pingFrame.subarray(0, 20),
    ]),
    hostile('oversized', [Buffer.concat([initiation, randomBytes(1000)]), hdr(4, 60_000), hdr(1, 1400)]),
    hostile('forged', [stranger.tick(Date.now())[0]!, hdr(4, 200), forgedPing, hdr(2, 92), hdr(3, 64), hdr(9, 100)]),
    hostile('replayed', [initiation, pingFrame]),
  ]);
  await sleep(1500);
  // The legitimate session still works after all that.
  const before = pingReplies;
  for (let i = 0; i < 3; i++) {
    ping(10 + i);
    await sleep(200);
  }
  await sleep(500);
  console.log(JSON.stringify({ established, pingReply, answers, pingAfter: pingReplies - before }));
  for (const s of socks) s.close();
  legit.close();
  process.exit(0);
}
main().catch(fail);
