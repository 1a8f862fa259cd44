// The farm supervisor (src/farm/supervisor.ts) against in-memory adb / mmcli / API and a stub agent:
// what it starts, with which settings, what it reports for phones it cannot use, enrollment once,
// hot-plug, and that one device's trouble never stops another. The interface is `lo` behind a
// sysfs tree of links (the real lookup code, a real interface, no root). The real binaries, fakes
// and network are in farm.lab.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { mkdir, mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeKey, generateKeyPair, serverKeyFromSeed, type ServerKey } from '@pocketproxy/protocol';
import type { Agent, AgentDeps } from '../src/agent.js';
import type { RunConfig } from '../src/agent.js';
import type { ApiClient, EnrollRequest, EnrollResult } from '../src/api-client.js';
import { agentError } from '../src/errors.js';
import { deviceStateDir, safeDeviceId } from '../src/farm/enroll.js';
import { isInterfaceOfUsb, phoneInterfaces, usbPathOf } from '../src/farm/interfaces.js';
import { egressRouteCommands, removeStaleRules } from '../src/farm/routes.js';
import {
  createFarm,
  type FarmAdb,
  type FarmAdbDevice,
  type FarmDeps,
  type FarmMmcli,
  type FarmModemInfo,
} from '../src/farm/supervisor.js';
import { AUTO_THREADS_MAX, autoThreads, parseCli } from '../src/cli.js';
import type { AgentState } from '../src/state.js';
import { logger } from './helpers.js';

const server = serverKeyFromSeed(Buffer.alloc(32, 7));
const relayKey = encodeKey(generateKeyPair().publicKey);

function enrollAnswer(by: ServerKey, deviceId: string, endorseFor = deviceId): EnrollResult {
  return {
    device_id: deviceId,
    auth_token: `tok-${deviceId}`,
    relay: { id: 'rly_abcdefghij', host: 'relay.example.com', port: 1194 },
    tunnel: {
      server_public_key: relayKey,
      server_public_key_endorsement: by.endorseRelayKey(endorseFor, relayKey),
      psk: encodeKey(Buffer.alloc(32, 3)),
      mtu: 1380,
      subnet: '192.168.255.0/24',
      vpn_ip: '192.168.255.2',
    },
    server_key: { public_key: by.publicKey, fingerprint: by.fingerprint },
    farm_host_id: 'fh_1',
  };
}

interface StubAgent {
  cfg: RunConfig;
  deps: AgentDeps;
  started: boolean;
  stopped: boolean;
}

async function setup(o: { startFails?: (cfg: RunConfig) => boolean } = {}) {
  const root = await mkdtemp(join(tmpdir(), 'ppfarm-'));
  const sysfs = join(root, 'sys');
  const stateDir = join(root, 'state');
  // `lo` is phone 1-1.2's tethering interface; no interface for 1-1.9.
  await mkdir(join(sysfs, 'class', 'net', 'lo'), { recursive: true });
  await symlink('../../../devices/pci0000:00/usb1/1-1/1-1.2/1-1.2:1.0', join(sysfs, 'class', 'net', 'lo', 'device'));
  // usbK is phone 1-1.(K+2)'s interface (K = 1..6); usb6 gets the address lo has (a DHCP twin).
  for (let k = 1; k <= 6; k++) {
    const port = `1-1.${k + 2}`;
    await mkdir(join(sysfs, 'class', 'net', `usb${k}`), { recursive: true });
    await symlink(
      `../../../devices/pci0000:00/usb1/1-1/${port}/${port}:1.0`,
      join(sysfs, 'class', 'net', `usb${k}`, 'device'),
    );
  }
  const phones: FarmAdbDevice[] = [];
  const tethering: string[] = [];
  const wifiOff: string[] = [];
  let adbFails: Error | undefined;
  const adb: FarmAdb = {
    devices: async () => {
      if (adbFails) throw adbFails;
      return phones.map((p) => ({ ...p }));
    },
    ensureTethering: async (serial) => {
      tethering.push(serial);
      return { ok: false, reason: 'this phone needs "USB tethering" switched on in its settings' };
    },
    wifiOff: async (serial) => void wifiOff.push(serial),
  };
  const modems: FarmModemInfo[] = [];
  /** A modem interface's address when set (undefined: none, e.g. between a reconnect's flush and its new lease). */
  const wwanAddress: Record<string, string | undefined> = {};
  const mmcli: FarmMmcli = {
    list: async () => modems.map((m) => m.id),
    modem: async (id) => modems.find((m) => m.id === id)!,
  };
  const enrolls: EnrollRequest[] = [];
  let enrollAnswerFor: (b: EnrollRequest) => EnrollResult | Error = (b) =>
    enrollAnswer(server, `dev_${b.device.hardware_id.toLowerCase()}`);
  const enrollApi = {
    enroll: async (b: EnrollRequest) => {
      enrolls.push(b);
      const a = enrollAnswerFor(b);
      if (a instanceof Error) throw a;
      return a;
    },
  } as unknown as ApiClient;
  const agents: StubAgent[] = [];
  const clock = { t: Date.parse('2026-12-02T10:00:00Z') };
  const deps: FarmDeps = {
    logger,
    now: () => clock.t,
    adb,
    mmcli,
    enrollApi,
    startTunnel: async () => {
      throw new Error('not used');
    },
    drivers: {
      phone: (serial) => ({ name: 'adb' as never, rotate: async () => void serial }),
      modem: () => ({ name: 'modemmanager', rotate: async () => {} }),
      phoneMetrics: async () => ({ battery: 50 }),
      modemMetrics: async () => ({ signal: 70 }),
    },
    apiFor: () => ({}) as ApiClient,
    // `lo` is real (and every phone's here); the modems' wwan interfaces are made up.
    linkState: async (ifname) =>
      ifname === 'lo'
        ? { exists: true, up: true, ipv4: '127.0.0.1', operstate: 'unknown' }
        : ifname === 'usb6'
          ? { exists: true, up: true, ipv4: '127.0.0.1', operstate: 'up' }
          : /^usb\d$/.test(ifname)
            ? { exists: true, up: true, ipv4: `10.1.${ifname.slice(3)}.2`, operstate: 'up' }
            : ifname.startsWith('wwan')
              ? {
                  exists: true,
                  up: true,
                  ipv4: ifname in wwanAddress ? wwanAddress[ifname] : `10.0.0.${ifname.slice(4)}`,
                  operstate: 'unknown',
                }
              : { exists: false, up: false },
    createAgent: (cfg, d) => {
      const a: StubAgent = { cfg, deps: d, started: false, stopped: false };
      agents.push(a);
      return {
        start: async () => {
          if (o.startFails?.(cfg)) throw new Error('TUN busy');
          a.started = true;
        },
        stop: async () => {
          a.stopped = true;
        },
      } as Agent;
    },
  };
  const farm = createFarm(
    {
      stateDir,
      server: 'https://relay.example.com',
      enrollToken: 'enroll-token-0123456789abcdef',
      fingerprint: server.fingerprint,
      insecureHttp: false,
      sysfsRoot: sysfs,
      routes: false,
      name: 'rack-1',
    },
    deps,
  );
  const settle = () => farm.settled();
  return {
    root,
    stateDir,
    farm,
    phones,
    modems,
    wwanAddress,
    agents,
    enrolls,
    tethering,
    wifiOff,
    failAdb: (e: Error | undefined) => (adbFails = e),
    advance: (ms: number) => (clock.t += ms),
    answer: (f: typeof enrollAnswerFor) => (enrollAnswerFor = f),
    /** A scan, then the starts it launched. */
    async tick() {
      await farm.scan();
      await settle();
      await farm.scan(); // a second scan moves devices that waited on the first
      await settle();
    },
    status: (hw: string) => farm.status().find((s) => s.hardware_id === hw),
    done: () => rm(root, { recursive: true, force: true }),
  };
}

test('interfaces: a USB path matches only its own interfaces; adb usb: paths are checked', async () => {
  assert.equal(isInterfaceOfUsb('../../devices/pci0000:00/usb1/1-1/1-1.2/1-1.2:1.0', '1-1.2'), true);
  assert.equal(isInterfaceOfUsb('../../devices/pci0000:00/usb1/1-1/1-1.20/1-1.20:1.0', '1-1.2'), false);
  assert.equal(isInterfaceOfUsb('../../devices/pci0000:00/usb1/1-1/1-1.2/1-1.2:1.0', '1-1'), false, 'not the hub');
  assert.equal(usbPathOf('usb:1-1.4'), '1-1.4');
  assert.equal(usbPathOf('usb:../../etc'), undefined);
  assert.deepEqual(await phoneInterfaces('../x'), []);
  assert.deepEqual(
    egressRouteCommands({ ifname: 'usb0', address: '192.168.42.7', gateway: '192.168.42.129', table: 5601 }),
    [
      ['route', 'replace', 'default', 'via', '192.168.42.129', 'dev', 'usb0', 'table', '5601'],
      ['rule', 'add', 'from', '192.168.42.7/32', 'lookup', '5601', 'pref', '5601'],
    ],
  );
});

test('routes: at start, only the rules of our slots that a dead farm left are removed', async () => {
  const calls: string[] = [];
  const rules = [
    { priority: 0, table: 'local' },
    { priority: 5210, table: '5210' }, // a `run` agent's reply rule: not ours
    { priority: 5302, table: '5302' },
    { priority: 5601, table: '5601' },
    { priority: 32766, table: 'main' },
  ];
  const deleted = new Set<string>();
  const exec = async (file: string, args: readonly string[]) => {
    calls.push([file, ...args].join(' '));
    if (args[0] === '-j') return { stdout: JSON.stringify(rules), stderr: '' };
    if (args[0] === 'rule' && args[1] === 'del') {
      if (deleted.has(args[3]!)) throw new Error('No such file or directory');
      deleted.add(args[3]!);
    }
    return { stdout: '', stderr: '' };
  };
  assert.equal(await removeStaleRules(exec), 2);
  assert.deepEqual([...deleted].sort(), ['5302', '5601']);
  assert.ok(calls.includes('ip route flush table 5601'));
  assert.ok(!calls.some((c) => c.includes('5210') || c.includes('32766')));
});

test('fuzz: whatever a device or the kernel names, a state dir stays one safe component and the USB match stays exact', () => {
  // Serials, IMEIs and sysfs links come from the device (USB descriptors) or its driver: never trusted.
  const text = fc.string({ unit: 'binary', maxLength: 80 });
  fc.assert(
    fc.property(text, text, fc.constantFrom('phone' as const, 'modem' as const), (a, b, kind) => {
      const da = safeDeviceId(kind, a);
      assert.match(da, /^(phone|modem)-[A-Za-z0-9_-]{1,80}$/);
      if (a !== b) assert.notEqual(da, safeDeviceId(kind, b));
      // A serial shaped like another's tagged name still gets a directory of its own.
      const tagged = safeDeviceId(kind, `${a}.`);
      assert.notEqual(safeDeviceId(kind, tagged.slice(kind.length + 1)), tagged);
    }),
    { numRuns: 2000 },
  );
  const usb = fc
    .array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 4 })
    .map((ps) => `1-${ps.join('.')}`);
  fc.assert(
    fc.property(usb, usb, fc.string({ maxLength: 40 }), (mine, other, junk) => {
      const path = `../../devices/pci0000:00/usb1/${other}/${other}:1.0/${junk}`;
      const hit = isInterfaceOfUsb(path, mine);
      if (mine === other) assert.equal(hit, true);
      // A match needs a whole component `<mine>:<c>.<i>`, never a prefix of another port's.
      if (hit)
        assert.ok(path.split('/').some((c) => /^\d+\.\d+$/.test(c.slice(mine.length + 1)) && c.startsWith(`${mine}:`)));
      assert.equal(usbPathOf(`usb:${junk}`) === undefined || /^\d+-\d+(\.\d+)*$/.test(junk), true);
    }),
    { numRuns: 2000 },
  );
});

test('state dirs: a hardware id is never a path; different ids never share a directory', () => {
  assert.equal(safeDeviceId('phone', 'R58M12ABCDE'), 'phone-R58M12ABCDE');
  const evil = safeDeviceId('phone', '../../etc');
  assert.match(evil, /^phone-[A-Za-z0-9_-]+$/);
  assert.notEqual(safeDeviceId('phone', 'a.b'), safeDeviceId('phone', 'a_b'));
  assert.ok(deviceStateDir('/var/lib/f', 'modem', '../x').startsWith('/var/lib/f/devices/modem-'));
});

test('cli: farm flags, and what it refuses', () => {
  const p = parseCli([
    'farm',
    '--server',
    'https://relay.example.com',
    '--enroll',
    'abcdefghijklmnop0123',
    '--scan-interval',
    '2',
  ]);
  assert.equal(p.command, 'farm');
  if (p.command !== 'farm') return;
  assert.equal(p.farm.scanIntervalMs, 2000);
  assert.equal(p.farm.rotateMethod, 'airplane');
  assert.equal(p.farm.threads, autoThreads(), 'a worker thread per core by default');
  assert.deepEqual([autoThreads(1), autoThreads(2), autoThreads(8), autoThreads(32)], [1, 2, 8, AUTO_THREADS_MAX]);
  for (const [arg, want] of [
    ['4', 4],
    ['1', 1],
    ['auto', autoThreads()],
  ] as const) {
    const t = parseCli(['farm', '--threads', arg]);
    assert.equal(t.command === 'farm' && t.farm.threads, want);
  }
  for (const bad of ['0', '65', '1.5', 'two', ''])
    assert.throws(() => parseCli(['farm', '--threads', bad]), /--threads must be 1-64 or auto/);
  assert.throws(() => parseCli(['farm', '--enroll', 'abcdefghijklmnop0123']), /--enroll needs --server/);
  assert.throws(
    () =>
      parseCli(['farm', '--server', 'http://192.0.2.1:8080', '--enroll', 'abcdefghijklmnop0123', '--insecure-http']),
    /needs --fingerprint/,
  );
  assert.throws(() => parseCli(['farm', '--rotate-method', 'reboot']), /airplane or data/);
});

test('phones adb cannot use are reported with the reason and never started', async () => {
  const s = await setup();
  try {
    s.phones.push(
      { serial: 'UNAUTH1', state: 'unauthorized', usb: '1-1.2' },
      { serial: 'OFF1', state: 'offline', usb: '1-1.2' },
      { serial: 'PERM1', state: 'no permissions', usb: '1-1.2' },
    );
    await s.tick();
    assert.equal(s.agents.length, 0);
    assert.equal(s.enrolls.length, 0);
    assert.equal(s.status('UNAUTH1')?.status, 'unauthorized');
    assert.match(s.status('UNAUTH1')!.reason!, /Allow USB debugging/);
    assert.equal(s.status('OFF1')?.status, 'adb-offline');
    assert.equal(s.status('PERM1')?.status, 'no-permissions');
    assert.match(s.status('PERM1')!.reason!, /udev/);
  } finally {
    await s.done();
  }
});

test('a phone without a tethering interface: tethering asked for once, the reason reported', async () => {
  const s = await setup();
  try {
    s.phones.push({ serial: 'NOTETHER', state: 'device', usb: '1-1.9' });
    await s.tick();
    await s.tick();
    assert.deepEqual(s.tethering, ['NOTETHER'], 'asked once (again at most once a minute)');
    assert.equal(s.status('NOTETHER')?.status, 'tethering-off');
    assert.match(s.status('NOTETHER')!.reason!, /USB tethering/);
    assert.equal(s.agents.length, 0);
  } finally {
    await s.done();
  }
});

test('a new phone: Wi-Fi off, enrolled once with the host key, its own agent (TUN, tables, egress); unplug stops it, replug restarts it from its state', async () => {
  const s = await setup();
  try {
    s.phones.push({ serial: 'R58M12ABCDE', state: 'device', usb: 'usb:1-1.2' as string, model: 'SM_A505F' });
    s.phones[0]!.usb = '1-1.2';
    await s.tick();
    assert.deepEqual(s.wifiOff, ['R58M12ABCDE']);
    assert.equal(s.enrolls.length, 1);
    const e = s.enrolls[0]!;
    assert.deepEqual(e.device, { hardware_id: 'R58M12ABCDE', kind: 'phone', model: 'SM_A505F' });
    assert.equal(e.host.name, 'rack-1');
    const farmFile = JSON.parse(await readFile(join(s.stateDir, 'farm.json'), 'utf8'));
    assert.equal(e.host.key, farmFile.host_key);
    assert.equal((await stat(join(s.stateDir, 'farm.json'))).mode & 0o777, 0o600);
    const dir = deviceStateDir(s.stateDir, 'phone', 'R58M12ABCDE');
    const state = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as AgentState;
    assert.equal(state.device_id, 'dev_r58m12abcde');
    assert.equal(state.server_key?.from, 'fingerprint');

    assert.equal(s.agents.length, 1);
    const a = s.agents[0]!;
    assert.equal(a.started, true);
    assert.equal(a.cfg.stateDir, dir);
    assert.equal(a.cfg.tunnelInterface, 'ppf0');
    assert.equal(a.cfg.replyTable, 5300);
    assert.equal(a.cfg.egressInterface, 'lo');
    assert.equal(a.cfg.tunnelViaEgress, true);
    assert.equal(a.cfg.allowReboot, false, 'reboot would reboot the farm host');
    assert.equal(a.deps.driver?.name, 'adb');
    assert.deepEqual(await a.deps.metrics!(), { battery: 50 });
    assert.equal(s.status('R58M12ABCDE')?.status, 'running');
    assert.equal(s.status('R58M12ABCDE')?.tun, 'ppf0');
    const file = JSON.parse(await readFile(join(s.stateDir, 'farm-status.json'), 'utf8'));
    assert.equal(file.devices[0].status, 'running');

    // A listing that fails says nothing: the phone keeps running.
    s.failAdb(new Error('adb: no answer in 15 s'));
    await s.tick();
    assert.equal(a.stopped, false);
    s.failAdb(undefined);

    // Unplugged: stopped; plugged back: a new agent from the same state, no enrollment.
    const saved = s.phones.splice(0);
    await s.tick();
    assert.equal(a.stopped, true);
    assert.equal(s.status('R58M12ABCDE')?.status, 'gone');
    s.phones.push(...saved);
    await s.tick();
    assert.equal(s.enrolls.length, 1, 'not enrolled again');
    assert.equal(s.agents.length, 2);
    assert.equal(s.agents[1]!.cfg.stateDir, dir);
    assert.equal(s.agents[1]!.started, true);
    assert.deepEqual(s.wifiOff, ['R58M12ABCDE', 'R58M12ABCDE'], 'Wi-Fi off again after a replug');

    // Unauthorised now (the phone was reset): stopped, with the reason.
    s.phones[0]!.state = 'unauthorized';
    await s.tick();
    assert.equal(s.agents[1]!.stopped, true);
    assert.equal(s.status('R58M12ABCDE')?.status, 'unauthorized');
  } finally {
    await s.done();
  }
});

test('one device failing does not stop the others; a modem runs beside the phones on its own slot', async () => {
  const s = await setup({ startFails: (cfg) => cfg.stateDir.includes('BROKEN') });
  try {
    s.answer((b) =>
      b.device.hardware_id === 'LOST1'
        ? agentError('PP_ERR_AGENT_API', {
            method: 'POST',
            path: '/api/public/enroll',
            reason: 'HTTP 409: PP_ERR_API_DEVICE_ALREADY_ENROLLED',
          })
        : b.device.hardware_id === 'LIMITED1'
          ? agentError('PP_ERR_AGENT_API', {
              method: 'POST',
              path: '/api/public/enroll',
              reason: 'HTTP 429: PP_ERR_API_RATE_LIMITED too many requests; retry in 60 s',
            })
          : b.device.hardware_id === 'MITM1'
            ? enrollAnswer(serverKeyFromSeed(Buffer.alloc(32, 9)), 'dev_mitm1')
            : enrollAnswer(server, `dev_${b.device.hardware_id.toLowerCase()}`),
    );
    s.phones.push(
      { serial: 'BROKEN1', state: 'device', usb: '1-1.3' },
      { serial: 'LOST1', state: 'device', usb: '1-1.4' },
      { serial: 'MITM1', state: 'device', usb: '1-1.5' },
      { serial: 'GOOD1', state: 'device', usb: '1-1.6' },
      { serial: 'LIMITED1', state: 'device', usb: '1-1.7' },
    );
    s.modems.push({
      id: '0',
      imei: '359072066123456',
      model: 'EM7455',
      bearers: [{ id: '1', connected: true, interface: 'wwan7' }],
    });
    await s.tick();
    assert.equal(s.status('BROKEN1')?.status, 'failed');
    assert.match(s.status('BROKEN1')!.reason!, /TUN busy/);
    assert.equal(s.status('LOST1')?.status, 'enroll-failed');
    assert.match(s.status('LOST1')!.reason!, /delete the device in the dashboard/);
    assert.equal(s.status('MITM1')?.status, 'enroll-failed');
    assert.match(s.status('MITM1')!.reason!, /fingerprint/);
    await assert.rejects(stat(join(deviceStateDir(s.stateDir, 'phone', 'MITM1'), 'state.json')), 'nothing saved');
    assert.equal(s.status('GOOD1')?.status, 'running');
    assert.equal(s.status('359072066123456')?.status, 'running');
    const running = s.agents.filter((a) => a.started && !a.stopped);
    assert.equal(running.length, 2);
    const tuns = new Set(running.map((a) => a.cfg.tunnelInterface));
    const tables = new Set(running.map((a) => a.cfg.replyTable));
    assert.equal(tuns.size, 2, 'distinct TUNs');
    assert.equal(tables.size, 2, 'distinct reply tables');
    const modemAgent = running.find((a) => a.cfg.stateDir.includes('modem-'))!;
    assert.equal(modemAgent.deps.driver?.name, 'modemmanager');
    // The 409 is not retried at the next scan (the state is lost; an operator must act), nor a 429
    // before the time the API named.
    const count = (hw: string) => s.enrolls.filter((e) => e.device.hardware_id === hw).length;
    const n = count('LOST1');
    assert.equal(count('LIMITED1'), 1);
    assert.equal(s.status('LIMITED1')?.status, 'enroll-failed');
    await s.tick();
    assert.equal(count('LOST1'), n);
    assert.equal(count('LIMITED1'), 1, 'not retried at once');
    s.advance(30_000);
    await s.tick();
    assert.equal(count('LIMITED1'), 1, 'waits the 60 s the API asked for (the default backoff is 5 s)');
    s.advance(33_000);
    await s.tick();
    assert.equal(count('LIMITED1'), 2, 'then tries again');
  } finally {
    await s.done();
  }
});

test('two phones that gave this host the same address: the second waits, with the reason', async () => {
  const s = await setup();
  try {
    s.phones.push({ serial: 'FIRST1', state: 'device', usb: '1-1.2' });
    await s.tick();
    assert.equal(s.status('FIRST1')?.status, 'running');
    s.phones.push({ serial: 'TWIN1', state: 'device', usb: '1-1.8' });
    await s.tick();
    assert.equal(s.status('TWIN1')?.status, 'waiting-interface');
    assert.match(
      s.status('TWIN1')!.reason!,
      /usb6 has the address 127\.0\.0\.1 that lo .*phone:FIRST1.* renew its DHCP lease/,
    );
    assert.equal(s.agents.length, 1, 'no second agent on the same address');
  } finally {
    await s.done();
  }
});

test('a modem whose interface is renumbered by a reconnect: restarted on the new address, same state, slot and TUN, not enrolled again', async () => {
  const s = await setup();
  try {
    s.phones.push({ serial: 'GOOD1', state: 'device', usb: '1-1.3' });
    s.modems.push({
      id: '0',
      imei: '359072066123456',
      model: 'EC25',
      bearers: [{ id: '1', connected: true, interface: 'wwan1' }],
    });
    s.wwanAddress.wwan1 = '100.85.1.2';
    await s.tick();
    const hw = '359072066123456';
    assert.equal(s.status(hw)?.status, 'running');
    assert.equal(s.status(hw)?.address, '100.85.1.2');
    const first = s.agents.find((a) => a.cfg.egressInterface === 'wwan1')!;
    const phone = s.agents.find((a) => a.cfg.egressInterface === 'usb1')!;
    const dir = first.cfg.stateDir;
    const tun = first.cfg.tunnelInterface;
    const table = first.cfg.replyTable;
    const enrolled = s.enrolls.length;

    // The bearer reconnects: its interface loses its address first. The device stops (its sockets are
    // bound to an address that is gone) and waits; the phone is not touched.
    s.wwanAddress.wwan1 = undefined;
    await s.tick();
    assert.equal(first.stopped, true, 'the agent on the old address stopped');
    assert.equal(s.status(hw)?.status, 'waiting-interface');
    assert.match(s.status(hw)!.reason!, /wwan1 has no IPv4 address/);
    assert.equal(s.status(hw)?.tun, null);
    assert.equal(phone.stopped, false, 'the phone keeps running');

    // The new address: a new agent from the same saved state, on the same slot.
    s.wwanAddress.wwan1 = '100.85.1.3';
    await s.tick();
    const second = s.agents[s.agents.length - 1]!;
    assert.notEqual(second, first);
    assert.equal(second.started, true);
    assert.equal(second.cfg.stateDir, dir, 'the same device (its saved state)');
    assert.equal(second.cfg.tunnelInterface, tun, 'the same TUN');
    assert.equal(second.cfg.replyTable, table, 'the same reply table');
    assert.equal(second.cfg.egressInterface, 'wwan1');
    assert.equal(s.enrolls.length, enrolled, 'not enrolled again');
    assert.equal(s.status(hw)?.status, 'running');
    assert.equal(s.status(hw)?.address, '100.85.1.3');
    assert.equal(s.status(hw)?.device_id, 'dev_359072066123456');

    // Renumbered in one move (no scan saw it without an address): restarted at once, in the same step.
    s.wwanAddress.wwan1 = '100.85.1.2';
    await s.farm.scan();
    await s.farm.settled();
    const third = s.agents[s.agents.length - 1]!;
    assert.equal(second.stopped, true);
    assert.notEqual(third, second);
    assert.equal(third.started, true);
    assert.equal(third.cfg.tunnelInterface, tun);
    assert.equal(s.status(hw)?.address, '100.85.1.2');
    assert.equal(s.agents.filter((a) => a.started && !a.stopped).length, 2, 'one agent per device, never two');
    assert.equal(phone.stopped, false);
  } finally {
    await s.done();
  }
});

test('adb missing: logged, modems still run', async () => {
  const s = await setup();
  try {
    s.failAdb(new Error('adb not found'));
    s.modems.push({
      id: '3',
      imei: '359072066000001',
      model: 'EM7455',
      bearers: [{ id: '1', connected: true, interface: 'wwan3' }],
    });
    await s.tick();
    assert.equal(s.status('359072066000001')?.status, 'running');
    // A modem without a connected bearer waits, with the reason.
    s.modems[0]!.bearers[0]!.connected = false;
    s.modems.push({ id: '4', imei: '359072066000002', model: 'EM7455', bearers: [] });
    await s.tick();
    assert.equal(s.status('359072066000002')?.status, 'waiting-interface');
    assert.match(s.status('359072066000002')!.reason!, /no connected bearer/);
  } finally {
    await s.done();
  }
});
