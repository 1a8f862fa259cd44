// Browser tests (issue 12) for what a device is offered and what one rotation or one connect leaves behind:
// the device page offers only the commands the device's agent reports it can run (its driver's
// `capabilities`), and one rotation is one row in the device's IP history and in the overview's events, one
// connect one "Device connected". Chromium (playwright-core) against a real `pocketproxy up`; the test plays
// the devices over the public device API, in the order a real agent sends things. Needs apps/dashboard/out and
// apps/server/dist (node scripts/build.mjs) and /usr/bin/chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ADMIN, CHROMIUM, ErrorLog, launchBrowser, missingBuilds, Server, until } from './harness.js';

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium)
  console.error(
    `\n*** dashboard browser tests SKIPPED: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM=) ***\n`,
  );

let server: Server;
let browser: Browser;
let token: string;
let internal: string;

type Dev = { id: string; token: string; name: string };

async function pairDevice(name: string): Promise<Dev> {
  const code = await server.ok('POST', '/api/pairing-codes', { device_name: name }, token);
  const pair = await server.ok('POST', '/api/public/pair', { code: code.code, agent_version: 'lab-0.1' });
  return { id: pair.device_id, token: pair.auth_token, name };
}

/** The device's heartbeat, as the agent sends it (capabilities: what its driver can run; absent: an older agent). */
async function heartbeat(d: Dev, body: { public_ip?: string; capabilities?: string[] } = {}) {
  return server.ok('POST', `/api/devices/${d.id}/heartbeat`, body, d.token);
}

before(async () => {
  if (!haveChromium) return;
  const missing = missingBuilds();
  if (missing) throw new Error(missing);
  server = await new Server().start();
  token = await server.adminToken();
  internal = readFileSync(join(server.dataDir, 'internal.token'), 'utf8').trim();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close().catch(() => {});
  await server?.stop();
});

function skip(t: { skip: (m: string) => void }): boolean {
  if (haveChromium) return false;
  t.skip(`no Chromium at ${CHROMIUM}`);
  return true;
}

let session: { token: string; expires_at: string } | undefined;
async function newSignedInTab(): Promise<{ page: Page; log: ErrorLog }> {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(10_000);
  const log = new ErrorLog(page);
  session ??= (await server.ok('POST', '/api/auth/login', ADMIN)) as { token: string; expires_at: string };
  await page.goto(`${server.base}/login/`);
  await page.evaluate((x) => {
    sessionStorage.setItem('pp.token', x.token);
    sessionStorage.setItem('pp.token_expires_at', x.expires_at);
  }, session);
  await page.goto(`${server.base}/`);
  await page.getByText('Devices online').waitFor();
  return { page, log };
}

async function openDevice(page: Page, d: Dev) {
  await page.goto(`${server.base}/devices/view/?id=${d.id}`);
  await page.getByRole('heading', { name: new RegExp(d.name) }).waitFor();
  await page.getByRole('heading', { name: 'IP rotation' }).waitFor();
}

/** What the device page offers: the Rotate button and the other commands' options. */
async function offered(page: Page) {
  const select = page.locator('#extra-cmd');
  return {
    rotate: await page.getByRole('button', { name: 'Rotate IP now' }).count(),
    other: (await select.count()) ? await select.locator('option').allTextContents() : [],
  };
}

test("the device page offers only the commands the device's driver can run", async (t) => {
  if (skip(t)) return;
  const cases = [
    // --rotate-driver command (the lab's, a USB modem script): rotation only.
    { name: 'usb-modem-box-01', caps: ['rotate_ip', 'config_update'], rotate: 1, other: [] },
    // --rotate-driver android-root: airplane mode and Wi-Fi too; no --allow-reboot.
    {
      name: 'android-root-phone-02',
      caps: ['rotate_ip', 'wifi_toggle', 'airplane_mode', 'config_update'],
      rotate: 1,
      other: ['Airplane mode cycle', 'Toggle Wi-Fi'],
    },
    // No rotation driver, --allow-reboot.
    { name: 'no-driver-box-03', caps: ['reboot', 'config_update'], rotate: 0, other: ['Reboot'] },
    // An agent from before capabilities: everything, as the API accepts everything from it.
    {
      name: 'older-agent-phone-04',
      caps: undefined,
      rotate: 1,
      other: ['Airplane mode cycle', 'Toggle Wi-Fi', 'Reboot'],
    },
  ];
  const { page, log } = await newSignedInTab();
  for (const c of cases) {
    const d = await pairDevice(c.name);
    await heartbeat(d, { public_ip: '198.51.100.9', ...(c.caps ? { capabilities: c.caps } : {}) });
    await openDevice(page, d);
    assert.deepEqual(await offered(page), { rotate: c.rotate, other: c.other }, c.name);
    if (!c.other.length) await page.getByTestId('no-other-commands').waitFor();
    if (!c.rotate) await page.getByTestId('no-rotation').waitFor();
    // What is not offered is refused by the API too, and nothing is queued.
    if (c.caps && !c.caps.includes('airplane_mode')) {
      const r = await server.call('POST', `/api/devices/${d.id}/commands`, { type: 'airplane_mode' }, token);
      assert.equal(r.status, 409);
      assert.equal(r.json.code, 'PP_ERR_API_COMMAND_UNSUPPORTED');
    }
  }
  // An offered command is sent (Reboot asks first).
  await page.locator('#extra-cmd').selectOption({ label: 'Reboot' });
  await page.getByRole('button', { name: 'Send' }).click();
  await page
    .getByRole('dialog')
    .getByRole('button', { name: /Reboot/ })
    .click();
  await page.locator('section[aria-labelledby="cmds-h"] tbody tr').filter({ hasText: 'Reboot' }).first().waitFor();
  // The devices list: the per-row Rotate only on rows whose driver can rotate.
  await page.goto(`${server.base}/devices/`);
  await page.getByRole('button', { name: 'Rotate IP of usb-modem-box-01' }).waitFor();
  await page.getByRole('button', { name: 'Copy no-driver-box-03' }).waitFor();
  for (const c of cases)
    assert.equal(
      await page.getByRole('button', { name: `Rotate IP of ${c.name}` }).count(),
      c.rotate,
      `${c.name}: per-row Rotate`,
    );
  assert.deepEqual(log.take(), [], 'no console errors');
  await page.context().close();
});

test('one rotation is one row in IP history and in the events feed; one connect is one "Device connected"', async (t) => {
  if (skip(t)) return;
  const d = await pairDevice('rotating-pixel-05');
  const [oldIp, newIp] = ['198.51.100.20', '198.51.100.21'];
  const caps = ['rotate_ip', 'config_update'];
  // Connect: the agent's first heartbeat and its tunnel session, as they arrive at a real start.
  await heartbeat(d, { public_ip: oldIp, capabilities: caps });
  const dev = await server.ok('GET', `/api/devices/${d.id}`, undefined, token);
  await server.ok('POST', '/api/internal/vpn/connected', { device_id: d.id, vpn_ip: dev.vpn_ip }, internal);

  const { page, log } = await newSignedInTab();
  await openDevice(page, d);
  await page.getByRole('button', { name: 'Rotate IP now' }).click();
  const cmd = await until('the rotation is queued', async () => {
    const l = await server.ok('GET', `/api/devices/${d.id}/commands`, undefined, token);
    return l.items.find((c: { type: string }) => c.type === 'rotate_ip');
  });
  // The agent: gets it (no relay here: by heartbeat), acks it, runs the driver; its periodic heartbeat
  // sees the new address while the rotation runs; then the result; then the heartbeat it sends after a
  // rotation, with the same new address.
  const got = await heartbeat(d, { public_ip: oldIp, capabilities: caps });
  assert.ok(got.commands.some((c: { id: string }) => c.id === cmd.id));
  const result = `/api/devices/${d.id}/commands/${cmd.id}/result`;
  await server.ok('POST', result, { status: 'acked' }, d.token);
  await heartbeat(d, { public_ip: newIp, capabilities: caps });
  await server.ok('POST', result, { status: 'succeeded', result: { old_ip: oldIp, new_ip: newIp } }, d.token);
  await heartbeat(d, { public_ip: newIp, capabilities: caps });

  const history = page.locator('section[aria-labelledby="ips-h"] tbody tr');
  await history.filter({ hasText: `${oldIp} → ${newIp}` }).waitFor();
  // Everything above has been answered: what the page shows after a reload is all there is.
  await page.reload();
  await history.filter({ hasText: `${oldIp} → ${newIp}` }).waitFor();
  const rows = await history.allTextContents();
  assert.deepEqual(
    rows.filter((r) => r.includes(newIp)).map((r) => r.replace(/^.*?(\d+\.\d+\.\d+\.\d+ → )/, '$1')),
    [`${oldIp} → ${newIp}rotation`],
    `IP history: ${JSON.stringify(rows)}`,
  );

  await page.goto(`${server.base}/`);
  const events = page.locator('.events li').filter({ hasText: d.name });
  await events.filter({ hasText: newIp }).first().waitFor();
  const texts = await events.allTextContents();
  assert.deepEqual(
    texts.filter((x) => x.includes(newIp)).map((x) => x.slice(x.indexOf('IP changed'))),
    [`IP changed${d.name}${oldIp} → ${newIp} (rotation)`],
    `events: ${JSON.stringify(texts)}`,
  );
  assert.equal(texts.filter((x) => x.includes('Device connected')).length, 1, `events: ${JSON.stringify(texts)}`);
  assert.deepEqual(log.take(), [], 'no console errors');
  await page.context().close();
});
