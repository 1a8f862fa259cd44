// Batched UDP (recvmmsg/sendmmsg in the addon) vs node:dgram, loopback only, bounded.
//   npm run bench:udp -w @pocketproxy/tun     (env: BENCH_SECONDS=3 BENCH_SIZE=100 BENCH_SEND=200000)
// send: M datagrams to a bound sink that never reads (the kernel drops them at the sink, the
//       sender pays full cost) — dgram.send per datagram vs sendBatch of 64.
// recv: a generator process floods 127.0.0.1 with sendmmsg for BENCH_SECONDS; count what each
//       receiver takes in, and its CPU per datagram.
import dgram from 'node:dgram';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BatchUdpSocket } from '../src/index.js';

const seconds = Math.min(Number(process.env.BENCH_SECONDS ?? 3), 20);
const size = Number(process.env.BENCH_SIZE ?? 100);
const sendCount = Math.min(Number(process.env.BENCH_SEND ?? 200_000), 2_000_000);
const payload = Buffer.alloc(size, 0x62);

function cpuSecs(c: NodeJS.CpuUsage): number {
  return (c.user + c.system) / 1e6;
}

async function sinkPort(): Promise<{ port: number; close: () => void }> {
  // A batch socket that is never start()ed: bound, never read, so the kernel drops at the sink.
  const s = new BatchUdpSocket({ type: 'udp4', address: '127.0.0.1' });
  return { port: s.address().port, close: () => s.close() };
}

async function sendDgram(port: number): Promise<{ pps: number; us: number }> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  for (let sent = 0; sent < sendCount; sent += 64) {
    // 64 in flight, then wait: dgram's callbacks are how a caller learns of completion.
    await new Promise<void>((resolve) => {
      let left = 64;
      for (let i = 0; i < 64; i++) s.send(payload, port, '127.0.0.1', () => --left === 0 && resolve());
    });
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = cpuSecs(process.cpuUsage(c0));
  s.close();
  return { pps: Math.round(sendCount / secs), us: +((cpu / sendCount) * 1e6).toFixed(2) };
}

async function sendBatched(port: number): Promise<{ pps: number; us: number }> {
  const s = new BatchUdpSocket({ type: 'udp4', address: '127.0.0.1' });
  const batch = Array.from({ length: 64 }, () => ({ data: payload, address: '127.0.0.1', port }));
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  let sent = 0;
  for (let i = 0; i < sendCount; i += 64) {
    sent += s.sendBatch(batch);
    if ((i & 4095) === 0) await new Promise((r) => setImmediate(r)); // stay a good loop citizen
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = cpuSecs(process.cpuUsage(c0));
  s.close();
  return { pps: Math.round(sent / secs), us: +((cpu / sent) * 1e6).toFixed(2) };
}

function flood(port: number): Promise<string> {
  const script = fileURLToPath(new URL('./fixtures/udp-flood.ts', import.meta.url));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=source', script, '127.0.0.1', String(port), String(seconds), String(size)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const killer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), (seconds + 15) * 1000);
  return new Promise((resolve) =>
    child.on('close', () => {
      clearTimeout(killer);
      resolve(out.trim());
    }),
  );
}

/** Counts datagrams received during the flood, from the first datagram to the generator's exit. */
async function recv(kind: 'dgram' | 'batch'): Promise<{ pps: number; us: number; gen: string; received: number }> {
  let received = 0;
  let t0 = 0n;
  let c0: NodeJS.CpuUsage | undefined;
  const first = (): void => {
    t0 = process.hrtime.bigint();
    c0 = process.cpuUsage();
  };
  let port: number;
  let close: () => void;
  if (kind === 'dgram') {
    const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    s.on('message', () => {
      if (received++ === 0) first();
    });
    port = s.address().port;
    close = () => s.close();
  } else {
    const s = new BatchUdpSocket({ type: 'udp4', address: '127.0.0.1', recvBufferSize: 4 << 20, batchSize: 64 });
    s.startRaw((_data, _meta, _addrs, count) => {
      if (received === 0) first();
      received += count;
    });
    port = s.address().port;
    close = () => s.close();
  }
  const gen = await flood(port);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = c0 ? cpuSecs(process.cpuUsage(c0)) : 0;
  close();
  return { pps: Math.round(received / secs), us: +((cpu / Math.max(received, 1)) * 1e6).toFixed(2), gen, received };
}

const sink = await sinkPort();
const sd = await sendDgram(sink.port);
const sb = await sendBatched(sink.port);
sink.close();
console.log(`send ${sendCount} x ${size} B to a loopback sink`);
console.log(`  node:dgram       ${String(sd.pps).padStart(9)} datagrams/s   ${sd.us} us CPU/datagram`);
console.log(`  sendBatch (64)   ${String(sb.pps).padStart(9)} datagrams/s   ${sb.us} us CPU/datagram`);
console.log(`  ratio ${(sb.pps / sd.pps).toFixed(2)}x (CPU per datagram ${(sd.us / sb.us).toFixed(2)}x less)`);

const rd = await recv('dgram');
const rb = await recv('batch');
console.log(`receive: ${seconds} s flood of ${size} B datagrams from a sendmmsg generator process`);
console.log(
  `  node:dgram       ${String(rd.pps).padStart(9)} datagrams/s   ${rd.us} us CPU/datagram   generator ${rd.gen}`,
);
console.log(
  `  recvmmsg (64)    ${String(rb.pps).padStart(9)} datagrams/s   ${rb.us} us CPU/datagram   generator ${rb.gen}`,
);
console.log(`  ratio ${(rb.pps / rd.pps).toFixed(2)}x (CPU per datagram ${(rd.us / rb.us).toFixed(2)}x less)`);
