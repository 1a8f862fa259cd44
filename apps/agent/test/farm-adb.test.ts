// farm/adb.ts against the fake adb (test/fakes/adb) through the real execFile path: device states,
// phone info per Android version, tethering, Wi-Fi, reboot, slow and hostile phones. Parsers fuzzed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isPPError } from '@pocketproxy/errors';
import {
  createAdb,
  isValidSerial,
  parseAdbDevices,
  parseGetprop,
  phoneInfoFromProps,
  safeSerial,
  tetheringOn,
} from '../src/farm/adb.js';
import { FAKE_ADB, fakeAdbDir, type FakeDir, type FakePhone } from './fakes/index.js';

const dirs: FakeDir[] = [];
after(async () => {
  for (const d of dirs) await d.remove();
});

async function setup(phones: FakePhone[], o: { timeoutMs?: number } = {}) {
  const d = await fakeAdbDir(phones);
  dirs.push(d);
  process.env.FAKE_ADB_DIR = d.dir;
  const adb = createAdb({ path: FAKE_ADB, timeoutMs: o.timeoutMs ?? 30_000, sleep: async () => {} });
  return { d, adb };
}

const PHONES: FakePhone[] = [
  {
    serial: 'R58M12ABCDE',
    state: 'device',
    usb: '1-1.2',
    model: 'SM-A525F',
    product: 'a52qnsxx',
    device: 'a52q',
    profile: 'android-12',
  },
  { serial: '0123456789ABCDEF', state: 'unauthorized', usb: '1-1.3', profile: 'android-10' },
  { serial: 'ZY22ABCDEF', state: 'no permissions', usb: '1-1.4', profile: 'android-8' },
  { serial: 'emulator-5554', state: 'offline', profile: 'android-14' },
  { serial: 'HT7A1B2C3D', state: 'device', usb: '2-1', model: 'SM-G930F', profile: 'android-8' },
  { serial: '192.168.1.5:5555', state: 'device', model: 'Pixel 7', profile: 'android-14' },
];

test('devices(): every state adb prints, with usb/model/product/device/transport_id; argv only', async () => {
  const { d, adb } = await setup(PHONES);
  const list = await adb.devices();
  assert.deepEqual(list, [
    {
      serial: 'R58M12ABCDE',
      state: 'device',
      usb: '1-1.2',
      product: 'a52qnsxx',
      model: 'SM-A525F',
      device: 'a52q',
      transportId: '1',
    },
    { serial: '0123456789ABCDEF', state: 'unauthorized', usb: '1-1.3', transportId: '2' },
    { serial: 'ZY22ABCDEF', state: 'no permissions', usb: '1-1.4', transportId: '3' },
    { serial: 'emulator-5554', state: 'offline', transportId: '4' },
    {
      serial: 'HT7A1B2C3D',
      state: 'device',
      usb: '2-1',
      product: 'unknown',
      model: 'SM-G930F',
      device: 'unknown',
      transportId: '5',
    },
    {
      serial: '192.168.1.5:5555',
      state: 'device',
      product: 'unknown',
      model: 'Pixel_7',
      device: 'unknown',
      transportId: '6',
    },
  ]);
  assert.deepEqual(await d.calls(), [['devices', '-l']]);
});

test('parseAdbDevices: recorded outputs of adb 1.0.39-1.0.41 (daemon start-up, recovery, sideload, bootloader, host)', () => {
  const text = [
    '* daemon not running; starting now at tcp:5037',
    '* daemon started successfully',
    'List of devices attached',
    'ce0717171d2a5c1b0c     recovery usb:1-1.1 product:OnePlus5 model:ONEPLUS_A5000 device:OnePlus5 transport_id:7',
    'ce0717171d2a5c1b0d     sideload usb:1-1.6 transport_id:8',
    'ce0717171d2a5c1b0e\tbootloader',
    'ce0717171d2a5c1b0f     host usb:3-2 transport_id:9',
    'R58M12ABCDE\tdevice',
    'R58M12ABCDE            device usb:1-1.9 transport_id:10',
    '',
  ].join('\r\n');
  assert.deepEqual(parseAdbDevices(text), [
    {
      serial: 'ce0717171d2a5c1b0c',
      state: 'recovery',
      usb: '1-1.1',
      product: 'OnePlus5',
      model: 'ONEPLUS_A5000',
      device: 'OnePlus5',
      transportId: '7',
    },
    { serial: 'ce0717171d2a5c1b0d', state: 'sideload', usb: '1-1.6', transportId: '8' },
    { serial: 'ce0717171d2a5c1b0e', state: 'bootloader' },
    { serial: 'ce0717171d2a5c1b0f', state: 'host', usb: '3-2', transportId: '9' },
    // A serial twice (two phones claiming one serial): the first one counts.
    { serial: 'R58M12ABCDE', state: 'device' },
  ]);
});

test('a hostile serial: listed as invalid-serial without fields; never passed to adb, never a path', async () => {
  const { d, adb } = await setup([
    { serial: '../../etc;reboot', state: 'device', usb: '1-1.7', model: 'x', profile: 'android-14' },
    { serial: '-s', state: 'device', profile: 'android-14' },
  ]);
  const list = await adb.devices();
  assert.deepEqual(list, [
    { serial: '../../etc;reboot', state: 'invalid-serial' },
    { serial: '-s', state: 'invalid-serial' },
  ]);
  for (const s of ['../../etc;reboot', '-s', '', 'a b', 'x'.repeat(65), '..', 'é']) {
    await assert.rejects(adb.shell(s, ['getprop']), { code: 'PP_ERR_AGENT_ADB_BAD_SERIAL' });
    await assert.rejects(adb.reboot(s), { code: 'PP_ERR_AGENT_ADB_BAD_SERIAL' });
    assert.throws(() => safeSerial(s), { code: 'PP_ERR_AGENT_ADB_BAD_SERIAL' });
  }
  assert.deepEqual(await d.calls(), [['devices', '-l']]);
});

test('shell(): an argument with a shell character is refused before adb runs (adb joins them into the phone shell line)', async () => {
  const { d, adb } = await setup(PHONES);
  for (const a of ['a;reboot', '$(id)', 'a b', '`x`', 'a|b', '', "'"]) {
    await assert.rejects(adb.shell('R58M12ABCDE', ['echo', a]), { code: 'PP_ERR_AGENT_USAGE' });
  }
  assert.deepEqual(await d.calls(), []);
  assert.equal(await adb.shell('R58M12ABCDE', ['echo', 'plain-word_1.2:3']), 'plain-word_1.2:3\n');
});

test('info(): model, manufacturer, Android release and SDK of each recorded version', async () => {
  const { d, adb } = await setup([
    { serial: 'P8', state: 'device', profile: 'android-8' },
    { serial: 'P10', state: 'device', profile: 'android-10' },
    { serial: 'P12', state: 'device', profile: 'android-12' },
    { serial: 'P14', state: 'device', profile: 'android-14' },
  ]);
  assert.deepEqual(await adb.info('P8'), { model: 'SM-G930F', manufacturer: 'samsung', android: '8.0.0', sdk: 26 });
  assert.deepEqual(await adb.info('P10'), {
    model: 'Redmi Note 8 Pro',
    manufacturer: 'Xiaomi',
    android: '10',
    sdk: 29,
  });
  assert.deepEqual(await adb.info('P12'), { model: 'SM-A525F', manufacturer: 'samsung', android: '12', sdk: 31 });
  assert.deepEqual(await adb.info('P14'), { model: 'Pixel 7', manufacturer: 'Google', android: '14', sdk: 34 });
  assert.deepEqual((await d.calls())[0], ['-s', 'P8', 'shell', 'getprop']);
});

test('unauthorized, offline, no permissions, unplugged: a clear error naming the state and what to do', async () => {
  const { adb } = await setup(PHONES);
  await assert.rejects(adb.info('0123456789ABCDEF'), (e: unknown) => {
    assert.ok(isPPError(e));
    assert.equal(e.code, 'PP_ERR_AGENT_ADB_DEVICE_STATE');
    assert.equal(e.params.state, 'unauthorized');
    assert.match(e.message, /Allow USB debugging/);
    return true;
  });
  const state = (serial: string, st: string, hint: RegExp) =>
    assert.rejects(adb.info(serial), (e: unknown) => {
      assert.ok(isPPError(e));
      assert.equal(e.code, 'PP_ERR_AGENT_ADB_DEVICE_STATE');
      assert.equal(e.params.serial, JSON.stringify(serial));
      assert.equal(e.params.state, st);
      assert.match(String(e.params.hint), hint);
      return true;
    });
  await state('emulator-5554', 'offline', /replug/);
  await state('ZY22ABCDEF', 'no permissions', /udev/);
  await state('GONE123', 'gone', /no longer attached/);
  // What a command on the phone prints is not adb's verdict on the phone: 'not found' from its shell is a failed command.
  await assert.rejects(adb.shell('R58M12ABCDE', ['offline-device-not-found']), (e: unknown) => {
    assert.ok(isPPError(e));
    assert.equal(e.code, 'PP_ERR_AGENT_TOOL_FAILED');
    assert.match(e.message, /exit 127: \/system\/bin\/sh: offline-device-not-found: inaccessible or not found/);
    return true;
  });
  const t = await adb.ensureTethering('0123456789ABCDEF');
  assert.equal(t.ok, false);
  assert.match(!t.ok ? t.reason : '', /unauthorized/);
});

test('a phone that stops answering is reported at the deadline (SIGKILL), not waited for', async () => {
  const { d, adb } = await setup([{ serial: 'SLOW1', state: 'device', profile: 'android-12', slow_ms: 60_000 }], {
    timeoutMs: 3_000,
  });
  // A timeout, not the phone's answer (which would have been a success 60 s later): we did not wait for it.
  await assert.rejects(adb.info('SLOW1'), (e: unknown) => {
    assert.ok(isPPError(e));
    assert.equal(e.code, 'PP_ERR_AGENT_TOOL_TIMEOUT');
    assert.equal(e.params.ms, 3_000);
    return true;
  });
  // At most the one call (on a loaded host the fake may be killed before it logs it).
  assert.ok((await d.calls()).length <= 1);
  const r = await adb.ensureTethering('SLOW1');
  assert.equal(r.ok, false);
  assert.match(!r.ok ? r.reason : '', /did not answer within 3000 ms/);
});

test('ensureTethering (Android 12): off -> svc usb setFunctions rndis -> on, the tether-on hook ran; on -> nothing to do', async () => {
  const { d, adb } = await setup([{ serial: 'R58M12ABCDE', state: 'device', usb: '1-1.2', profile: 'android-12' }]);
  await d.hook('R58M12ABCDE', 'tether-on', `touch '${d.dir}/tethered'`);
  assert.deepEqual(await adb.ensureTethering('R58M12ABCDE'), { ok: true });
  const calls = (await d.calls()).map((c) => c.slice(3).join(' '));
  assert.deepEqual(calls, ['getprop sys.usb.state', 'getprop', 'svc usb setFunctions rndis', 'getprop sys.usb.state']);
  assert.equal((await d.state('R58M12ABCDE')).tethering, true);
  const { existsSync } = await import('node:fs');
  assert.ok(existsSync(`${d.dir}/tethered`));
  assert.deepEqual(await adb.ensureTethering('R58M12ABCDE'), { ok: true });
  assert.equal((await d.calls()).length, 5, 'already on: one getprop, no setFunctions');
});

test('ensureTethering (Android 8): svc usb setFunction (singular); where the build lacks it: a reason, nothing changed', async () => {
  const { d, adb } = await setup([
    { serial: 'P8', state: 'device', profile: 'android-8' },
    { serial: 'P8B', state: 'device', profile: 'android-8', missing: ['svc usb setFunction'] },
    { serial: 'P10B', state: 'device', profile: 'android-10', missing: ['svc usb setFunctions'] },
  ]);
  assert.deepEqual(await adb.ensureTethering('P8'), { ok: true });
  assert.ok((await d.calls()).some((c) => c.join(' ') === '-s P8 shell svc usb setFunction rndis'));
  for (const s of ['P8B', 'P10B']) {
    const r = await adb.ensureTethering(s);
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : '', /without root.*Settings > Network > Hotspot & tethering/);
    assert.notEqual((await d.state(s)).tethering, true);
  }
});

test('ensureTethering (Android 14 without RNDIS in its USB gadget): NCM instead; neither: both named in the reason', async () => {
  const { d, adb } = await setup([
    { serial: 'PIX', state: 'device', profile: 'android-14', missing: ['svc usb setFunctions rndis'] },
    { serial: 'PIXB', state: 'device', profile: 'android-14', missing: ['svc usb setFunctions'] },
  ]);
  assert.deepEqual(await adb.ensureTethering('PIX'), { ok: true });
  const sets = (await d.calls()).filter((c) => c.includes('setFunctions')).map((c) => c.slice(3).join(' '));
  assert.deepEqual(sets, ['svc usb setFunctions rndis', 'svc usb setFunctions ncm']);
  const r = await adb.ensureTethering('PIXB');
  assert.equal(r.ok, false);
  assert.match(
    !r.ok ? r.reason : '',
    /refuses `svc usb setFunctions rndis` and `svc usb setFunctions ncm` without root/,
  );
});

test('wifiOff and reboot', async () => {
  const { d, adb } = await setup([{ serial: 'P14', state: 'device', profile: 'android-14' }]);
  await adb.wifiOff('P14');
  assert.equal((await d.state('P14')).wifi, false);
  await adb.reboot('P14');
  assert.equal((await d.state('P14')).reboots, 1);
  assert.deepEqual(
    (await d.calls()).map((c) => c.join(' ')),
    ['-s P14 shell svc wifi disable', '-s P14 reboot'],
  );
});

// ---- fuzzing ----

const anyText = fc.oneof(
  fc.string({ maxLength: 400 }),
  fc.string({ unit: 'binary', maxLength: 400 }),
  fc
    .array(
      fc
        .tuple(
          fc.oneof(fc.string({ maxLength: 70 }), fc.stringMatching(/^[A-Za-z0-9._:-]{1,70}$/)),
          fc.constantFrom('\t', ' ', '    '),
          fc.constantFrom('device', 'unauthorized', 'offline', 'no permissions', 'recovery', 'x'),
          fc.array(
            fc.constantFrom(
              ' usb:1-1.2',
              ' usb:../x',
              ' model:a;b',
              ' product:p',
              ' device:d',
              ' transport_id:99999999999',
              ' usb:',
            ),
            { maxLength: 5 },
          ),
        )
        .map(([s, sep, st, f]) => `${s}${sep}${st}${f.join('')}`),
      { maxLength: 8 },
    )
    .map((l) => `List of devices attached\n${l.join('\n')}\n`),
);

test('fuzz parseAdbDevices: never throws; every serial usable or flagged, fields in their patterns', () => {
  fc.assert(
    fc.property(anyText, (text) => {
      for (const d of parseAdbDevices(text)) {
        if (d.state === 'invalid-serial') {
          assert.ok(!isValidSerial(d.serial));
          assert.deepEqual(Object.keys(d), ['serial', 'state']);
        } else assert.ok(isValidSerial(d.serial), d.serial);
        if (d.usb !== undefined) assert.match(d.usb, /^\d+-\d+(\.\d+)*$/);
        for (const v of [d.model, d.product, d.device])
          if (v !== undefined) assert.match(v, /^[A-Za-z0-9._:+-]{1,64}$/);
        if (d.transportId !== undefined) assert.match(d.transportId, /^\d{1,10}$/);
      }
    }),
    { numRuns: 500 },
  );
});

test('fuzz safeSerial: injective, file-name safe, never . or ..', () => {
  const serial = fc.stringMatching(/^[A-Za-z0-9._:][A-Za-z0-9._:-]{0,20}$/).filter(isValidSerial);
  fc.assert(
    fc.property(serial, serial, (a, b) => {
      const sa = safeSerial(a);
      assert.match(sa, /^[A-Za-z0-9_-]+$/);
      assert.ok(sa !== '.' && sa !== '..');
      if (a !== b) assert.notEqual(sa, safeSerial(b));
    }),
    { numRuns: 1000 },
  );
  assert.equal(safeSerial('a:b'), 'a_3ab');
  assert.equal(safeSerial('a_b'), 'a_5fb');
  assert.equal(safeSerial('R58M12ABCDE'), 'R58M12ABCDE');
});

test('fuzz getprop parsing: never throws; info fields bounded', () => {
  const line = fc
    .tuple(
      fc.constantFrom(
        'ro.product.model',
        'ro.product.manufacturer',
        'ro.build.version.release',
        'ro.build.version.sdk',
        'x',
      ),
      fc.string({ unit: 'binary', maxLength: 200 }),
    )
    .map(([k, v]) => `[${k}]: [${v}]`);
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ unit: 'binary', maxLength: 300 }),
        fc.array(line, { maxLength: 6 }).map((l) => l.join('\n')),
      ),
      (text) => {
        const i = phoneInfoFromProps(parseGetprop(text));
        for (const v of [i.model, i.manufacturer]) if (v !== null) assert.ok(v.length >= 1 && v.length <= 64);
        if (i.android !== null) assert.ok(i.android.length <= 16);
        if (i.sdk !== null) assert.ok(Number.isInteger(i.sdk) && i.sdk >= 1 && i.sdk <= 100);
        tetheringOn(text);
      },
    ),
    { numRuns: 500 },
  );
  assert.ok(tetheringOn('rndis,adb'));
  assert.ok(tetheringOn('ncm,adb'));
  assert.ok(!tetheringOn('mtp,adb'));
  assert.ok(!tetheringOn('rndisx'));
});
