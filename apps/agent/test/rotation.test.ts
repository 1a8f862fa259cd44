// Rotation driver `command` against a fake IP echo server on 127.0.0.1 whose answer changes when
// the rotate command runs (it touches a file the server watches).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchPublicIp } from '../src/api-client.js';
import { createRotationDriver, type Exec, realExec, rotateIp } from '../src/ops/rotation.js';
import { FAKE_MMCLI, fakeMmcliDir } from './fakes/index.js';

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

test('command driver: the address never changes -> the command runs twice, then failed', async () => {
  const url = await echoServer(() => '198.18.1.2');
  dir ||= await mkdtemp(join(tmpdir(), 'ppagent-rot-'));
  const runs = join(dir, 'runs');
  const driver = createRotationDriver({ driver: 'command', rotateCommand: `echo run >> '${runs}'` });
  await assert.rejects(rotateIp({ driver, publicIp: () => fetchPublicIp(url), pollMs: 100, waitTimeoutMs: 700 }), {
    code: 'PP_ERR_AGENT_ROTATE_FAILED',
  });
  assert.equal(await readFile(runs, 'utf8'), 'run\nrun\n');
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
  assert.deepEqual(calls, ['cmd connectivity airplane-mode enable', 'cmd connectivity airplane-mode disable']);
  assert.deepEqual(sleeps, [5000]);
});

test("modemmanager driver: reconnects the first modem with its bearer's APN (the fake mmcli, real execFile)", async () => {
  const fake = await fakeMmcliDir([
    { index: 3, imei: '867962041234566', apn: 'internet.example', connected: true, interface: 'wwan0' },
  ]);
  const env = process.env.FAKE_MMCLI_DIR;
  process.env.FAKE_MMCLI_DIR = fake.dir;
  try {
    const exec: Exec = (f, a, t) => realExec(f === 'mmcli' ? FAKE_MMCLI : f, a, t);
    const mm = createRotationDriver({ driver: 'modemmanager', exec });
    assert.equal(mm.airplaneMode, undefined);
    await mm.rotate();
    const calls = (await fake.calls()).map((c) => c.join(' '));
    assert.ok(calls.includes('-m 3 --simple-disconnect'), calls.join('\n'));
    const connect = calls.find((c) => c.includes('--simple-connect'));
    assert.match(connect ?? '', /^-m 3 .*--simple-connect=apn=internet\.example/);
    // No modem: a clear refusal, not a bare mmcli error.
    await fake.setModems([]);
    await assert.rejects(mm.rotate(), /ModemManager lists no modem/);
  } finally {
    if (env === undefined) delete process.env.FAKE_MMCLI_DIR;
    else process.env.FAKE_MMCLI_DIR = env;
    await fake.remove();
  }
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

// ---- the address check: retry once, then failed (fake time: sleep advances the clock) ----

/** A driver and an IP echo scripted per attempt: `answers[n]` is what the echo says after the n-th rotate. */
function scripted(answers: Array<string | 'down'>, before = '198.18.1.2') {
  let clock = 0;
  let rotations = 0;
  const events: string[] = [];
  const driver = {
    name: 'adb' as const,
    rotate: async () => {
      rotations++;
      events.push(`rotate ${rotations}`);
    },
  };
  const publicIp = async () => {
    const a = rotations === 0 ? before : answers[Math.min(rotations, answers.length) - 1]!;
    if (a === 'down') throw new Error('link down');
    return a;
  };
  return {
    events,
    rotations: () => rotations,
    deps: {
      driver,
      publicIp,
      closeCustomerSockets: () => void events.push('close'),
      waitTimeoutMs: 10_000,
      pollMs: 1_000,
      now: () => clock,
      sleep: async (ms: number) => {
        clock += ms;
      },
    },
    elapsed: () => clock,
  };
}

test('rotateIp: same address after the first try -> the driver runs once more; a new address then is success', async () => {
  const s = scripted(['198.18.1.2', '198.18.1.99']);
  assert.deepEqual(await rotateIp(s.deps), { old_ip: '198.18.1.2', new_ip: '198.18.1.99' });
  assert.deepEqual(s.events, ['rotate 1', 'close', 'rotate 2', 'close']);
  // The second try started only after the first one's deadline (10 s of polling every second).
  assert.equal(s.elapsed(), 10_000);
});

test('rotateIp: same address after both tries -> PP_ERR_AGENT_ROTATE_FAILED, two runs of the driver, not three', async () => {
  const s = scripted(['198.18.1.2', '198.18.1.2']);
  await assert.rejects(rotateIp(s.deps), (e: unknown) => {
    assert.equal((e as { code?: string }).code, 'PP_ERR_AGENT_ROTATE_FAILED');
    assert.match(String((e as Error).message), /still 198\.18\.1\.2 after two tries of 10000 ms/);
    return true;
  });
  assert.equal(s.rotations(), 2);
  assert.equal(s.elapsed(), 20_000);
});

test('rotateIp: a new address on the first try -> one run; the echo unreachable to the end -> failed without a second run', async () => {
  const ok = scripted(['198.18.1.50']);
  assert.deepEqual(await rotateIp(ok.deps), { old_ip: '198.18.1.2', new_ip: '198.18.1.50' });
  assert.equal(ok.rotations(), 1);
  const down = scripted(['down', '198.18.1.51']);
  await assert.rejects(rotateIp(down.deps), /public address unknown after rotation/);
  assert.equal(down.rotations(), 1);
});
