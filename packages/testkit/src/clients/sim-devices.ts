// Lab client: many simulated devices (protocol Initiators over UDP, no TUN, no proxies) against a
// relay, to measure the relay tunnel's memory per connected device. One UDP socket per device, so
// each has its own endpoint as real phones do. Handshakes are paced; keepalives follow the protocol.
// argv: <relayHost> <relayPort> <keys.json: [{private_key, psk, server_public_key}]> <perSecond> <holdMs>
// Prints "established N" as devices come up, then "done {established}" after holdMs.
import * as dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createInitiator, decodeKey, type Initiator } from '@pocketproxy/protocol';

const [host, portS, file, rateS, holdS] = process.argv.slice(2) as string[];
const port = Number(portS);
const keys = JSON.parse(readFileSync(file!, 'utf8')) as {
  private_key: string;
  psk: string;
  server_public_key: string;
}[];
const sims: { ini: Initiator; sock: dgram.Socket; up: boolean }[] = [];
let established = 0;
let lastPrint = 0;

function start(k: (typeof keys)[number]) {
  const ini = createInitiator({
    privateKey: decodeKey(k.private_key),
    responderPublicKey: decodeKey(k.server_public_key),
    psk: decodeKey(k.psk),
  });
  const sock = dgram.createSocket('udp4');
  const sim = { ini, sock, up: false };
  sock.on('message', (m) => {
    const r = ini.receive(m, Date.now());
    if (r.kind === 'established') {
      for (const f of r.send) sock.send(f, port, host);
      if (!sim.up) {
        sim.up = true;
        established++;
      }
    }
  });
  sock.bind(0, () => {
    for (const f of ini.tick(Date.now())) sock.send(f, port, host);
  });
  sims.push(sim);
}

const perSecond = Number(rateS);
let i = 0;
const pacer = setInterval(() => {
  for (let j = 0; j < perSecond / 10 && i < keys.length; j++) start(keys[i++]!);
  if (i >= keys.length) clearInterval(pacer);
}, 100);
setInterval(() => {
  const now = Date.now();
  for (const s of sims) for (const f of s.ini.tick(now)) s.sock.send(f, port, host);
  if (established !== lastPrint) {
    lastPrint = established;
    console.log(`established ${established}`);
  }
}, 500);
setTimeout(() => {
  console.log(`done ${JSON.stringify({ established, started: sims.length })}`);
  process.exit(0);
}, Number(holdS));
