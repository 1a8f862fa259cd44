// Rotation driver `command` against a fake IP echo server on 127.0.0.1 whose answer changes when
// the rotate command runs (it touches a file the server watches).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchPublicIp } from '../src/api-client.js';
import { createRotationDriver, rotateIp } from '../src/ops/rotation.js';

let dir = '';
const servers: http.Server[] = [];
after(async () => {
  for (const s of servers) s.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function echoServer(answer: () => string): Promise<string> {
  const s = http.createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ ip: answer() }));
  });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  servers.push(s);
  return `http://127.0.0.1:${(s.address() as { port: number }).port}/api/public/ip`;
}

test('command driver: runs via /bin/sh -c, waits for the new address, reports old -> new', async () => {
  dir = await mkdtemp(join(tmpdir(), 'ppagent-rot-'));
  const flag = join(dir, 'rotated');
  const url = await echoServer(() => (existsSync(flag) ? '198.18.1.77' : '198.18.1.2'));
  const driver = createRotationDriver({ driver: 'command', rotateCommand: `sleep 0.2 && touch '${flag}'` });
  let closed = 0;
  const r = await rotateIp({
    driver,
    publicIp: () => fetchPublicIp(url),
    closeCustomerSockets: () => closed++,
    pollMs: 100,
    waitTimeoutMs: 5_000,
  });
  assert.deepEqual(r, { old_ip: '198.18.1.2', new_ip: '198.18.1.77' });
  assert.equal(closed, 1);
});

test('command driver: the address never changes -> failed within the bound', async () => {
  const url = await echoServer(() => '198.18.1.2');
  const driver = createRotationDriver({ driver: 'command', rotateCommand: 'true' });
  const t0 = Date.now();
  await assert.rejects(rotateIp({ driver, publicIp: () => fetchPublicIp(url), pollMs: 100, waitTimeoutMs: 700 }), {
    code: 'PP_ERR_AGENT_ROTATE_FAILED',
  });
  assert.ok(Date.now() - t0 < 3_000);
});

test('command driver: a failing command fails the rotation with its stderr', async () => {
  const url = await echoServer(() => '198.18.1.2');
  const driver = createRotationDriver({ driver: 'command', rotateCommand: 'echo modem gone >&2; exit 3' });
  await assert.rejects(
    rotateIp({ driver, publicIp: () => fetchPublicIp(url), pollMs: 50, waitTimeoutMs: 500 }),
    /modem gone/,
  );
});

test('android-root and modemmanager drivers issue the documented commands', async () => {
  const calls: string[] = [];
  const exec = async (f: string, a: readonly string[]) => {
    calls.push([f, ...a].join(' '));
    return { stdout: '', stderr: '' };
  };
  const sleeps: number[] = [];
  const android = createRotationDriver({
    driver: 'android-root',
    airplaneSeconds: 5,
    exec,
    sleep: async (ms) => void sleeps.push(ms),
  });
  await android.rotate();
  const mm = createRotationDriver({ driver: 'modemmanager', exec });
  await mm.rotate();
  assert.equal(mm.airplaneMode, undefined);
  assert.deepEqual(calls, [
    'cmd connectivity airplane-mode enable',
    'cmd connectivity airplane-mode disable',
    'mmcli -m any --simple-disconnect',
    'mmcli -m any --simple-connect',
  ]);
  assert.deepEqual(sleeps, [5000]);
});

test('IP echo accepts JSON {ip} and bare text, rejects junk', async () => {
  assert.equal(await fetchPublicIp(await echoServer(() => '203.0.113.5')), '203.0.113.5');
  const s = http.createServer((_q, res) => res.end('not an ip'));
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  servers.push(s);
  await assert.rejects(fetchPublicIp(`http://127.0.0.1:${(s.address() as { port: number }).port}/`), {
    code: 'PP_ERR_AGENT_API',
  });
});
