// Micro-benchmark: seal + open of 1380-byte packets (the default tunnel MTU) on one core.
// Bounded: runs for about 2 s per case. Usage:
//   node --import tsx --conditions=source packages/protocol/bench/seal.bench.ts [seconds]
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { TransportSession, DEFAULT_TUNNEL_MTU, TRANSPORT_OVERHEAD } from '@pocketproxy/protocol';

const seconds = Math.min(Number(process.argv[2] ?? 2) || 2, 30);
const key1 = randomBytes(32);
const key2 = randomBytes(32);
const sender = new TransportSession({
  localIndex: 1,
  remoteIndex: 2,
  keys: { sendKey: key1, recvKey: key2 },
  createdAt: 0,
  isInitiator: true,
});
const receiver = new TransportSession({
  localIndex: 2,
  remoteIndex: 1,
  keys: { sendKey: key2, recvKey: key1 },
  createdAt: 0,
  isInitiator: false,
});

function run(name: string, size: number, body: (pkt: Buffer, out: Buffer) => void): void {
  const pkt = randomBytes(size);
  pkt[0] = 0x45;
  const out = Buffer.allocUnsafe(size + TRANSPORT_OVERHEAD);
  for (let i = 0; i < 20_000; i++) body(pkt, out); // warm-up
  const deadline = performance.now() + seconds * 1000;
  let n = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  while (performance.now() < deadline) {
    for (let i = 0; i < 1000; i++) body(pkt, out);
    n += 1000;
  }
  const wall = (performance.now() - t0) / 1000;
  const cu = process.cpuUsage(c0);
  const cpu = (cu.user + cu.system) / 1e6;
  // Per CPU-second as well as wall clock: on a shared machine the wall figure mostly measures the
  // neighbours, the CPU figure is what one core of ours can do.
  const fmt = (pps: number) =>
    `${Math.round(pps).toLocaleString('en-US').padStart(9)} pkt/s ${((pps * size * 8) / 1e9).toFixed(2)} Gbit/s`;
  console.log(
    `${name.padEnd(26)} ${String(size).padStart(4)}B  wall: ${fmt(n / wall)}   per CPU-second: ${fmt(n / cpu)}  (${((cpu / n) * 1e6).toFixed(2)} us/op)`,
  );
}

console.log(
  `node ${process.version}, openssl ${process.versions.openssl}, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}, ${seconds}s per case`,
);
const MTU = DEFAULT_TUNNEL_MTU;
run('seal (into pooled buffer)', MTU, (pkt, out) => void sender.seal(pkt, out));
run(
  'open',
  MTU,
  (() => {
    // a fresh session per batch so the replay window never rejects; sealing is done up front
    const frames: Buffer[] = [];
    const pkt = randomBytes(MTU);
    let rx = new TransportSession({
      localIndex: 2,
      remoteIndex: 1,
      keys: { sendKey: key2, recvKey: key1 },
      createdAt: 0,
      isInitiator: false,
    });
    const tx = new TransportSession({
      localIndex: 1,
      remoteIndex: 2,
      keys: { sendKey: key1, recvKey: key2 },
      createdAt: 0,
      isInitiator: true,
    });
    for (let i = 0; i < 1000; i++) frames.push(Buffer.from(tx.seal(pkt)));
    let i = 0;
    return () => {
      if (i === frames.length) {
        rx = new TransportSession({
          localIndex: 2,
          remoteIndex: 1,
          keys: { sendKey: key2, recvKey: key1 },
          createdAt: 0,
          isInitiator: false,
        });
        i = 0;
      }
      if (typeof rx.open(frames[i++]!) === 'string') throw new Error('open failed');
    };
  })(),
);
run('seal+open', MTU, (pkt, out) => {
  const pt = receiver.open(sender.seal(pkt, out));
  if (typeof pt === 'string') throw new Error(pt);
});
run('seal+open (small, 100B)', 100, (pkt, out) => {
  const pt = receiver.open(sender.seal(pkt, out));
  if (typeof pt === 'string') throw new Error(pt);
});
