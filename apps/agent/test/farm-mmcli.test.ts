// farm/mmcli.ts against the fake mmcli (test/fakes/mmcli, recorded JSON of a Quectel EC25 and a Huawei
// E3372 under ModemManager 1.20) through the real execFile path. Parsers fuzzed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fc from 'fast-check';
import { isPPError } from '@pocketproxy/errors';
import {
  createMmcli,
  parseBearer,
  parseModem,
  parseModemList,
  simpleConnectArg,
  type ModemInfo,
} from '../src/farm/mmcli.js';
import { FAKE_MMCLI, fakeMmcliDir, type FakeDir, type FakeModem } from './fakes/index.js';

const dirs: FakeDir[] = [];
after(async () => {
  for (const d of dirs) await d.remove();
});

const MODEMS: FakeModem[] = [
  { index: 0, imei: '867962041234561', profile: 'quectel-ec25', interface: 'wwan0', connected: true },
  { index: 3, imei: '866123045678902', profile: 'huawei-e3372', interface: 'wwan1', connected: true },
];

async function setup(modems: FakeModem[] = MODEMS, timeoutMs = 30_000) {
  const d = await fakeMmcliDir(modems);
  dirs.push(d);
  process.env.FAKE_MMCLI_DIR = d.dir;
  return { d, mm: createMmcli({ path: FAKE_MMCLI, timeoutMs }) };
}

test('list and modem: indexes, IMEI, model, operator, signal, access tech, bearer interface', async () => {
  const { d, mm } = await setup();
  assert.deepEqual(await mm.list(), ['0', '3']);
  assert.deepEqual(await mm.modem('0'), {
    id: '0',
    imei: '867962041234561',
    model: 'QUECTEL Mobile Broadband Module',
    manufacturer: 'QUALCOMM INCORPORATED',
    operator: 'Telekom.de',
    signal: 71,
    accessTech: 'lte',
    state: 'connected',
    bearers: [{ id: '1', connected: true, interface: 'wwan0', apn: 'internet', ipType: 'ipv4v6' }],
    initialApn: 'internet',
  });
  const h = await mm.modem('3');
  assert.equal(h.model, 'E3372');
  assert.equal(h.manufacturer, 'huawei');
  assert.equal(h.operator, 'vodafone UK');
  assert.equal(h.signal, 48);
  assert.deepEqual(h.bearers, [
    { id: '7', connected: true, interface: 'wwan1', apn: 'pp.vodafone.co.uk', ipType: 'ipv4' },
  ]);
  assert.equal(h.initialApn, null);
  assert.deepEqual(
    (await d.calls()).map((c) => c.join(' ')),
    ['-L -J', '-m 0 -J', '-b 1 -J', '-m 3 -J', '-b 7 -J'],
  );
});

test('reconnect: --simple-disconnect, then --simple-connect with the bearer own APN and IP type; the hook ran', async () => {
  const { d, mm } = await setup();
  await d.hook('866123045678902', 'reconnect', `touch '${d.dir}/reconnected'`);
  await mm.reconnect('3');
  const calls = (await d.calls()).map((c) => c.join(' '));
  assert.deepEqual(calls, [
    '-m 3 -J',
    '-b 7 -J',
    '-m 3 --simple-disconnect',
    '-m 3 --timeout=60 --simple-connect=apn=pp.vodafone.co.uk,ip-type=ipv4',
  ]);
  assert.ok(existsSync(`${d.dir}/reconnected`));
  assert.equal((await d.state('866123045678902')).reconnects, 1);
  await mm.reconnect('0');
  assert.equal((await d.calls()).at(-1)!.join(' '), '-m 0 --timeout=60 --simple-connect=apn=internet,ip-type=ipv4v6');
});

test('a disconnected bearer has no interface; reconnect still uses its APN', async () => {
  const { mm } = await setup([
    { index: 1, imei: '867962041234579', profile: 'quectel-ec25', interface: 'wwan2', connected: false },
  ]);
  const m = await mm.modem('1');
  assert.equal(m.state, 'registered');
  assert.deepEqual(m.bearers, [{ id: '3', connected: false, interface: null, apn: 'internet', ipType: 'ipv4v6' }]);
  await mm.reconnect('1');
  assert.equal((await mm.modem('1')).bearers[0]!.interface, 'wwan2');
});

test('errors: a modem index that is not a number never reaches mmcli; unknown modem, failed connect, slow modem', async () => {
  const { d, mm } = await setup(
    [
      { index: 0, imei: '867962041234561', profile: 'quectel-ec25', fail: ['simple-connect'] },
      { index: 5, imei: '867962041234587', profile: 'quectel-ec25', slow_ms: 60_000 },
    ],
    // Generous for the answers (the fake is a Node script: seconds to start on a loaded host); the slow
    // modem gets its own short deadline below.
  );
  for (const bad of ['0; reboot', '-J', '', 'any', '1234567', '../0']) {
    await assert.rejects(mm.modem(bad), { code: 'PP_ERR_AGENT_MODEM_BAD_ID' });
    await assert.rejects(mm.reconnect(bad), { code: 'PP_ERR_AGENT_MODEM_BAD_ID' });
  }
  assert.deepEqual(await d.calls(), []);
  await assert.rejects(mm.modem('9'), (e: unknown) => {
    assert.ok(isPPError(e));
    assert.equal(e.code, 'PP_ERR_AGENT_TOOL_FAILED');
    assert.match(e.message, /couldn't find modem/);
    return true;
  });
  await assert.rejects(mm.reconnect('0'), /Service option not subscribed/);
  await assert.rejects(createMmcli({ path: FAKE_MMCLI, timeoutMs: 3_000 }).modem('5'), {
    code: 'PP_ERR_AGENT_TOOL_TIMEOUT',
  });
});

test('an APN or IP type with separators is not passed on (it would add keys to --simple-connect)', () => {
  const b = parseBearer(
    '1',
    JSON.stringify({
      bearer: {
        status: { connected: 'yes', interface: 'wwan0;x' },
        properties: { apn: 'internet,user=evil', 'ip-type': 'ipv4,apn=x' },
      },
    }),
  );
  assert.deepEqual(b, { id: '1', connected: true, interface: null, apn: null, ipType: null });
  const m: ModemInfo = {
    id: '1',
    imei: null,
    model: null,
    manufacturer: null,
    operator: null,
    signal: null,
    accessTech: null,
    state: null,
    bearers: [b],
  };
  assert.equal(simpleConnectArg(m), '--simple-connect=ip-type=ipv4');
});

test('parseModemList: only ModemManager modem paths', () => {
  assert.deepEqual(parseModemList('{"modem-list":[]}'), []);
  assert.deepEqual(
    parseModemList(
      '{"modem-list":["/org/freedesktop/ModemManager1/Modem/12","/x/Modem/3","/org/freedesktop/ModemManager1/Modem/12",7]}',
    ),
    ['12'],
  );
  assert.throws(() => parseModemList('No modems were found'), { code: 'PP_ERR_AGENT_TOOL_OUTPUT' });
});

test('fuzz the mmcli parsers: only our errors, values in range, the connect argument always plain', () => {
  const modemish = fc.record(
    {
      modem: fc.record(
        {
          '3gpp': fc.record(
            {
              imei: fc.oneof(fc.string(), fc.constant('--'), fc.integer()),
              'operator-name': fc.oneof(fc.string({ unit: 'binary' }), fc.constant('--')),
            },
            { requiredKeys: [] },
          ),
          generic: fc.record(
            {
              'signal-quality': fc.record(
                { value: fc.oneof(fc.string(), fc.integer(), fc.constant('101'), fc.constant('-1')) },
                { requiredKeys: [] },
              ),
              'access-technologies': fc.oneof(fc.array(fc.oneof(fc.string(), fc.integer())), fc.string()),
              bearers: fc.array(
                fc.oneof(
                  fc.string(),
                  fc.nat().map((n) => `/org/freedesktop/ModemManager1/Bearer/${n}`),
                ),
              ),
              model: fc.anything(),
              state: fc.anything(),
            },
            { requiredKeys: [] },
          ),
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: [] },
  );
  const text = fc.oneof(
    fc.string({ unit: 'binary' }),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    modemish.map((v) => JSON.stringify(v)),
  );
  fc.assert(
    fc.property(text, text, (mt, bt) => {
      for (const f of [() => parseModemList(mt), () => parseModem('0', mt), () => parseBearer('1', bt)]) {
        try {
          f();
        } catch (e) {
          assert.ok(isPPError(e) && e.code === 'PP_ERR_AGENT_TOOL_OUTPUT', String(e));
        }
      }
      let m: ModemInfo;
      try {
        m = parseModem('0', mt);
        m.bearers = m.bearers.map((b) => {
          try {
            return parseBearer(b.id, bt);
          } catch {
            return b;
          }
        });
      } catch {
        return;
      }
      if (m.signal !== null) assert.ok(Number.isInteger(m.signal) && m.signal >= 0 && m.signal <= 100);
      if (m.imei !== null) assert.match(m.imei, /^[0-9A-Fa-f]{8,20}$/);
      for (const v of [m.model, m.manufacturer, m.operator])
        if (v !== null) assert.ok(typeof v === 'string' && v.length <= 64);
      assert.ok(m.bearers.length <= 4);
      for (const b of m.bearers) {
        assert.match(b.id, /^\d{1,6}$/);
        if (b.interface !== null) assert.match(b.interface, /^[A-Za-z0-9_.-]{1,15}$/);
      }
      assert.match(
        simpleConnectArg(m),
        /^--simple-connect=(apn=[A-Za-z0-9._-]+)?(,?ip-type=ipv4(v6)?|,?ip-type=ipv6)?$/,
      );
    }),
    { numRuns: 500 },
  );
});
