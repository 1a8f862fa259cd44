// TUN read throughput: the addon's uv_poll + batched read() path vs fs.read on the thread pool.
// Root; each strategy runs in its own throwaway network namespace holding one TUN; packets are
// queued into it by routing, nothing leaves the namespace. Bounded: ROUNDS x PACKETS per strategy.
//   npm run bench:tun -w @pocketproxy/tun      (env: BENCH_PACKETS=50000 BENCH_ROUNDS=3 BENCH_SIZE=100)
import { createNetns, deleteNetns, isRoot, lastJson, runNodeInNetns } from '../test/fixtures/netns.js';

if (!isRoot()) {
  console.error('tun.bench: needs root (network namespace + /dev/net/tun); not run');
  process.exit(2);
}
const packets = Math.min(Number(process.env.BENCH_PACKETS ?? 50000), 60000);
const rounds = Math.min(Number(process.env.BENCH_ROUNDS ?? 3), 10);
const size = Number(process.env.BENCH_SIZE ?? 100);
const modes = ['poll-slab', 'poll-array', 'fsread-1', 'fsread-4'];
type Result = { pps: number; perRound: number[]; usPerPacketCpu: number; usPerPacketWall: number; batches: number };
const results: Record<string, Result> = {};
console.log(
  `draining ${rounds} x ${packets} queued UDP/IPv4 packets (${size} B payload) per strategy; best round shown`,
);
for (const mode of modes) {
  const ns = createNetns('pptunb');
  try {
    const r = await runNodeInNetns(
      ns,
      new URL('./fixtures/tun-read-child.ts', import.meta.url),
      [mode, String(packets), String(rounds), String(size)],
      90_000,
    );
    if (r.code !== 0) throw new Error(`${mode} failed (exit ${r.code}): ${r.stderr}`);
    results[mode] = lastJson<Result>(r.stdout);
  } finally {
    deleteNetns(ns);
  }
  const x = results[mode]!;
  console.log(
    `${mode.padEnd(11)} ${String(x.pps).padStart(9)} packets/s   ${x.usPerPacketCpu} us CPU/packet   ` +
      `rounds ${x.perRound.join(' / ')}   JS calls ${x.batches || '(one per packet)'}`,
  );
}
const poll = results['poll-slab']!.pps;
const fsr = Math.max(results['fsread-1']!.pps, results['fsread-4']!.pps);
console.log(`uv_poll batch (slab) / best fs.read = ${(poll / fsr).toFixed(2)}x`);
console.log(`slab / array delivery = ${(poll / results['poll-array']!.pps).toFixed(2)}x`);
