// Headless smoke test of the built dashboard: signs in, visits every page, fails on console errors
// and saves screenshots. Point it at the mock (test/mock-api.mjs) or a real `pocketproxy api`.
//   BASE=http://127.0.0.1:18090 EMAIL=a@b.c PASSWORD=secret-pass-1 node apps/dashboard/test/smoke.mjs [outdir]
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const BASE = process.env.BASE ?? 'http://127.0.0.1:18090';
const EMAIL = process.env.EMAIL ?? 'a@b.c';
const PASSWORD = process.env.PASSWORD ?? 'secret-pass-1';
const WIDTH = Number(process.env.WIDTH ?? 1280);
const out = process.argv[2] ?? '/tmp/pp-shots';
mkdirSync(out, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const problems = [];
try {
  const page = await browser.newPage({ viewport: { width: WIDTH, height: 900 } });
  let expectErrors = false; // the browser itself logs the 401 of the revoked-token step
  page.on('console', (m) => {
    if (m.type() === 'error' && !expectErrors) problems.push(`console: ${m.text()} @ ${page.url()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message} @ ${page.url()}`));

  await page.goto(`${BASE}/`);
  await page.waitForURL(/\/login\//);
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
  await page.getByText('Devices online').waitFor();
  await page.waitForTimeout(500);
  await page.screenshot({ path: `${out}/overview-${WIDTH}.png`, fullPage: true });

  for (const [name, path] of [
    ['devices', '/devices/'],
    ['connections', '/connections/'],
    ['customers', '/customers/'],
    ['relays', '/relays/'],
    ['farms', '/farms/'],
    ['farm-host', '/farms/view/?id=farm_rack0000001'],
  ]) {
    await page.goto(`${BASE}${path}`);
    await page.locator('.table-wrap, .empty').first().waitFor(); // a table, or the empty state
    await page.waitForTimeout(400);
    await page.screenshot({ path: `${out}/${name}-${WIDTH}.png`, fullPage: true });
  }

  // Device page: open the first device from the table, rotate, wait for the chart.
  await page.goto(`${BASE}/devices/`);
  await page.locator('tbody a').first().click();
  await page.waitForURL(/\/devices\/view\//);
  await page.getByRole('button', { name: 'Rotate IP now' }).click();
  await page.locator('.u-wrap').first().waitFor({ timeout: 10_000 });
  await page.waitForTimeout(3000);
  await page.screenshot({ path: `${out}/device-${WIDTH}.png`, fullPage: true });

  await page.goto(`${BASE}/pair/`);
  await page.getByLabel('Device name (optional)').fill('smoke-phone');
  await page.getByRole('button', { name: 'Create pairing code' }).click();
  await page.getByText('On the device, run:').waitFor();
  await page.screenshot({ path: `${out}/pair-${WIDTH}.png`, fullPage: true });
  if (process.env.WAIT_PAIRED) {
    await page.getByText('Paired: smoke-phone').waitFor({ timeout: 20_000 });
    await page.screenshot({ path: `${out}/paired-${WIDTH}.png`, fullPage: true });
  }

  await page.goto(`${BASE}/connections/`);
  await page.getByRole('button', { name: 'New connection' }).click();
  await page.getByRole('button', { name: 'Create connection' }).click();
  await page.getByText('choose a device', { exact: true }).waitFor();
  await page.screenshot({ path: `${out}/connection-form-${WIDTH}.png`, fullPage: false });
  await page.keyboard.press('Escape');

  // Bulk rotate: select every visible device and rotate.
  await page.goto(`${BASE}/devices/?status=online`);
  await page.getByLabel('Select all devices').check();
  await page.getByRole('button', { name: /^Rotate IP \(\d+\)$/ }).click();
  await page.getByText(/Rotation requested for \d+ of \d+ device/).waitFor();
  await page.screenshot({ path: `${out}/bulk-rotate-${WIDTH}.png` });

  // An expired or revoked token lands on the login page with an explanation.
  expectErrors = true;
  await page.evaluate(() => sessionStorage.setItem('pp.token', 'revoked'));
  await page.goto(`${BASE}/customers/`);
  await page.waitForURL(/\/login\//);
  await page.getByText('Your session expired, please sign in again').waitFor();
  console.log(`screenshots in ${out}`);
} catch (err) {
  problems.push(`failed: ${err.message}`);
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('smoke ok');
