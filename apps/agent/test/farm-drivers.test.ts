// farm/drivers.ts: rotation of phones (airplane mode / mobile data) and modems, and the heartbeat
// metrics of both, against the fakes (test/fakes/adb, mmcli) through the real execFile path;
// the dumpsys parsers fuzzed (never throw, never a value outside the heartbeat schema).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { DeviceMetrics } from '@pocketproxy/api-schema';
import { createAdb } from '../src/farm/adb.js';
import {
  adbMetrics,
  adbRotationDriver,
  inRange,
  modemMetrics,
  modemNetworkType,
  modemRotationDriver,
  parseConnectivityNetworkType,
  parseDumpsysBattery,
  parseServiceState,
  parseSignalStrength,
  parseTelephonyRegistry,
} from '../src/farm/drivers.js';
import { createMmcli } from '../src/farm/mmcli.js';
import { commandCapabilities, createRotationDriver } from '../src/ops/rotation.js';
import { FAKE_ADB, FAKE_MMCLI, fakeAdbDir, fakeMmcliDir, type FakeDir, type FakePhone } from './fakes/index.js';

const dirs: FakeDir[] = [];
after(async () => {
  for (const d of dirs) await d.remove();
});

async function phones(p: FakePhone[], timeoutMs = 30_000) {
  const d = await fakeAdbDir(p);
  dirs.push(d);
  process.env.FAKE_ADB_DIR = d.dir;
  return { d, adb: createAdb({ path: FAKE_ADB, timeoutMs }) };
}

const shellCalls = async (d: FakeDir) => (await d.calls()).map((c) => c.slice(3).join(' '));

test('reboot: the farm phone reboots (adb -s <serial> reboot), never the host; the heartbeat offers reboot without --allow-reboot', async () => {
  const { d, adb } = await phones([{ serial: 'P12R', state: 'device', profile: 'android-12' }]);
  const drv = adbRotationDriver(adb, 'P12R', { method: 'data', offSeconds: 0, sleep: async () => {} });
  assert.ok(commandCapabilities(drv, false).includes('reboot'));
  await drv.reboot!();
  assert.equal((await d.state('P12R')).reboots, 1);
  assert.ok(
    (await d.calls()).some((c) => c.join(' ') === '-s P12R reboot'),
    JSON.stringify(await d.calls()),
  );
  // A host driver has no reboot of its own: reboot stays behind --allow-reboot.
  assert.ok(
    !commandCapabilities(createRotationDriver({ driver: 'command', rotateCommand: 'true' }), false).includes('reboot'),
  );
});

test('airplane (Android 14): cmd connectivity airplane-mode enable, the off-time, disable; the airplane-off hook ran', async () => {
  const { d, adb } = await phones([{ serial: 'P14', state: 'device', profile: 'android-14' }]);
  await d.hook('P14', 'airplane-off', `echo off >> '${d.dir}/events'`);
  const sleeps: number[] = [];
  const drv = adbRotationDriver(adb, 'P14', {
    method: 'airplane',
    offSeconds: 4,
    sleep: async (ms) => void sleeps.push(ms),
  });
  assert.equal(drv.name, 'adb');
  assert.equal(drv.wifiToggle, undefined);
  await drv.rotate();
  assert.deepEqual(await shellCalls(d), [
    'cmd connectivity airplane-mode enable',
    'cmd connectivity airplane-mode disable',
  ]);
  assert.deepEqual(sleeps, [4000]);
  assert.equal((await d.state('P14')).airplane, false);
  assert.equal(readFileSync(`${d.dir}/events`, 'utf8'), 'off\n');
  await drv.airplaneMode!();
  assert.equal((await shellCalls(d)).length, 4);
});

test('airplane (Android 10, no root): no cmd, the broadcast is refused -> flag put back, mobile data off/on instead, once told', async () => {
  const { d, adb } = await phones([{ serial: 'P10', state: 'device', profile: 'android-10' }]);
  await d.hook('P10', 'data-on', `echo data-on >> '${d.dir}/events'`);
  const logs: string[] = [];
  const drv = adbRotationDriver(adb, 'P10', {
    method: 'airplane',
    offSeconds: 3,
    sleep: async () => {},
    log: (m) => void logs.push(m),
  });
  await drv.rotate();
  assert.deepEqual(await shellCalls(d), [
    'cmd connectivity airplane-mode enable',
    'settings put global airplane_mode_on 1',
    'am broadcast -a android.intent.action.AIRPLANE_MODE --ez state true',
    'settings put global airplane_mode_on 0',
    'svc data disable',
    'svc data enable',
  ]);
  const s = await d.state('P10');
  assert.equal(s.airplane_setting, 0);
  assert.equal(s.airplane, false);
  assert.equal(s.data, true);
  assert.equal(readFileSync(`${d.dir}/events`, 'utf8'), 'data-on\n');
  assert.equal(logs.length, 1);
  assert.match(logs[0]!, /without root.*mobile data/);
  // Learned: the next rotation goes straight to mobile data; the airplane_mode command is refused.
  await drv.rotate();
  assert.deepEqual((await shellCalls(d)).slice(6), ['svc data disable', 'svc data enable']);
  await assert.rejects(drv.airplaneMode!(), { code: 'PP_ERR_AGENT_NOT_SUPPORTED' });
  assert.equal(logs.length, 1);
});

test('airplane (Android 8, rooted): the settings + broadcast way works and is used', async () => {
  const { d, adb } = await phones([{ serial: 'P8', state: 'device', profile: 'android-8', root: true }]);
  await d.hook('P8', 'airplane-off', `echo off >> '${d.dir}/events'`);
  const drv = adbRotationDriver(adb, 'P8', { method: 'airplane', offSeconds: 0, sleep: async () => {} });
  await drv.rotate();
  assert.deepEqual(await shellCalls(d), [
    'cmd connectivity airplane-mode enable',
    'settings put global airplane_mode_on 1',
    'am broadcast -a android.intent.action.AIRPLANE_MODE --ez state true',
    'settings put global airplane_mode_on 0',
    'am broadcast -a android.intent.action.AIRPLANE_MODE --ez state false',
  ]);
  assert.equal(readFileSync(`${d.dir}/events`, 'utf8'), 'off\n');
  // Learned: the next rotation goes straight to the settings + broadcast way.
  await drv.rotate();
  assert.deepEqual((await shellCalls(d)).slice(5), [
    'settings put global airplane_mode_on 1',
    'am broadcast -a android.intent.action.AIRPLANE_MODE --ez state true',
    'settings put global airplane_mode_on 0',
    'am broadcast -a android.intent.action.AIRPLANE_MODE --ez state false',
  ]);
});

test('method data: svc data disable, off-time, enable (any Android)', async () => {
  const { d, adb } = await phones([{ serial: 'P12', state: 'device', profile: 'android-12' }]);
  const sleeps: number[] = [];
  await adbRotationDriver(adb, 'P12', {
    method: 'data',
    offSeconds: 5,
    sleep: async (ms) => void sleeps.push(ms),
  }).rotate();
  assert.deepEqual(await shellCalls(d), ['svc data disable', 'svc data enable']);
  assert.deepEqual(sleeps, [5000]);
});

test('a rotation of an unplugged or unauthorized phone fails with the reason', async () => {
  const { adb } = await phones([{ serial: 'U1', state: 'unauthorized', profile: 'android-14' }]);
  const drv = adbRotationDriver(adb, 'U1', { method: 'airplane', offSeconds: 0, sleep: async () => {} });
  await assert.rejects(drv.rotate(), { code: 'PP_ERR_AGENT_ADB_DEVICE_STATE' });
  await assert.rejects(adbRotationDriver(adb, 'GONE', { method: 'data', offSeconds: 0 }).rotate(), {
    code: 'PP_ERR_AGENT_ADB_DEVICE_STATE',
  });
});

test('modem rotation asks for the index each time (it changes on replug)', async () => {
  const d = await fakeMmcliDir([{ index: 2, imei: '867962041234561', profile: 'quectel-ec25' }]);
  dirs.push(d);
  process.env.FAKE_MMCLI_DIR = d.dir;
  const mm = createMmcli({ path: FAKE_MMCLI });
  let id = '2';
  const drv = modemRotationDriver(mm, () => id);
  assert.equal(drv.name, 'modemmanager');
  await drv.rotate();
  await d.setModems([{ index: 4, imei: '867962041234561', profile: 'quectel-ec25' }]);
  id = '4';
  await drv.rotate();
  const connects = (await d.calls()).filter((c) => c.some((a) => a.startsWith('--simple-connect'))).map((c) => c[1]);
  assert.deepEqual(connects, ['2', '4']);
  assert.equal((await d.state('867962041234561')).reconnects, 2);
});

test('adbMetrics per Android version (recorded dumpsys outputs), valid for the heartbeat schema', async () => {
  const { adb } = await phones([
    { serial: 'P8', state: 'device', profile: 'android-8' },
    { serial: 'P10', state: 'device', profile: 'android-10' },
    { serial: 'P12', state: 'device', profile: 'android-12' },
    { serial: 'P14', state: 'device', profile: 'android-14' },
  ]);
  const want = {
    P8: { battery: 72, charging: true, signal: -97, carrier: 'Telekom.de', network_type: 'LTE', temperature: 30.2 },
    P10: { battery: 100, charging: true, signal: -103, carrier: 'vodafone UK', network_type: 'LTE', temperature: 28.7 },
    P12: { battery: 59, charging: false, signal: -89, carrier: 'Orange F', network_type: 'NR NSA', temperature: 34.1 },
    P14: { battery: 88, charging: true, signal: -84, carrier: 'T-Mobile', network_type: 'NR', temperature: 31.8 },
  };
  for (const [serial, m] of Object.entries(want)) {
    const got = await adbMetrics(adb, serial, { timeoutMs: 30_000 });
    assert.deepEqual(got, m, serial);
    DeviceMetrics.parse(got);
  }
});

test('adbMetrics of a phone that does not answer: nulls after one deadline, not four', async () => {
  const { d, adb } = await phones([{ serial: 'SLOW', state: 'device', profile: 'android-14', slow_ms: 60_000 }], 2_000);
  const nulls = { battery: null, charging: null, signal: null, carrier: null, network_type: null, temperature: null };
  assert.deepEqual(await adbMetrics(adb, 'SLOW', { timeoutMs: 2_000 }), nulls);
  // One call at most (a loaded host may kill the fake before it logs it), not one per dumpsys.
  assert.ok((await d.calls()).length <= 1);
  assert.deepEqual(await adbMetrics(adb, 'GONE'), nulls);
});

test('modemMetrics: signal % as 0-4 bars, operator, network type; a modem gone gives nulls', async () => {
  const d = await fakeMmcliDir([
    { index: 0, imei: '867962041234561', profile: 'quectel-ec25' },
    { index: 1, imei: '866123045678902', profile: 'huawei-e3372', tech: 'lte, 5gnr', signal: 100 },
  ]);
  dirs.push(d);
  process.env.FAKE_MMCLI_DIR = d.dir;
  const mm = createMmcli({ path: FAKE_MMCLI });
  assert.deepEqual(await modemMetrics(mm, '0'), {
    battery: null,
    charging: null,
    signal: 3,
    carrier: 'Telekom.de',
    network_type: 'LTE',
    temperature: null,
  });
  assert.deepEqual(await modemMetrics(mm, '1'), {
    battery: null,
    charging: null,
    signal: 4,
    carrier: 'vodafone UK',
    network_type: 'NR NSA',
    temperature: null,
  });
  assert.deepEqual(await modemMetrics(mm, '7'), {
    battery: null,
    charging: null,
    signal: null,
    carrier: null,
    network_type: null,
    temperature: null,
  });
  assert.equal(modemNetworkType('umts'), 'UMTS');
  assert.equal(modemNetworkType('hspa-plus'), 'HSPA+');
  assert.equal(modemNetworkType(null), null);
});

test('dumpsys battery: temperature in tenths of a degree, status codes, out-of-range values -> null', () => {
  assert.deepEqual(parseDumpsysBattery('  level: 87\n  scale: 100\n  status: 3\n  temperature: 291\n'), {
    battery: 87,
    charging: false,
    temperature: 29.1,
  });
  assert.deepEqual(
    parseDumpsysBattery('  level: 250\n  scale: 100\n  status: 9\n  USB powered: true\n  temperature: 99999\n'),
    { battery: null, charging: true, temperature: null },
  );
  assert.deepEqual(parseDumpsysBattery('  level: 50\n  scale: 200\n  AC powered: false\n  USB powered: false\n'), {
    battery: 25,
    charging: false,
    temperature: null,
  });
  assert.deepEqual(parseDumpsysBattery(''), { battery: null, charging: null, temperature: null });
});

test('a carrier name with bidi overrides, zero-width and control characters reaches the heartbeat without them', () => {
  const ss = parseServiceState(
    '{mVoiceRegState=0(IN_SERVICE), mDataRegState=0(IN_SERVICE), mOperatorAlphaLong=\u202eEvil\u200b Tel\u0007\ufeff, getRilDataRadioTechnology=14(LTE)}',
  );
  assert.equal(ss.carrier, 'Evil Tel');
  assert.equal(ss.network_type, 'LTE');
  assert.equal(inRange({ carrier: `${'x'.repeat(100)}`, network_type: 'L\u202eTE' }).carrier, 'x'.repeat(64));
  assert.equal(inRange({ network_type: 'L\u202eTE' }).network_type, 'LTE');
});

// ---- fuzzing ----

const FIXTURE_TEXTS = ['android-8', 'android-10', 'android-12', 'android-14'].flatMap((p) =>
  ['battery.txt', 'telephony.registry.txt', 'connectivity.txt'].map((f) =>
    readFileSync(new URL(`./fixtures/adb/${p}/${f}`, import.meta.url), 'utf8'),
  ),
);

/** A recorded output with a few slices replaced by arbitrary text (numbers included). */
const mutated = fc
  .tuple(
    fc.constantFrom(...FIXTURE_TEXTS),
    fc.array(
      fc.tuple(
        fc.nat(),
        fc.nat({ max: 40 }),
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 30 }),
          fc.integer().map(String),
          fc.constantFrom(
            '2147483647',
            '-2147483648',
            '=',
            ',',
            '}',
            '\n',
            'level=',
            'rsrp=',
            'Phone Id=1\n',
            '\u202e',
            '\u200b',
            '\ufeff',
            '\u0007',
            '\ud83d\ude00',
          ),
        ),
      ),
      { maxLength: 6 },
    ),
  )
  .map(([t, edits]) => {
    let s = t;
    for (const [at, len, w] of edits) {
      const i = at % (s.length + 1);
      s = s.slice(0, i) + w + s.slice(i + len);
    }
    return s;
  });

const inSchema = (m: unknown) => {
  const r = DeviceMetrics.safeParse(m);
  assert.ok(r.success, JSON.stringify(m));
  // What a device names itself never carries control or format characters (bidi overrides) to the dashboard.
  for (const v of Object.values(m as Record<string, unknown>))
    if (typeof v === 'string') assert.doesNotMatch(v, /[\p{Cf}\p{Cc}\p{Co}\p{Cn}\p{Cs}]/u, JSON.stringify(v));
};

test('fuzz the dumpsys parsers: never throw, every value within the heartbeat schema', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 500 }), mutated), (text) => {
      const b = parseDumpsysBattery(text);
      const r = parseTelephonyRegistry(text);
      const m = { battery: b.battery, charging: b.charging, temperature: b.temperature, ...r };
      inSchema(m);
      assert.deepEqual(inRange(m), m);
      if (b.temperature !== null) assert.ok(b.temperature >= -40 && b.temperature <= 100);
      const s = parseSignalStrength(text);
      if (s !== null) assert.ok(Number.isInteger(s) && s >= -200 && s <= 100);
      const ss = parseServiceState(text);
      inSchema({ battery: null, charging: null, signal: null, carrier: ss.carrier, network_type: ss.network_type });
      const n = parseConnectivityNetworkType(text);
      if (n !== null) assert.ok(n.length <= 32);
    }),
    { numRuns: 1000 },
  );
});

test('fuzz inRange: anything in, a valid heartbeat metrics object out', () => {
  fc.assert(
    fc.property(
      fc.record({
        battery: fc.oneof(fc.anything(), fc.double(), fc.integer()),
        charging: fc.anything(),
        signal: fc.oneof(fc.anything(), fc.integer()),
        carrier: fc.oneof(fc.anything(), fc.string({ unit: 'binary', maxLength: 100 })),
        network_type: fc.oneof(fc.anything(), fc.string({ unit: 'binary', maxLength: 100 })),
      }),
      (m) => inSchema(inRange(m as never)),
    ),
    { numRuns: 1000 },
  );
});
