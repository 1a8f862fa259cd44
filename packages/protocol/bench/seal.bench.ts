// Micro-benchmark: seal + open of 1380-byte packets (the default tunnel MTU) on one core.
// Bounded: runs for about 2 s per case. Usage:
//   node --import tsx --conditions=source packages/protocol/bench/seal.bench.ts [seconds]
import { randomBytes } from 'node:crypto';
import { TransportSession, DEFAULT_TUNNEL_MTU, TRANSPORT_OVERHEAD } from '@pocketproxy/protocol';

const seconds = Math.min(Number(process.argv[2] ?? 2) || 2, 30);
const key1 = randomBytes(32);
const key2 = randomBytes(32);
const sender = new TransportSession({ localIndex: 1, remoteIndex: 2, keys: { sendKey: key1, recvKey: key2 }, createdAt: 0, isInitiator: true });
const receiver = new TransportSession({ localIndex: 2, remoteIndex: 1, keys: { sendKey: key2, recvKey: key1 }, createdAt: 0, isInitiator: false });

function run(name: string, size: number, body: (pkt: Buffer, out: Buffer) => void): void {
  const pkt = randomBytes(size);
  pkt[0] = 0x45;
  const out = Buffer.allocUnsafe(size + TRANSPORT_OVERHEAD);
  for (let i = 0; i < 20_000; i++) body(pkt, out); // warm-up
  const deadline = performance.now() + seconds * 1000;
  let n = 0;
  const t0 = performance.now();
  while (performance.now() < deadline) {
    for (let i = 0; i < 1000; i++) body(pkt, out);
    n += 1000;
  }
  const dt = (performance.now() - t0) / 1000;
  const pps = n / dt;
  console.log(`${name.padEnd(28)} ${size}B  ${Math.round(pps).toLocaleString('en-US').padStart(10)} packets/s  ${((pps * size * 8) / 1e9).toFixed(2)} Gbit/s`);
}

const MTU = DEFAULT_TUNNEL_MTU;
run('seal (into pooled buffer)', MTU, (pkt, out) => void sender.seal(pkt, out));
run('seal+open', MTU, (pkt, out) => {
  const pt = receiver.open(sender.seal(pkt, out));
  if (typeof pt === 'string') throw new Error(pt);
});
run('seal+open (small, 100B)', 100, (pkt, out) => {
  const pt = receiver.open(sender.seal(pkt, out));
  if (typeof pt === 'string') throw new Error(pt);
});
