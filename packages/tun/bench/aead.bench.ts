// Transport AEAD, 1380-byte packets (the tunnel MTU), one core: node:crypto vs the native provider
// one packet per call vs the native batch forms (64 packets per call, the TUN batch size), all
// through TransportSession (header + counter + replay window included, i.e. what the data path
// pays) plus the bare native key for reference. Reports wall and per-CPU-second rates and ratios.
// The native cases run on both ways through OpenSSL (native/aead.h: `direct`, the default where
// available, and `evp`), side by side; BENCH_SIZE=60 is a short connection's typical packet.
//   npm run bench:aead -w @pocketproxy/tun            (BENCH_SECONDS=2, BENCH_SIZE=1380, BENCH_BATCH=64)
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { TransportSession, nodeAead, type AeadProvider } from '@pocketproxy/protocol';
import { nativeAead } from '../src/index.js';
import { loadAddon, type AeadBackend } from '../src/native.js';

const seconds = Math.min(Number(process.env.BENCH_SECONDS ?? 2) || 2, 30);
const size = Math.min(Number(process.env.BENCH_SIZE ?? 1380) || 1380, 65000);
const B = Math.min(Number(process.env.BENCH_BATCH ?? 64) || 64, 1024);

interface Result {
  name: string;
  perCpu: number;
  wall: number;
  us: number;
}

/** Runs body (which handles `per` packets) for ~seconds; returns packets/s wall and per CPU-second. */
function run(name: string, per: number, body: () => void): Result {
  for (let i = 0; i < 2000; i++) body(); // warm-up
  const deadline = performance.now() + seconds * 1000;
  let n = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  while (performance.now() < deadline) {
    for (let i = 0; i < 100; i++) body();
    n += 100 * per;
  }
  const wall = (performance.now() - t0) / 1000;
  const cu = process.cpuUsage(c0);
  const cpu = (cu.user + cu.system) / 1e6;
  return { name, perCpu: n / cpu, wall: n / wall, us: (cpu / n) * 1e6 };
}

function sessions(aead: AeadProvider) {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  const mk = () => ({
    tx: new TransportSession({
      localIndex: 1,
      remoteIndex: 2,
      keys: { sendKey: k1, recvKey: k2 },
      createdAt: 0,
      isInitiator: true,
      aead,
    }),
    rx: new TransportSession({
      localIndex: 2,
      remoteIndex: 1,
      keys: { sendKey: k2, recvKey: k1 },
      createdAt: 0,
      isInitiator: false,
      aead,
    }),
  });
  return mk;
}

const pkt = randomBytes(size);
pkt[0] = 0x45;
const batchData = Buffer.concat(Array.from({ length: B }, () => pkt));
const batchOffsets = new Uint32Array(B + 1);
for (let i = 0; i <= B; i++) batchOffsets[i] = i * size;
const batch = { data: batchData, offsets: batchOffsets, count: B };

function sealSingle(aead: AeadProvider): () => void {
  const { tx } = sessions(aead)();
  const out = Buffer.allocUnsafe(size + 32);
  return () => void tx.seal(pkt, out);
}
function sealBatch(aead: AeadProvider): () => void {
  const { tx } = sessions(aead)();
  const out = Buffer.allocUnsafe(B * (size + 32));
  const outOffsets = new Uint32Array(B + 1);
  return () => void tx.sealBatch(batch, out, outOffsets);
}
/** Pre-sealed frames; the receiver session is renewed when they run out so the replay window never refuses. */
function frames(aead: AeadProvider, n: number) {
  const mk = sessions(aead);
  const s = mk();
  const out = Buffer.allocUnsafe(n * (size + 32));
  const offs = new Uint32Array(n + 1);
  if (
    s.tx.sealBatch(
      {
        data: Buffer.concat(Array.from({ length: n }, () => pkt)),
        offsets: Uint32Array.from({ length: n + 1 }, (_, i) => i * size),
        count: n,
      },
      out,
      offs,
    ) !== n
  )
    throw new Error('seal');
  return { mk, out, offs };
}
function openSingle(aead: AeadProvider, inPlace: boolean): () => void {
  const n = 1024;
  const { mk, out, offs } = frames(aead, n);
  const ref = Buffer.from(out);
  const views = Array.from({ length: n }, (_, i) => out.subarray(offs[i]!, offs[i + 1]!));
  let rx = mk().rx;
  let i = 0;
  return () => {
    if (i === n) {
      rx = mk().rx;
      i = 0;
      if (inPlace) ref.copy(out);
    }
    const f = views[i++]!;
    if (typeof rx.open(f, inPlace ? f.subarray(16) : undefined) === 'string') throw new Error('open failed');
  };
}
function openBatch(aead: AeadProvider): () => void {
  const { mk, out, offs } = frames(aead, B);
  const ref = Buffer.from(out);
  const results = new Int32Array(B);
  const b = { data: out, offsets: offs, count: B };
  return () => {
    ref.copy(out); // in place: restore the ciphertext (a 88 KB memcpy, counted against the batch)
    if (mk().rx.openBatch(b, results) !== B) throw new Error('openBatch failed');
  };
}
function bareNative(backend: AeadBackend): () => void {
  const k = new (loadAddon().Aead)(randomBytes(32), backend);
  const out = Buffer.allocUnsafe(size + 16);
  let c = 0;
  return () => void k.seal(c++, pkt, out, 0);
}
/** The native provider with every key on one way through OpenSSL. */
const on = (backend: AeadBackend): AeadProvider => ({
  name: 'openssl-native',
  key: (raw: Uint8Array) => new (loadAddon().Aead)(raw, backend),
});

const native = nativeAead();
const evp = on('evp');
console.log(
  `node ${process.version}, openssl ${process.versions.openssl}, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}, ${size}-byte packets, batch ${B}, ${seconds}s per case`,
);
const sN = run('seal node:crypto', 1, sealSingle(nodeAead));
const sS = run('seal native single', 1, sealSingle(native));
const sB = run(`seal native batch (${B})`, B, sealBatch(native));
const sR = run('seal native key, bare (no session)', 1, bareNative('direct'));
const sBe = run(`seal native batch (${B}), evp`, B, sealBatch(evp));
const sRe = run('seal native key, bare, evp', 1, bareNative('evp'));
const oN = run('open node:crypto', 1, openSingle(nodeAead, false));
const oS = run('open native single (new buffer)', 1, openSingle(native, false));
const oI = run('open native single (in place)', 1, openSingle(native, true));
const oB = run(`open native batch (${B}, in place)`, B, openBatch(native));
const oBe = run(`open native batch (${B}, in place), evp`, B, openBatch(evp));

const fmt = (pps: number) =>
  `${Math.round(pps).toLocaleString('en-US').padStart(10)} pkt/s ${((pps * size * 8) / 1e9).toFixed(2).padStart(6)} Gbit/s`;
for (const [base, list] of [
  [sN, [sN, sS, sB, sR, sBe, sRe]],
  [oN, [oN, oS, oI, oB, oBe]],
] as [Result, Result[]][]) {
  for (const r of list) {
    console.log(
      `${r.name.padEnd(36)} per CPU-second: ${fmt(r.perCpu)}  ${r.us.toFixed(2).padStart(6)} us/pkt  ` +
        `x${(r.perCpu / base.perCpu).toFixed(1).padStart(5)}   wall: ${fmt(r.wall)}`,
    );
  }
}
console.log(
  `direct / evp, per CPU-second (${native.key(randomBytes(32)).backend} is the default here): seal batch ` +
    `x${(sB.perCpu / sBe.perCpu).toFixed(2)}, bare seal x${(sR.perCpu / sRe.perCpu).toFixed(2)}, open batch ` +
    `x${(oB.perCpu / oBe.perCpu).toFixed(2)}`,
);
