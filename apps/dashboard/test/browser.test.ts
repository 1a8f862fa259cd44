// Browser tests of the operator dashboard: Debian's Chromium (playwright-core) against a real
// `pocketproxy up` with an embedded database, serving the built static export. The test plays the
// device over the public device API (pair, heartbeat, command result) and watches the page update
// live. Screenshots of every page at 1280 and 768 px go to test-results/dashboard/.
// Needs apps/dashboard/out and apps/server/dist (the test command builds them); needs /usr/bin/chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { ADMIN, CHROMIUM, ErrorLog, launchBrowser, missingBuilds, Server, shotPath } from './harness.js';

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium)
  console.error(
    `\n*** dashboard browser tests SKIPPED: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM=) ***\n`,
  );

let server: Server;
let browser: Browser;
let token: string; // admin token for API checks

before(async () => {
  if (!haveChromium) return;
  const missing = missingBuilds();
  if (missing) throw new Error(missing);
  server = await new Server().start();
  token = await server.adminToken();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close().catch(() => {});
  await server?.stop();
});

/** A fresh tab (own sessionStorage) with its console watched. */
async function newTab(width = 1280): Promise<{ page: Page; log: ErrorLog }> {
  const ctx = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(10_000);
  return { page, log: new ErrorLog(page) };
}

async function signIn(page: Page) {
  await page.goto(`${server.base}/`);
  await page.waitForURL(/\/login\//);
  await page.getByLabel('Email').fill(ADMIN.email);
  await page.getByLabel('Password').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
  await page.getByText('Devices online').waitFor();
}

/** Client-side navigation through the top bar (no page load). */
async function nav(page: Page, label: string) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label, exact: true }).click();
}

const rowOf = (page: Page | Locator, name: string) =>
  page.locator('tbody tr').filter({ has: page.getByRole('link', { name, exact: true }) });

function skipWithoutChromium(t: { skip: (m: string) => void }): boolean {
  if (haveChromium) return false;
  t.skip(`no Chromium at ${CHROMIUM}`);
  return true;
}

const state: { deviceId?: string; deviceToken?: string; customerId?: string; connection?: any } = {};

test('operator flow: log in, customer, pair, live online, connection, live rotation, log out', {
  timeout: 90_000,
}, async (t) => {
  if (skipWithoutChromium(t)) return;
  const { page, log } = await newTab();

  // Unauthenticated visitors land on the login page; a wrong password says so.
  await page.goto(`${server.base}/devices/`);
  await page.waitForURL(/\/login\//);
  await page.getByLabel('Email').fill(ADMIN.email);
  await page.getByLabel('Password').fill('not-the-password');
  await log.allowing(/status of 401/, async () => {
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('.alert-error').first().waitFor();
  });
  await signIn(page);
  await page.locator('.live-live').waitFor(); // the WebSocket is up: what follows must arrive over it

  // Customer.
  await nav(page, 'Customers');
  await page.getByRole('button', { name: 'New customer' }).click();
  let dlg = page.getByRole('dialog', { name: 'New customer' });
  await dlg.getByLabel('Name').fill('Acme Scraping');
  await dlg.getByLabel('Email (optional)').fill('ops@acme.example');
  await dlg.getByRole('button', { name: 'Create customer' }).click();
  await dlg.waitFor({ state: 'hidden' });
  await page.locator('tbody tr', { hasText: 'Acme Scraping' }).waitFor();
  const customers = await server.ok('GET', '/api/customers', undefined, token);
  const cust = customers.items.find((c: any) => c.name === 'Acme Scraping');
  assert.ok(cust, 'customer stored');
  assert.equal(cust.email, 'ops@acme.example');
  state.customerId = cust.id;

  // Pairing code: read it off the page and pair as the agent would.
  await nav(page, 'Pair a device');
  await page.getByLabel('Device name (optional)').fill('lab-phone-1');
  await page.getByRole('button', { name: 'Create pairing code' }).click();
  const code = (await page.locator('.pair-code').textContent())?.trim() ?? '';
  assert.match(code, /^\S{4,}$/, 'a pairing code is shown');
  // The commands: pair with the pairing URI (server, code, server key fingerprint), then run; shown whole.
  const pairCmd = page.locator('.cmd-wrap code');
  await page.getByText(`code=${code}&fp=`).waitFor();
  const fp = (await pairCmd.textContent())?.match(/&fp=([A-Za-z0-9_-]{22})'/)?.[1];
  assert.ok(fp, 'the pair command carries the fingerprint');
  assert.match(
    (await pairCmd.textContent()) ?? '',
    /^pocketproxy-agent pair 'pocketproxy:\/\/pair\?server=[^']+&code=[^']+&fp=[^']+'\npocketproxy-agent run /,
  );
  await page.getByText(`Server fingerprint: ${fp}`).waitFor();
  assert.ok(
    await pairCmd.evaluate((el) => el.parentElement!.scrollWidth <= el.parentElement!.clientWidth),
    'the commands wrap instead of scrolling out of view',
  );
  const pair = await server.call('POST', '/api/public/pair', { code, agent_version: 'lab-0.1' });
  assert.equal(pair.status, 201, JSON.stringify(pair.json));
  state.deviceId = pair.json.device_id;
  state.deviceToken = pair.json.auth_token;
  await page.getByText('Paired: lab-phone-1').waitFor({ timeout: 8_000 });

  // The device list shows it offline; a heartbeat turns it online without a reload.
  await nav(page, 'Devices');
  const row = rowOf(page, 'lab-phone-1');
  await row.getByText('offline', { exact: true }).waitFor();
  await page.evaluate(() => ((window as any).__noReload = true));
  const hb = await server.call(
    'POST',
    `/api/devices/${state.deviceId}/heartbeat`,
    {
      metrics: { battery: 77, charging: true, signal: -85, carrier: 'Vodafone', network_type: 'LTE' },
      public_ip: '198.51.100.7',
    },
    state.deviceToken,
  );
  assert.equal(hb.status, 200, JSON.stringify(hb.json));
  await row.getByText('online', { exact: true }).waitFor({ timeout: 8_000 });
  await row.getByText('198.51.100.7').waitFor({ timeout: 8_000 });
  await row.getByText('77%').waitFor();
  assert.equal(await page.evaluate(() => (window as any).__noReload), true, 'the page was not reloaded');

  // Connection: created in the form, proxy string read back from the page and checked against the API.
  await nav(page, 'Connections');
  await page.getByRole('button', { name: 'New connection' }).click();
  dlg = page.getByRole('dialog', { name: 'New connection' });
  await dlg.getByLabel('Device').selectOption({ label: 'lab-phone-1 — online' });
  await dlg.getByLabel('Customer').selectOption({ label: 'Acme Scraping' });
  await dlg.getByLabel('SOCKS5 (TCP + UDP)').check();
  await dlg.getByLabel('Max simultaneous connections').fill('25');
  await dlg.getByLabel('Download rate limit (kbps)').fill('50000');
  await dlg.getByLabel('Minimum time between rotations (s)').fill('300');
  await dlg.getByRole('button', { name: 'Create connection' }).click();
  await dlg.waitFor({ state: 'hidden' });
  await page.getByText('Connection created. It is ready to use:').waitFor();
  const shown = (await page.locator('.alert code.mono').first().textContent())?.trim() ?? '';
  const conns = await server.ok('GET', `/api/connections?device_id=${state.deviceId}`, undefined, token);
  assert.equal(conns.items.length, 1);
  const conn = conns.items[0];
  state.connection = conn;
  assert.equal(conn.customer_id, state.customerId);
  assert.equal(conn.protocol, 'socks5');
  assert.deepEqual(
    [conn.max_connections, conn.rate_limit_down_kbps, conn.rate_limit_up_kbps],
    [25, 50000, null],
    'limits stored; an empty one is no limit',
  );
  assert.equal(conn.rotation_min_interval_s, 300, 'the minimum time between rotations is stored');
  assert.equal(shown, conn.proxy_url, 'the page shows the stored proxy string');
  assert.equal(shown, `socks5://${conn.username}:${conn.password}@${conn.host}:${conn.port}`);
  const connRow = page.locator('tbody tr').filter({ hasText: conn.username });
  // Not in force yet (no relay has applied it, the device has not reported it): pending, with its age.
  await connRow.getByText(/^pending · /).waitFor();
  // The test plays the relay (the device's tunnel comes up: vpn/connected) and the device (it applied
  // the credentials version): the row turns live without a reload.
  const internalToken = readFileSync(join(server.dataDir, 'internal.token'), 'utf8').trim();
  const device = await server.ok('GET', `/api/devices/${state.deviceId}`, undefined, token);
  const up = await server.call(
    'POST',
    '/api/internal/vpn/connected',
    { device_id: state.deviceId, vpn_ip: device.vpn_ip, endpoint: '198.51.100.7:40000' },
    internalToken,
  );
  assert.equal(up.status, 200, JSON.stringify(up.json));
  const creds = await server.ok('GET', `/api/devices/${state.deviceId}/credentials`, undefined, state.deviceToken);
  await server.ok(
    'POST',
    `/api/devices/${state.deviceId}/credentials/applied`,
    { version: creds.version },
    state.deviceToken,
  );
  await connRow.getByText('live', { exact: true }).waitFor({ timeout: 8_000 });
  await connRow.getByText('Acme Scraping').waitFor();

  // Rotation: queued from the device page, the test plays the device, the page follows live.
  await connRow.getByRole('link', { name: 'lab-phone-1' }).click();
  await page.waitForURL(/\/devices\/view\/\?id=/);
  await page.getByRole('heading', { name: /lab-phone-1/ }).waitFor();
  await page.evaluate(() => ((window as any).__noReload = true));
  await page.getByRole('button', { name: 'Rotate IP now' }).click();
  const cmdTable = page.locator('section[aria-labelledby="cmds-h"]');
  await cmdTable.getByText('pending', { exact: true }).waitFor();
  const beat = await server.ok(
    'POST',
    `/api/devices/${state.deviceId}/heartbeat`,
    { public_ip: '198.51.100.7' },
    state.deviceToken,
  );
  const cmd = beat.commands.find((c: any) => c.type === 'rotate_ip');
  assert.ok(cmd, `the heartbeat hands out the rotation: ${JSON.stringify(beat)}`);
  await cmdTable.getByText('sent', { exact: true }).waitFor({ timeout: 8_000 });
  await server.ok(
    'POST',
    `/api/devices/${state.deviceId}/commands/${cmd.id}/result`,
    { status: 'succeeded', result: { old_ip: '198.51.100.7', new_ip: '198.51.100.99' } },
    state.deviceToken,
  );
  await cmdTable.getByText('succeeded', { exact: true }).waitFor({ timeout: 8_000 });
  await cmdTable.getByText('198.51.100.7 → 198.51.100.99').waitFor();
  await page.locator('dd.mono', { hasText: '198.51.100.99' }).waitFor({ timeout: 8_000 }); // current IP, from ip_changed
  assert.equal(await page.evaluate(() => (window as any).__noReload), true, 'the page was not reloaded');
  const stored = await server.ok('GET', `/api/devices/${state.deviceId}/commands`, undefined, token);
  assert.equal(stored.items.find((c: any) => c.id === cmd.id)?.status, 'succeeded');

  // Log out: back on /login, the token is gone, and protected pages send us back there.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/login\//);
  assert.equal(
    await page.evaluate(() => Object.keys(sessionStorage).filter((k) => /token/i.test(k)).length),
    0,
    'no token left in sessionStorage',
  );
  await page.goto(`${server.base}/connections/`);
  await page.waitForURL(/\/login\//);
  await page.getByLabel('Email').waitFor();

  assert.deepEqual(log.take(), [], 'no console errors');
  await page.context().close();
});

test('bad input shows a clear message and changes nothing stored', { timeout: 60_000 }, async (t) => {
  if (skipWithoutChromium(t)) return;
  assert.ok(state.deviceId && state.connection, 'needs the device and connection from the flow test');
  const { page, log } = await newTab();
  await signIn(page);
  const snapshot = async () =>
    JSON.stringify(
      await Promise.all(
        ['/api/customers', '/api/relays', '/api/connections', '/api/devices'].map((p) =>
          server.ok('GET', `${p}?limit=1000`, undefined, token),
        ),
      ),
      (k, v) => (k === 'last_seen_at' || k === 'devices_online' || k === 'status' ? undefined : v),
    );
  const before = await snapshot();

  /** Submit, then expect `message` inside the dialog (field error or notice), dialog still open. */
  async function refused(dlg: Locator, submit: string, message: string | RegExp) {
    await dlg.getByRole('button', { name: submit }).click();
    try {
      await dlg.locator('.field-error, .alert').filter({ hasText: message }).first().waitFor({ timeout: 8_000 });
    } catch (err) {
      await page.screenshot({ path: shotPath('failure-bad-input', 1280) });
      throw err;
    }
    assert.ok(await dlg.isVisible(), 'the form stays open');
  }

  // Customers: empty, whitespace, bad email, duplicate name (the API's 409).
  await nav(page, 'Customers');
  await page.getByRole('button', { name: 'New customer' }).click();
  let dlg = page.getByRole('dialog', { name: 'New customer' });
  await refused(dlg, 'Create customer', 'must not be empty');
  await dlg.getByLabel('Name').fill('   ');
  await refused(dlg, 'Create customer', 'must not be empty');
  await dlg.getByLabel('Name').fill('Globex');
  await dlg.getByLabel('Email (optional)').fill('not-an-email');
  await refused(dlg, 'Create customer', 'must be an email address');
  await dlg.getByLabel('Email (optional)').fill('');
  await dlg.getByLabel('Name').fill('Acme Scraping');
  await log.allowing(/status of 409/, () =>
    refused(dlg, 'Create customer', 'a customer named "Acme Scraping" already exists'),
  );
  // The name field cannot take more than 64 characters.
  await dlg.getByLabel('Name').fill('x'.repeat(80));
  assert.equal((await dlg.getByLabel('Name').inputValue()).length, 64);
  await dlg.getByRole('button', { name: 'Cancel' }).click();

  // Relays: wrong ports, empty port, too long and malformed host, duplicate name.
  await nav(page, 'Relays');
  await page.getByRole('button', { name: 'New relay' }).click();
  dlg = page.getByRole('dialog', { name: 'New relay' });
  await dlg.getByLabel('Name').fill('relay-2');
  await dlg.getByLabel('Public host').fill('relay2.example.com');
  for (const port of ['70000', '0', '']) {
    await dlg.getByLabel('Tunnel port').fill(port);
    await refused(
      dlg,
      'Create relay',
      port === '70000'
        ? 'must be at most 65535'
        : port === '0'
          ? 'must be at least 1'
          : 'enter a port between 1 and 65535',
    );
  }
  await dlg.getByLabel('Tunnel port').fill('1195');
  await dlg.getByLabel('Public host').fill('a'.repeat(300));
  await refused(dlg, 'Create relay', 'must be at most 253 characters');
  await dlg.getByLabel('Public host').fill('bad host name');
  await refused(dlg, 'Create relay', 'must be a hostname or IP address');
  await dlg.getByLabel('Public host').fill('relay2.example.com');
  await dlg.getByLabel('Name').fill('local');
  await log.allowing(/status of 409/, () => refused(dlg, 'Create relay', 'a relay named "local" already exists'));
  await dlg.getByRole('button', { name: 'Cancel' }).click();

  // Connections: no device, short and too long username, bad allow-list line, taken username.
  await nav(page, 'Connections');
  await page.getByRole('button', { name: 'New connection' }).click();
  dlg = page.getByRole('dialog', { name: 'New connection' });
  await refused(dlg, 'Create connection', 'choose a device');
  await dlg.getByLabel('Device').selectOption(state.deviceId!);
  await dlg.getByLabel('Username').fill('ab');
  await refused(dlg, 'Create connection', 'must be at least 3 characters');
  await dlg.getByLabel('Username').fill('u'.repeat(65));
  await refused(dlg, 'Create connection', 'must be at most 64 characters');
  await dlg.getByLabel('Username').fill('');
  await dlg.getByLabel('Password').fill('short');
  await refused(dlg, 'Create connection', 'must be at least 8 characters');
  await dlg.getByLabel('Password').fill('');
  await dlg.getByLabel('Source allow-list').fill('203.0.113.7/32\nnot-a-cidr');
  await refused(dlg, 'Create connection', /line 2: must be an IPv4 CIDR/);
  await dlg.getByLabel('Source allow-list').fill('');
  await dlg.getByLabel('Monthly bandwidth limit').fill('-5');
  await refused(dlg, 'Create connection', /must be at least 0|enter a number/);
  await dlg.getByLabel('Monthly bandwidth limit').fill('');
  for (const [label, value, message] of [
    ['Max simultaneous connections', '0', 'must be at least 1'],
    ['Max simultaneous connections', '2.5', 'must be a whole number'],
    ['Max simultaneous connections', '100001', 'must be at most 100000'],
    ['Download rate limit (kbps)', '20000000', 'must be at most 10000000 kbps'],
    ['Upload rate limit (kbps)', '0', 'must be at least 1 kbps'],
  ] as const) {
    await dlg.getByLabel(label).fill(value);
    await refused(dlg, 'Create connection', message);
    await dlg.getByLabel(label).fill('');
  }
  await dlg.getByLabel('Username').fill(state.connection.username);
  await log.allowing(/status of 409/, () =>
    refused(dlg, 'Create connection', `the username "${state.connection.username}" is taken`),
  );
  await dlg.getByRole('button', { name: 'Cancel' }).click();

  // Editing a connection with a bad value is refused too, and the stored one is untouched.
  const connRow = page.locator('tbody tr').filter({ hasText: state.connection.username });
  await connRow.getByRole('button', { name: 'Edit' }).click();
  dlg = page.getByRole('dialog', { name: 'Edit connection' });
  await dlg.getByLabel('Username').fill('no spaces allowed');
  await refused(dlg, 'Save', 'may contain letters, digits, dot, dash and underscore');
  await dlg.getByRole('button', { name: 'Cancel' }).click();

  assert.equal(await snapshot(), before, 'stored data unchanged');
  assert.deepEqual(log.take(), [], 'no console errors');
  await page.context().close();
});

const PAGES: { name: string; go: (page: Page) => Promise<void>; ready: (page: Page) => Promise<unknown> }[] = [
  { name: 'overview', go: (p) => nav(p, 'Overview'), ready: (p) => p.getByText('Devices online').waitFor() },
  { name: 'devices', go: (p) => nav(p, 'Devices'), ready: (p) => rowOf(p, 'lab-phone-1').waitFor() },
  {
    name: 'device',
    go: (p) => rowOf(p, 'lab-phone-1').getByRole('link').click(),
    ready: async (p) => {
      await p.locator('section[aria-labelledby="cmds-h"]').getByText('succeeded').waitFor();
      await p.locator('.u-wrap').nth(1).waitFor(); // both usage charts drawn
    },
  },
  {
    name: 'pair',
    go: async (p) => {
      await nav(p, 'Pair a device');
      await p.getByRole('button', { name: 'Create pairing code' }).click();
    },
    ready: (p) => p.getByText('On the device, run:').waitFor(),
  },
  {
    name: 'connections',
    go: (p) => nav(p, 'Connections'),
    ready: (p) =>
      p
        .getByText(/^(live|pending · .+)$/)
        .first()
        .waitFor(),
  },
  {
    name: 'connection-form',
    go: (p) => p.getByRole('button', { name: 'New connection' }).click(),
    ready: (p) => p.getByRole('dialog', { name: 'New connection' }).waitFor(),
  },
  {
    name: 'customers',
    go: (p) => p.goto(`${server.base}/customers/`).then(() => {}),
    ready: (p) => p.getByText('Acme Scraping').first().waitFor(),
  },
  { name: 'relays', go: (p) => nav(p, 'Relays'), ready: (p) => p.locator('tbody tr').first().waitFor() },
];

for (const width of [1280, 768]) {
  test(`every page at ${width} px: renders, no console errors, screenshot`, { timeout: 60_000 }, async (t) => {
    if (skipWithoutChromium(t)) return;
    assert.ok(state.deviceId, 'needs the device from the flow test');
    // Keep the device online for the pictures.
    await server.ok(
      'POST',
      `/api/devices/${state.deviceId}/heartbeat`,
      { metrics: { battery: 76, signal: -83 } },
      state.deviceToken,
    );
    const { page, log } = await newTab(width);
    await page.goto(`${server.base}/login/`);
    await page.getByLabel('Email').waitFor();
    await page.screenshot({ path: shotPath('login', width), fullPage: true });
    await signIn(page);
    for (const p of PAGES) {
      await p.go(page);
      await p.ready(page);
      await page.waitForTimeout(300); // let ages and charts settle
      await page.screenshot({ path: shotPath(p.name, width), fullPage: !p.name.endsWith('-form') });
      // Nothing may stick out sideways except inside a scrolling table.
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
      assert.ok(overflow <= 0, `${p.name} at ${width}px scrolls sideways by ${overflow}px`);
      if (p.name === 'connection-form') await page.keyboard.press('Escape');
    }
    assert.deepEqual(log.take(), [], 'no console errors');
    await page.context().close();
  });
}
