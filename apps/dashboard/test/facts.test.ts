// Browser tests for what an operator running a fleet trips over (issue 12): wrong or stale facts and dead
// ends. Chromium (playwright-core) against a real `pocketproxy up`; the test plays the devices over the
// public device API. Screenshots of every page at 1280, 768 and 390 px go to test-results/dashboard/pages/.
// Needs apps/dashboard/out and apps/server/dist (node scripts/build.mjs); needs /usr/bin/chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ADMIN, CHROMIUM, ErrorLog, launchBrowser, missingBuilds, Server, SHOTS, sleep, until } from './harness.js';

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium)
  console.error(
    `\n*** dashboard browser tests SKIPPED: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM=) ***\n`,
  );

const WIDTHS = [1280, 768, 390] as const;

let server: Server; // OpenVPN off
let browser: Browser;
let token: string;

type Dev = { id: string; token: string; name: string };
const fleet: { online?: Dev; offline?: Dev; conns: any[] } = { conns: [] };

async function pairDevice(s: Server, adminToken: string, name: string): Promise<Dev> {
  const code = await s.ok('POST', '/api/pairing-codes', { device_name: name }, adminToken);
  const pair = await s.ok('POST', '/api/public/pair', { code: code.code, agent_version: 'lab-0.1' });
  return { id: pair.device_id, token: pair.auth_token, name };
}

before(async () => {
  if (!haveChromium) return;
  const missing = missingBuilds();
  if (missing) throw new Error(missing);
  server = await new Server({ POCKETPROXY_OPENVPN: 'off' }).start();
  token = await server.adminToken();
  browser = await launchBrowser();

  // A small fleet: one device online, one that was online and went away, each with connections.
  const internal = readFileSync(join(server.dataDir, 'internal.token'), 'utf8').trim();
  const cust = await server.ok('POST', '/api/customers', { name: 'Initech Data Services Ltd' }, token);
  for (const [key, name, ip] of [
    ['online', 'berlin-pixel-7-pro-01', '198.51.100.7'],
    ['offline', 'hamburg-galaxy-a54-02', '198.51.100.8'],
  ] as const) {
    const d = await pairDevice(server, token, name);
    fleet[key] = d;
    await server.ok(
      'POST',
      `/api/devices/${d.id}/heartbeat`,
      {
        metrics: { battery: 81, charging: false, signal: -87, carrier: 'Deutsche Telekom', network_type: 'LTE' },
        public_ip: ip,
      },
      d.token,
    );
    for (const protocol of ['http', 'socks5']) {
      fleet.conns.push(
        await server.ok(
          'POST',
          '/api/connections',
          {
            device_id: d.id,
            customer_id: cust.id,
            protocol,
            allow_from: ['203.0.113.0/24', '192.0.2.10/32'],
            bandwidth_limit_bytes: 50e9,
            expires_at: new Date(Date.now() + 30 * 86400e3).toISOString(),
          },
          token,
        ),
      );
    }
  }
  const dev = await server.ok('GET', `/api/devices/${fleet.offline!.id}`, undefined, token);
  await server.ok('POST', '/api/internal/vpn/connected', { device_id: dev.id, vpn_ip: dev.vpn_ip }, internal);
  await server.ok('POST', '/api/internal/vpn/disconnected', { device_id: dev.id, reason: 'dead' }, internal);
});

after(async () => {
  await browser?.close().catch(() => {});
  await server?.stop();
});

async function newTab(width = 1280): Promise<{ page: Page; log: ErrorLog }> {
  const ctx = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(10_000);
  return { page, log: new ErrorLog(page) };
}

/**
 * Signed in with one API login per server, put where the dashboard keeps it (sessionStorage): the UI login
 * is browser.test.ts's job, and a login per tab would run into the API's 10 logins a minute.
 */
const sessions = new Map<Server, { token: string; expires_at: string }>();
async function signIn(page: Page, s = server) {
  let session = sessions.get(s);
  if (!session) {
    session = (await s.ok('POST', '/api/auth/login', ADMIN)) as { token: string; expires_at: string };
    sessions.set(s, session);
  }
  await page.goto(`${s.base}/login/`);
  await page.evaluate((x) => {
    sessionStorage.setItem('pp.token', x.token);
    sessionStorage.setItem('pp.token_expires_at', x.expires_at);
  }, session);
  await page.goto(`${s.base}/`);
  await page.getByText('Devices online').waitFor();
}

function skip(t: { skip: (m: string) => void }): boolean {
  if (haveChromium) return false;
  t.skip(`no Chromium at ${CHROMIUM}`);
  return true;
}

/** Sideways overflow of the document and of every table (a table that scrolls hides its last columns). */
async function overflow(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    const doc = document.documentElement;
    if (doc.scrollWidth > window.innerWidth) out.push(`document ${doc.scrollWidth} > ${window.innerWidth}`);
    document.querySelectorAll('.table-wrap, .card, .cmd').forEach((el, i) => {
      const e = el as HTMLElement;
      if (e.scrollWidth > e.clientWidth + 1)
        out.push(`${e.className} #${i} scrolls sideways (${e.scrollWidth} > ${e.clientWidth})`);
    });
    return out;
  });
}

test('an unknown dashboard URL answers the 404 page (HTML, 404); API paths keep problem+json', async (t) => {
  if (skip(t)) return;
  const res = await fetch(`${server.base}/no/such/page/`);
  assert.equal(res.status, 404);
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
  const api = await fetch(`${server.base}/api/no-such-route`);
  assert.equal(api.status, 404);
  assert.match(api.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal((await api.json()).code, 'PP_ERR_API_ROUTE_NOT_FOUND');

  const { page, log } = await newTab();
  await signIn(page);
  const r = await log.allowing(/status of 404/, async () => {
    const r = await page.goto(`${server.base}/devices/nope/`);
    await page.getByRole('heading', { name: 'Page not found' }).waitFor();
    return r;
  });
  assert.equal(r?.status(), 404);
  await page.getByRole('link', { name: 'Overview' }).first().waitFor();
  assert.deepEqual(log.take(), [], 'no console errors');
  await page.context().close();
});

test('pair page: both steps in full, a copy button, no made-up app, nothing sticks out', async (t) => {
  if (skip(t)) return;
  for (const width of WIDTHS) {
    const { page, log } = await newTab(width);
    await signIn(page);
    await page.goto(`${server.base}/pair/`);
    await page.getByRole('button', { name: 'Create pairing code' }).click();
    const code = (await page.locator('.pair-code').textContent())?.trim() ?? '';
    const text = (await page.locator('.cmd').first().textContent()) ?? '';
    assert.match(text, new RegExp(`pocketproxy-agent pair 'pocketproxy://pair\\?server=[^']+&code=${code}&fp=[^']+'`));
    assert.match(text, /pocketproxy-agent run --egress-interface \S+/, 'the run step is shown');
    await page
      .getByRole('button', { name: /^Copy commands?$/ })
      .first()
      .waitFor();
    const body = (await page.locator('main').textContent()) ?? '';
    assert.doesNotMatch(body, /PocketProxy app/i, 'no PocketProxy app exists');
    assert.deepEqual(await overflow(page), [], `nothing overflows at ${width}px`);
    assert.deepEqual(log.take(), [], 'no console errors');
    await page.context().close();
  }
});

test('a command that fails within milliseconds reaches "failed" in the table without a reload', async (t) => {
  if (skip(t)) return;
  const d = fleet.online!;
  await server.ok('POST', `/api/devices/${d.id}/heartbeat`, {}, d.token);
  const { page, log } = await newTab();
  await signIn(page);
  await page.goto(`${server.base}/devices/view/?id=${d.id}`);
  await page.getByRole('heading', { name: new RegExp(d.name) }).waitFor();
  await page.locator('.live-live').waitFor();
  await page.evaluate(() => ((window as any).__noReload = true));
  // The device is fast: it gets the command, acks it and reports the failure before the browser has the
  // answer to its own POST (which left the server while the command was still open).
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  await page.route('**/api/devices/*/commands', async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    const res = await route.fetch();
    await held;
    await route.fulfill({ response: res });
  });
  const cmdTable = page.locator('section[aria-labelledby="cmds-h"]');
  await page.getByRole('button', { name: 'Rotate IP now' }).click();
  const cmd = await until('the command is queued', async () => {
    const l = await server.ok('GET', `/api/devices/${d.id}/commands`, undefined, token);
    return l.items.find((c: any) => c.type === 'rotate_ip' && c.status === 'pending');
  });
  const beat = await server.ok('POST', `/api/devices/${d.id}/heartbeat`, {}, d.token);
  assert.ok(
    beat.commands.some((c: any) => c.id === cmd.id),
    'the heartbeat hands it out',
  );
  const result = `/api/devices/${d.id}/commands/${cmd.id}/result`;
  await server.ok('POST', result, { status: 'acked' }, d.token);
  await server.ok('POST', result, { status: 'failed', result: { error: 'no modem on wwan0' } }, d.token);
  await cmdTable.getByText('failed', { exact: true }).waitFor({ timeout: 8_000 });
  await sleep(1500); // the refetch a heartbeat triggers has landed too
  release();
  await sleep(1000);
  const row = cmdTable.locator('tbody tr').first();
  assert.equal(await row.locator('.badge').first().textContent(), 'failed', 'a late answer does not undo "failed"');
  await row.getByText('no modem on wwan0').waitFor();
  // A command's age is neutral, not the last-seen colours.
  assert.equal(await row.locator('.age').getAttribute('data-fresh'), null);
  assert.equal(await page.evaluate(() => (window as any).__noReload), true, 'the page was not reloaded');
  assert.deepEqual(log.take(), [], 'no console errors');
  await page.context().close();
});

test('bandwidth chart: a customer download is drawn as download', async (t) => {
  if (skip(t)) return;
  const d = fleet.online!;
  const conn = fleet.conns.find((c) => c.device_id === d.id);
  // 20 MB to the customer (bytes_out), 40 KB from it (bytes_in): docs/api.md "Usage".
  await server.ok(
    'POST',
    `/api/devices/${d.id}/heartbeat`,
    { usage: [{ connection_id: conn.id, bytes_in: 40_000, bytes_out: 20_000_000 }] },
    d.token,
  );
  const { page, log } = await newTab();
  await signIn(page);
  await page.goto(`${server.base}/devices/view/?id=${d.id}`);
  const chart = page.locator('.u-wrap').first();
  await chart.waitFor();
  await page.locator('.u-over').first().scrollIntoViewIfNeeded();
  const box = (await page.locator('.u-over').first().boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.move(box.x + box.width - 3, box.y + box.height / 2, { steps: 5 }); // the current hour
  const legend = page.locator('.u-legend').first();
  const value = async (label: RegExp) =>
    (await legend.locator('tr.u-series').filter({ hasText: label }).locator('.u-value').textContent())?.trim();
  await until('the legend shows the hour', async () => (await value(/Download/)) !== '—');
  assert.equal(await value(/Download/), '20.0 MB', 'download = bytes sent to the customer');
  assert.equal(await value(/Upload/), '40.0 KB', 'upload = bytes the customer sent');
  assert.deepEqual(log.take(), [], 'no console errors');
  await page.context().close();
});

test('".ovpn" is offered only when OpenVPN is on', { timeout: 120_000 }, async (t) => {
  if (skip(t)) return;
  {
    const { page, log } = await newTab();
    await signIn(page);
    await page.goto(`${server.base}/connections/`);
    await page.locator('tbody tr').first().waitFor();
    assert.equal(await page.getByRole('button', { name: '.ovpn' }).count(), 0, 'no .ovpn with OpenVPN off');
    assert.deepEqual(log.take(), [], 'no console errors');
    await page.context().close();
  }
  const on = await new Server({ POCKETPROXY_OPENVPN: 'on' }).start();
  try {
    const tok = await on.adminToken();
    const d = await pairDevice(on, tok, 'ovpn-phone');
    await on.ok('POST', '/api/connections', { device_id: d.id, protocol: 'http' }, tok);
    const { page, log } = await newTab();
    await signIn(page, on);
    await page.goto(`${on.base}/connections/`);
    await page.getByRole('button', { name: '.ovpn' }).first().waitFor();
    assert.deepEqual(log.take(), [], 'no console errors');
    await page.context().close();
  } finally {
    await on.stop();
  }
});

test('overview: blocked is not disabled; offline IP is marked stale; events in words', async (t) => {
  if (skip(t)) return;
  // Block one connection: its bandwidth limit is reached.
  const c = fleet.conns[0];
  await server.ok('PATCH', `/api/connections/${c.id}`, { bandwidth_limit_bytes: 0 }, token);
  await until('the connection is blocked', async () => {
    const x = await server.ok('GET', `/api/connections/${c.id}`, undefined, token);
    return x.blocked_reason;
  });
  const { page, log } = await newTab();
  await signIn(page);
  const stat = page.locator('.stat', { hasText: 'Connections' });
  await stat.getByText(/4 enabled/).waitFor();
  await stat.getByText(/1 blocked/).waitFor();
  const events = page.locator('.events');
  await events.getByText('tunnel went silent').first().waitFor();
  assert.doesNotMatch((await events.textContent()) ?? '', /reason: dead/);

  await server.ok('POST', `/api/devices/${fleet.online!.id}/heartbeat`, {}, fleet.online!.token); // still online
  await page.goto(`${server.base}/devices/`);
  const offlineRow = page.locator('tbody tr').filter({ hasText: fleet.offline!.name });
  await offlineRow.getByText('last known').waitFor();
  const onlineRow = page.locator('tbody tr').filter({ hasText: fleet.online!.name });
  await onlineRow.waitFor();
  assert.equal(await onlineRow.getByText('last known').count(), 0, 'an online device has a current IP');
  await page.goto(`${server.base}/devices/view/?id=${fleet.offline!.id}`);
  await page.getByText('Last known IP').waitFor();
  await page.getByText(/\(last known, .+ ago\)/).waitFor();
  assert.deepEqual(log.take(), [], 'no console errors');
  await page.context().close();
  await server.ok('PATCH', `/api/connections/${c.id}`, { bandwidth_limit_bytes: null }, token);
});

test('rotation link is shown, with a copy button', async (t) => {
  if (skip(t)) return;
  const { page, log } = await newTab();
  await signIn(page);
  await page.goto(`${server.base}/connections/`);
  const c = fleet.conns[1];
  const row = page.locator('tbody tr').filter({ hasText: c.username });
  await row.getByText(c.rotation_url).first().waitFor();
  assert.deepEqual(log.take(), [], 'no console errors');
  await page.context().close();
});

const PAGES: { name: string; path: () => string; ready: (p: Page) => Promise<unknown> }[] = [
  { name: 'overview', path: () => '/', ready: (p) => p.getByText('Devices online').waitFor() },
  { name: 'devices', path: () => '/devices/', ready: (p) => p.getByText(fleet.offline!.name).first().waitFor() },
  {
    name: 'device-online',
    path: () => `/devices/view/?id=${fleet.online!.id}`,
    ready: (p) => p.locator('.u-wrap').nth(1).waitFor(),
  },
  {
    name: 'device-offline',
    path: () => `/devices/view/?id=${fleet.offline!.id}`,
    ready: (p) => p.locator('.u-wrap').nth(1).waitFor(),
  },
  {
    name: 'pair',
    path: () => '/pair/',
    ready: async (p) => {
      await p.getByRole('button', { name: 'Create pairing code' }).click();
      await p.locator('.pair-code').waitFor();
    },
  },
  { name: 'connections', path: () => '/connections/', ready: (p) => p.locator('tbody tr').nth(3).waitFor() },
  { name: 'customers', path: () => '/customers/', ready: (p) => p.locator('tbody tr').first().waitFor() },
  { name: 'relays', path: () => '/relays/', ready: (p) => p.locator('tbody tr').first().waitFor() },
  { name: 'farms', path: () => '/farms/', ready: (p) => p.getByText('No enrollment tokens.').waitFor() },
  {
    name: 'not-found',
    path: () => '/no/such/page/',
    ready: (p) => p.getByRole('heading', { name: 'Page not found' }).waitFor(),
  },
];

for (const width of WIDTHS) {
  test(`every page at ${width} px: no sideways scroll (page or table), screenshot`, { timeout: 90_000 }, async (t) => {
    if (skip(t)) return;
    const dir = join(SHOTS, 'pages');
    mkdirSync(dir, { recursive: true });
    await server.ok('POST', `/api/devices/${fleet.online!.id}/heartbeat`, {}, fleet.online!.token);
    const { page, log } = await newTab(width);
    await page.goto(`${server.base}/login/`);
    await page.getByLabel('Email').waitFor();
    await page.screenshot({ path: join(dir, `login-${width}.png`), fullPage: true });
    assert.deepEqual(await overflow(page), [], `login at ${width}px`);
    await signIn(page);
    const problems: string[] = [];
    for (const p of PAGES) {
      const ready = await log
        .allowing(/status of 404/, async () => {
          await page.goto(`${server.base}${p.path()}`);
          await p.ready(page);
        })
        .then(
          () => true,
          (err: Error) => problems.push(`${p.name} at ${width}px: not shown (${err.message.split('\n')[0]})`),
        );
      if (ready !== true) continue;
      await page.waitForTimeout(300);
      await page.screenshot({ path: join(dir, `${p.name}-${width}.png`), fullPage: true });
      for (const o of await overflow(page)) problems.push(`${p.name} at ${width}px: ${o}`);
    }
    assert.deepEqual(problems, [], 'nothing scrolls sideways');
    assert.deepEqual(log.take(), [], 'no console errors');
    await page.context().close();
  });
}
