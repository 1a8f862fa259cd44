// Lab client: new-connection HTTP load, through an HTTP proxy or direct, run in the customer namespace.
// Every request opens a fresh TCP connection (agent: false, Connection: close), so a through-proxy
// request costs a new relay port connection, a new tunnel flow and a new device->target connection.
// argv: <mode: rate|ttfb> <url> <proxy-url|-> <durationMs|count> [concurrency]
//   rate: as many requests as `concurrency` workers complete in durationMs -> {done, failed, perSec}
//   ttfb: `count` sequential requests -> {p50, p90, min} time to first byte in ms
// Prints one JSON line.
import * as http from 'node:http';

const [mode, url, proxy, amountS, concS] = process.argv.slice(2) as string[];
const target = new URL(url!);
const px = proxy && proxy !== '-' ? new URL(proxy) : undefined;
const auth = px
  ? `Basic ${Buffer.from(`${decodeURIComponent(px.username)}:${decodeURIComponent(px.password)}`).toString('base64')}`
  : undefined;

function once(): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request(
      {
        host: px ? px.hostname : target.hostname,
        port: px ? Number(px.port) : Number(target.port || 80),
        path: px ? target.href : target.pathname + target.search,
        headers: { host: target.host, connection: 'close', ...(auth ? { 'proxy-authorization': auth } : {}) },
        agent: false,
        timeout: 5000,
      },
      (res) => {
        let first = 0;
        res.once('data', () => {
          first = Number(process.hrtime.bigint() - t0) / 1e6;
        });
        res.on('data', () => {});
        res.on('end', () => (res.statusCode === 200 ? resolve(first) : reject(new Error(`status ${res.statusCode}`))));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function main() {
  if (mode === 'rate') {
    const until = Date.now() + Number(amountS);
    let done = 0,
      failed = 0;
    const t0 = Date.now();
    const worker = async () => {
      while (Date.now() < until) {
        try {
          await once();
          done++;
        } catch {
          failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: Number(concS ?? 32) }, worker));
    const s = (Date.now() - t0) / 1000;
    console.log(JSON.stringify({ done, failed, seconds: s, perSec: Math.round(done / s) }));
  } else {
    const xs: number[] = [];
    await once().catch(() => 0); // warm up (DNS cache, ARP)
    for (let i = 0; i < Number(amountS); i++) xs.push(await once());
    xs.sort((a, b) => a - b);
    const q = (p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
    console.log(
      JSON.stringify({ n: xs.length, p50: +q(0.5).toFixed(3), p90: +q(0.9).toFixed(3), min: +xs[0]!.toFixed(3) }),
    );
  }
}
main().catch((e) => {
  console.log(JSON.stringify({ error: String(e) }));
  process.exit(1);
});
