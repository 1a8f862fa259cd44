// Tier 3: the built `pocketproxy` command as a new user runs it. Walks the device contract of
// docs/design.md §3 over real HTTP: login → pairing code → pair → heartbeat → command → delivered → result.
// The tunnel is switched off here (it would create pp0 and nftables in this namespace); the lab tests
// run it inside network namespaces.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/pocketproxy.js', import.meta.url));
const ADMIN = { email: 'owner@example.com', password: 'a-long-admin-password' };

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

let dataDir: string;
let port: number;
let proc: ChildProcess;
let output = '';
const base = () => `http://127.0.0.1:${port}`;
const env = () => ({
  ...process.env,
  NODE_OPTIONS: '',
  POCKETPROXY_DATA_DIR: dataDir,
  POCKETPROXY_API_PORT: String(port),
  POCKETPROXY_API_HOST: '127.0.0.1',
  POCKETPROXY_ADMIN_EMAIL: ADMIN.email,
  POCKETPROXY_ADMIN_PASSWORD: ADMIN.password,
  POCKETPROXY_PUBLIC_HOST: '127.0.0.1',
  POCKETPROXY_TUNNEL: 'off',
  POCKETPROXY_LOG_LEVEL: 'info',
});

async function api(method: string, path: string, body?: unknown, token?: string) {
  const res = await fetch(base() + path, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, type: res.headers.get('content-type') };
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'pp-contract-'));
  port = await freePort();
  proc = spawn(process.execPath, [BIN, 'up'], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d) => (output += d));
  proc.stderr!.on('data', (d) => (output += d));
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`pocketproxy up exited: ${output}`);
    try {
      if ((await fetch(`${base()}/healthz`)).ok) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`pocketproxy up did not become healthy: ${output}`);
    await new Promise((r) => setTimeout(r, 250));
  }
});

after(async () => {
  if (proc && proc.exitCode === null) {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  }
  rmSync(dataDir, { recursive: true, force: true });
});

test('--help answers on every command', () => {
  for (const args of [
    ['--help'],
    ['up', '--help'],
    ['api', '--help'],
    ['worker', '--help'],
    ['tunnel', '--help'],
    ['migrate', '--help'],
  ]) {
    const r = spawnSync(process.execPath, [BIN, ...args], {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, /pocketproxy/);
  }
  const bad = spawnSync(process.execPath, [BIN, 'frobnicate'], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown command/);
});

test('says plainly that the tunnel is off and why', () => {
  assert.match(output, /device tunnel is OFF: POCKETPROXY_TUNNEL=off/);
});

test('a second process on the same data dir gets a clear error, not a corrupted database', () => {
  const r = spawnSync(process.execPath, [BIN, 'api'], {
    encoding: 'utf8',
    env: { ...env(), POCKETPROXY_API_PORT: '0' },
    timeout: 60_000,
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /PP_ERR_DB_LOCKED/);
  assert.match(r.stderr, new RegExp(`in use by process ${proc.pid}`));
});

test('device contract: login → pairing code → pair → heartbeat → command → delivered → result', async () => {
  const login = await api('POST', '/api/auth/login', ADMIN);
  assert.equal(login.status, 200);
  const token = login.json.token as string;
  const bad = await api('POST', '/api/auth/login', { ...ADMIN, password: 'wrong-password' });
  assert.equal(bad.status, 401);
  assert.match(bad.type ?? '', /application\/problem\+json/);

  const code = await api('POST', '/api/pairing-codes', { device_name: 'contract-phone' }, token);
  assert.equal(code.status, 201);
  assert.match(code.json.qr_svg, /<svg/);

  const pair = await api('POST', '/api/public/pair', { code: code.json.code });
  assert.equal(pair.status, 201, JSON.stringify(pair.json));
  const { device_id: id, auth_token: dtoken } = pair.json;
  assert.match(id, /^dev_/);
  assert.equal((await api('POST', '/api/public/pair', { code: code.json.code })).status, 404, 'a code pairs once');

  const ip = await api('GET', '/api/public/ip');
  assert.equal(ip.json.ip, '127.0.0.1');

  const hb0 = await api(
    'POST',
    `/api/devices/${id}/heartbeat`,
    { metrics: { battery: 55, carrier: 'LabTel' } },
    dtoken,
  );
  assert.equal(hb0.status, 200);
  assert.deepEqual(hb0.json.commands, []);

  const cmd = await api('POST', `/api/devices/${id}/commands`, { type: 'rotate_ip' }, token);
  assert.equal(cmd.status, 201);
  const hb1 = await api('POST', `/api/devices/${id}/heartbeat`, {}, dtoken);
  assert.deepEqual(
    hb1.json.commands.map((c: { id: string }) => c.id),
    [cmd.json.id],
  );

  assert.equal(
    (await api('POST', `/api/devices/${id}/commands/${cmd.json.id}/result`, { status: 'acked' }, dtoken)).json.status,
    'acked',
  );
  const done = await api(
    'POST',
    `/api/devices/${id}/commands/${cmd.json.id}/result`,
    { status: 'succeeded', result: { old_ip: '198.18.0.2', new_ip: '198.18.0.3' } },
    dtoken,
  );
  assert.equal(done.json.status, 'succeeded');

  const cmds = await api('GET', `/api/devices/${id}/commands`, undefined, token);
  assert.equal(cmds.json.items[0].status, 'succeeded');
  const dev = await api('GET', `/api/devices/${id}`, undefined, token);
  assert.equal(dev.json.status, 'online');
  assert.equal(dev.json.current_ip, '198.18.0.3');
  assert.equal(dev.json.metrics.carrier, 'LabTel');

  const openapi = await api('GET', '/api/openapi.json');
  assert.equal(openapi.json.openapi, '3.1.0');
  const metrics = await fetch(`${base()}/metrics`).then((r) => r.text());
  assert.match(metrics, /pocketproxy_devices\{status="online"\} 1/);
});
