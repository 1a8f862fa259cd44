// Dashboard first-load weight and speed, measured in Debian's Chromium against a real `pocketproxy up`
// (embedded database, 127.0.0.1) serving the built export. For every page, in a fresh browser context
// (empty cache), it records:
//   - transferred bytes: what went over the wire (headers + bodies, as Chromium counts them), all types;
//   - JS: raw bytes and gzip bytes (each script gzipped at level 6, whatever the server sent), for the
//     whole first load (including Next's prefetch of the nav links' routes) and up to interactive;
//   - time to interactive: navigation start → the page's main control is rendered AND hydrated
//     (React has attached its handlers), with the API answering.
// Fails (exit 1) when any page's first-load JS exceeds 300 KB gzip. Needs apps/dashboard/out and
// apps/server/dist (run `npm run build -w @pocketproxy/dashboard` and `node scripts/build.mjs --no-dashboard`).
//   npm run bench:dashboard            (RUNS=5 for more samples; the median is printed)
import { existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM, launchBrowser, missingBuilds, Server } from '../test/harness.js';

const BUDGET_KB = 300;
const RUNS = Math.max(1, Number(process.env.RUNS ?? 3));

const missing = missingBuilds();
if (missing) {
  console.error(missing);
  process.exit(2);
}
if (!existsSync(CHROMIUM)) {
  console.error(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM=)`);
  process.exit(2);
}

type Sample = {
  transferred: number;
  requests: number;
  jsRaw: number;
  jsGzip: number;
  jsFiles: number;
  jsAtTti: number;
  tti: number;
  compressed: boolean;
};

/** Waits until `selector` is visible and React has hydrated it; returns ms since navigation start. */
async function interactiveAt(page: Page, selector: string): Promise<number> {
  await page.waitForFunction(
    (sel) => {
      const el = document.querySelector(sel);
      if (!el || !(el as HTMLElement).offsetParent) return false;
      return Object.keys(el).some((k) => k.startsWith('__reactProps$') || k.startsWith('__reactFiber$'));
    },
    selector,
    { timeout: 20_000, polling: 10 },
  );
  return page.evaluate(() => performance.now());
}

async function measure(
  browser: Browser,
  base: string,
  path: string,
  ready: string,
  session?: { token: string; expires_at: string },
): Promise<Sample> {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  if (session)
    await ctx.addInitScript((s) => {
      sessionStorage.setItem('pp.token', s.token);
      sessionStorage.setItem('pp.token_expires_at', s.expires_at);
    }, session);
  const page = await ctx.newPage();
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  const bytes = new Map<string, number>();
  cdp.on('Network.loadingFinished', (e: { requestId: string; encodedDataLength: number }) =>
    bytes.set(e.requestId, e.encodedDataLength),
  );
  const scripts: Promise<{ raw: number; gz: number; enc: boolean }>[] = [];
  page.on('response', (res) => {
    const url = res.url();
    if (res.request().resourceType() !== 'script' && !/\.js(\?|$)/.test(url)) return;
    scripts.push(
      res.body().then(
        (b) => ({ raw: b.length, gz: gzipSync(b, { level: 6 }).length, enc: !!res.headers()['content-encoding'] }),
        () => ({ raw: 0, gz: 0, enc: false }),
      ),
    );
  });
  await page.goto(base + path, { waitUntil: 'commit' });
  const tti = await interactiveAt(page, ready);
  const atTti = scripts.length; // the rest is Next prefetching the routes the nav links point to
  await page.waitForLoadState('networkidle').catch(() => {});
  const js = await Promise.all(scripts);
  await ctx.close();
  return {
    transferred: [...bytes.values()].reduce((a, b) => a + b, 0),
    requests: bytes.size,
    jsRaw: js.reduce((a, s) => a + s.raw, 0),
    jsGzip: js.reduce((a, s) => a + s.gz, 0),
    jsFiles: js.length,
    jsAtTti: js.slice(0, atTti).reduce((a, s) => a + s.gz, 0),
    tti,
    compressed: js.some((s) => s.enc),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;

async function main(): Promise<number> {
  const server = await new Server().start();
  let browser: Browser | undefined;
  let worst = 0;
  try {
    // Something to show: a customer, a paired device that heartbeats, a connection.
    const admin = await server.ok('POST', '/api/auth/login', {
      email: 'admin@example.com',
      password: 'lab-admin-password-1',
    });
    const token: string = admin.token;
    const cust = await server.ok('POST', '/api/customers', { name: 'Bench Customer' }, token);
    const { code } = await server.ok('POST', '/api/pairing-codes', { device_name: 'bench-phone' }, token);
    const dev = await server.ok('POST', '/api/public/pair', { code });
    await server.ok(
      'POST',
      `/api/devices/${dev.device_id}/heartbeat`,
      { metrics: { battery: 80, signal: -80 }, public_ip: '198.51.100.5' },
      dev.auth_token,
    );
    await server.ok(
      'POST',
      '/api/connections',
      { device_id: dev.device_id, protocol: 'http', customer_id: cust.id },
      token,
    );
    const session = { token, expires_at: admin.expires_at ?? new Date(Date.now() + 3600_000).toISOString() };

    browser = await launchBrowser();
    const pages: [string, string, string, boolean][] = [
      ['/login/', '/login/', 'button[type=submit]', false],
      ['/', '/', '.grid-stats a', true],
      ['/devices/', '/devices/', 'tbody input[type=checkbox]', true],
      ['/devices/view/', `/devices/view/?id=${dev.device_id}`, '.page-actions .btn-primary', true],
      ['/pair/', '/pair/', 'form button[type=submit]', true],
      ['/connections/', '/connections/', 'tbody input[type=checkbox]', true],
      ['/customers/', '/customers/', 'tbody .btn', true],
      ['/relays/', '/relays/', 'tbody .btn', true],
    ];
    await measure(browser, server.base, '/login/', 'button[type=submit]'); // warm the server's file cache
    console.log(`dashboard first load, Chromium → pocketproxy up on 127.0.0.1, empty cache, median of ${RUNS}:`);
    console.log(
      `  ${'page'.padEnd(15)} ${'transferred'.padStart(11)}  ${'requests'.padStart(8)}  ${'JS raw'.padStart(9)}  ${'JS gzip'.padStart(9)}  ${'files'.padStart(5)}  ${'gzip@TTI'.padStart(9)}  ${'interactive'.padStart(11)}`,
    );
    let compressed = false;
    for (const [label, path, ready, auth] of pages) {
      const runs: Sample[] = [];
      for (let i = 0; i < RUNS; i++)
        runs.push(await measure(browser, server.base, path, ready, auth ? session : undefined));
      const m = (f: (s: Sample) => number) => median(runs.map(f));
      compressed ||= runs.some((r) => r.compressed);
      worst = Math.max(
        worst,
        m((s) => s.jsGzip),
      );
      console.log(
        `  ${label.padEnd(15)} ${kb(m((s) => s.transferred)).padStart(11)}  ${String(m((s) => s.requests)).padStart(8)}  ${kb(m((s) => s.jsRaw)).padStart(9)}  ${kb(m((s) => s.jsGzip)).padStart(9)}  ${String(m((s) => s.jsFiles)).padStart(5)}  ${kb(m((s) => s.jsAtTti)).padStart(9)}  ${`${m((s) => s.tti).toFixed(0)} ms`.padStart(11)}`,
      );
    }
    console.log(
      'JS gzip counts every script of the first load, including what Next prefetches for the nav links; gzip@TTI is what had arrived when the page became interactive.',
    );
    console.log(
      `JS over the wire is ${compressed ? 'compressed by the server' : 'NOT compressed by the server (transferred ≈ raw)'}`,
    );
    console.log(
      `largest first-load JS: ${kb(worst)} gzip (budget ${BUDGET_KB} KB) → ${worst <= BUDGET_KB * 1024 ? 'OK' : 'OVER BUDGET'}`,
    );
  } finally {
    await browser?.close().catch(() => {});
    await server.stop();
  }
  return worst > BUDGET_KB * 1024 ? 1 : 0;
}

// (No top-level await: this package is CommonJS to tsx.)
main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
