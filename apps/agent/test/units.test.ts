// Unit tests: state file, CLI, verifiers, command de-dup, transport/liveness policies, heartbeat shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CommandType, Heartbeat } from '@pocketproxy/api-schema';
import { readState, writeState, statePath, type AgentState } from '../src/state.js';
import {
  parseCli,
  HELP,
  autoLanes,
  autoListenerThreads,
  AUTO_LANES_MAX,
  AUTO_LISTENER_THREADS_MAX,
} from '../src/cli.js';
import { checkVerifier, makeVerifier, CredentialStore, VERIFIED_MEMO_MAX } from '../src/credentials.js';
import type { CredentialItem } from '../src/api-client.js';
import { CommandDispatcher } from '../src/ops/commands.js';
import { TransportPolicy } from '../src/tunnel/transport-policy.js';
import { Liveness } from '../src/tunnel/liveness.js';
import { buildHeartbeat, HeartbeatLoop } from '../src/ops/heartbeat.js';
import { commandCapabilities, createRotationDriver, type DriverName, type Exec } from '../src/ops/rotation.js';
import { UsageMeter } from '../src/ops/usage.js';
import { parseMmcli, readBattery } from '../src/ops/metrics.js';
import { firstHost, icmpEcho, checksum } from '../src/tunnel/probe.js';
import { createEgress, currentPolicy } from '../src/proxy/egress.js';
import { ConnectionMeter, isForbiddenAddress } from '@pocketproxy/proxy';
import { credentialItem, logger, waitFor } from './helpers.js';

const sample: AgentState = {
  version: 1,
  server: 'http://relay.test:8080',
  device_id: 'dev_abcdefghij',
  auth_token: 'tok',
  private_key: 'k',
  public_key: 'p',
  psk: 's',
  relay: { id: 'rly_abcdefghij', host: 'relay.test', port: 1194, public_key: null },
  vpn_ip: '192.168.255.7',
  mtu: 1380,
  subnet: '192.168.255.0/24',
  paired_at: new Date(0).toISOString(),
};

test('state file: round trip, mode 0600 in a 0700 directory, clear errors', async () => {
  const root = await mkdtemp(join(tmpdir(), 'ppagent-'));
  try {
    const dir = join(root, 'state');
    const old = process.umask(0o022);
    try {
      await writeState(dir, sample);
    } finally {
      process.umask(old);
    }
    assert.deepEqual(await readState(dir), sample);
    assert.equal((await stat(statePath(dir))).mode & 0o777, 0o600);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    await writeState(dir, { ...sample, vpn_ip: '192.168.255.9' });
    assert.equal((await readState(dir)).vpn_ip, '192.168.255.9');
    assert.equal((await stat(statePath(dir))).mode & 0o777, 0o600);
    await assert.rejects(readState(join(root, 'nope')), { code: 'PP_ERR_AGENT_STATE_MISSING' });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('CLI: --help on each command, problems reported together', () => {
  assert.equal(parseCli(['--help']).command, 'help');
  assert.deepEqual(parseCli(['pair', '--help']), { command: 'help', text: HELP.pair });
  assert.deepEqual(parseCli(['run', '-h']), { command: 'help', text: HELP.run });
  assert.throws(
    () => parseCli(['pair']),
    (e: Error) => /--server is required/.test(e.message) && /--code is required/.test(e.message),
  );
  assert.throws(
    () => parseCli(['run', '--rotate-driver', 'bogus', '--close-on-rotate', 'maybe']),
    (e: Error) => /rotate-driver/.test(e.message) && /close-on-rotate/.test(e.message),
  );
  assert.throws(() => parseCli(['frobnicate']), { code: 'PP_ERR_AGENT_USAGE' });
  const r = parseCli([
    'run',
    '--rotate-command',
    'echo hi',
    '--egress-interface',
    'wwan0',
    '--close-on-rotate',
    'false',
    '--allow-private-destinations',
  ]);
  assert.equal(r.command, 'run');
  if (r.command === 'run') {
    assert.equal(r.config.rotateDriver, 'command');
    assert.equal(r.config.tunnelInterface, 'ppd0');
    assert.equal(r.config.closeOnRotate, false);
    assert.equal(r.config.allowPrivateDestinations, true);
    assert.equal(r.config.dnsCacheMs, 5000);
    assert.ok(Object.isFrozen(r.config));
  }
  // Listener threads by default: 1 on one or two cores; from three, one per core but one, at most AUTO_LISTENER_THREADS_MAX.
  assert.equal(r.command === 'run' && r.config.listenerThreads, autoListenerThreads());
  assert.deepEqual([1, 2, 3, 4, 8, 16].map(autoListenerThreads), [1, 1, 2, 3, AUTO_LISTENER_THREADS_MAX, 4]);
  for (const [arg, want] of [
    ['1', 1],
    ['3', 3],
    ['auto', autoListenerThreads()],
  ] as const) {
    const t = parseCli(['run', '--listener-threads', arg]);
    assert.equal(t.command === 'run' && t.config.listenerThreads, want);
  }
  for (const bad of ['0', '65', '1.5', 'many', ''])
    assert.throws(() => parseCli(['run', '--listener-threads', bad]), /--listener-threads must be 1-64 or auto/);
  // Lanes: auto by default (one per core, at most AUTO_LANES_MAX; 1 on one core), or 1-16.
  assert.equal(r.command === 'run' && r.config.lanes, autoLanes());
  assert.equal(r.command === 'run' && r.config.lanesAuto, true);
  assert.deepEqual([1, 2, 3, 4, 8, 16].map(autoLanes), [1, 2, 3, 4, AUTO_LANES_MAX, 4]);
  const l = parseCli(['run', '--lanes', '4']);
  assert.equal(l.command === 'run' && l.config.lanes, 4);
  assert.equal(l.command === 'run' && l.config.lanesAuto, false);
  const la = parseCli(['run', '--lanes', 'auto']);
  assert.equal(la.command === 'run' && la.config.lanes, autoLanes());
  for (const bad of ['0', '17', '2.5', 'Auto', '', ' 2', '0x2'])
    assert.throws(() => parseCli(['run', '--lanes', bad]), /--lanes must be 1-16 or auto/);
  const d = parseCli(['run', '--dns-cache-ms', '0']);
  assert.equal(d.command === 'run' && d.config.dnsCacheMs, 0);
  assert.throws(
    () => parseCli(['run', '--dns-cache-ms', '-1']),
    (e: Error) => /--dns-cache-ms/.test(e.message),
  );
  assert.throws(
    () => parseCli(['run', '--dns-cache-ms', 'soon']),
    (e: Error) => /--dns-cache-ms/.test(e.message),
  );
  // The real launcher, end to end.
  const bin = fileURLToPath(new URL('../bin/pocketproxy-agent.js', import.meta.url));
  for (const args of [['--help'], ['pair', '--help'], ['run', '--help']]) {
    const p = spawnSync(process.execPath, [bin, ...args], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    assert.equal(p.status, 0, p.stderr);
    assert.match(p.stdout, /Usage: pocketproxy-agent/);
  }
  const bad = spawnSync(process.execPath, [bin, 'pair'], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--server is required/);
});

test('credential verifier: v1$salt$base64url(HMAC-SHA256(salt, password))', () => {
  const v = makeVerifier('s3cret-pass', 'NaCl123');
  assert.match(v, /^v1\$NaCl123\$[A-Za-z0-9_-]{43}$/);
  assert.ok(checkVerifier('s3cret-pass', v));
  assert.ok(!checkVerifier('s3cret-pasS', v));
  assert.ok(!checkVerifier('s3cret-pass', v.replace('v1$', 'v2$')));
  assert.ok(!checkVerifier('x', 'garbage'));
  assert.ok(!checkVerifier('x', 'v1$salt$'));
  const store = new CredentialStore();
  store.replace('v1', [
    credItem({ connection_id: 'con_aaaaaaaaaa', protocol: 'socks5', port: 30001, username: 'alice', verifier: v }),
  ]);
  const a = store.get('con_aaaaaaaaaa')!;
  assert.equal(store.check(a, 'alice', 's3cret-pass'), true);
  assert.equal(store.check(a, 'alice', 'nope'), false);
  assert.equal(store.check(a, 'bob', 's3cret-pass'), false);
});

/** A well-formed credential item as the API sends it (active, no limits). */
function credItem(o: Partial<CredentialItem> & { connection_id: string; verifier: string }): CredentialItem {
  return credentialItem(o.connection_id, 30000, 'alice', '', o);
}

test('credentials: a credential is checked only against its own connection; verified triples are remembered until the credentials change', () => {
  const store = new CredentialStore();
  const item = (password: string) =>
    credItem({ connection_id: 'con_aaaaaaaaaa', username: 'alice', verifier: makeVerifier(password, 'salt1') });
  const other = credItem({
    connection_id: 'con_bbbbbbbbbb',
    port: 30001,
    username: 'bob',
    verifier: makeVerifier('bob-pass', 'salt2'),
  });
  store.replace('v1', [item('first-pass'), other]);
  const a = store.get('con_aaaaaaaaaa')!;
  const b = store.get('con_bbbbbbbbbb')!;
  assert.ok(store.check(a, 'alice', 'first-pass'));
  assert.equal(store.verifiedCount, 1);
  assert.ok(store.check(a, 'alice', 'first-pass'), 'second check answered from the memo');
  assert.equal(store.verifiedCount, 1);
  // Alice's credentials on Bob's connection (and the other way round) open nothing, memo or not.
  assert.equal(store.check(b, 'alice', 'first-pass'), false);
  assert.equal(store.check(a, 'bob', 'bob-pass'), false);
  // A user name containing the separator cannot collide with another triple.
  assert.equal(store.check(a, 'alice\0first', 'pass'), false);
  assert.equal(store.check(a, 'alice', 'first-pass\0'), false);
  // Password changed on the server: the old one stops working at once, the new one works.
  store.replace('v2', [item('second-pass')]);
  const a2 = store.get('con_aaaaaaaaaa')!;
  assert.equal(store.check(a2, 'alice', 'first-pass'), false);
  assert.ok(store.check(a2, 'alice', 'second-pass'));
  // Connection deleted: nothing remembered survives.
  store.replace('v3', []);
  assert.equal(store.get('con_aaaaaaaaaa'), undefined);
  // Bounded: filling the memo past its limit drops it and keeps answering correctly.
  const many = Array.from({ length: VERIFIED_MEMO_MAX + 1 }, (_, i) => ({
    ...item(`p${i}`),
    username: `u${i}`,
    connection_id: `con_${String(i).padStart(10, '0')}`,
  }));
  store.replace('v4', many);
  for (let i = 0; i < many.length; i++) assert.ok(store.check(store.get(many[i]!.connection_id)!, `u${i}`, `p${i}`));
  assert.ok(store.verifiedCount <= VERIFIED_MEMO_MAX, `memo holds ${store.verifiedCount}`);
  assert.equal(store.check(store.get(many[0]!.connection_id)!, 'u0', 'p1'), false);
});

test('credentials: malformed items from the API are left out with the reason; allow-lists match IPv4/IPv6 addresses and CIDRs, and fail closed', () => {
  const store = new CredentialStore();
  const v = makeVerifier('pw', 's');
  const good = credItem({
    connection_id: 'con_aaaaaaaaaa',
    verifier: v,
    allow_from: ['203.0.113.0/24', '192.0.2.7', '2001:db8::/32'],
  });
  const bad = store.replace('v1', [
    good,
    { ...good, connection_id: 'con_1', port: 0 },
    { ...good, connection_id: 'con_2', protocol: 'socks4' },
    { ...good, connection_id: 'con_3', state: undefined },
    { ...good, connection_id: 'con_4', verifier: 'plaintext' },
    { ...good, connection_id: 'con_5', max_connections: -1 },
    { ...good, connection_id: 'con_6', expires_at: 'tomorrow' },
    'nonsense',
  ]);
  assert.equal(store.size, 1);
  assert.deepEqual(
    bad.map((b) => b.id),
    ['con_1', 'con_2', 'con_3', 'con_4', 'con_5', 'con_6', '?'],
  );
  const a = store.get('con_aaaaaaaaaa')!;
  for (const ok of ['203.0.113.9', '192.0.2.7', '2001:db8::1']) assert.equal(store.allowed(a, ok), true, ok);
  for (const no of ['203.0.114.1', '192.0.2.8', '2001:db9::1', '', 'not-an-ip'])
    assert.equal(store.allowed(a, no), false, no);
  store.replace('v2', [
    { ...good, allow_from: [] },
    { ...good, connection_id: 'con_bbbbbbbbbb', allow_from: ['300.1.1.1', 'x/8'] },
  ]);
  assert.equal(
    store.allowed(store.get('con_aaaaaaaaaa')!, '198.51.100.1'),
    true,
    'no list: anyone with the credentials',
  );
  assert.equal(store.allowed(store.get('con_bbbbbbbbbb')!, '198.51.100.1'), false, 'an unreadable list admits nobody');
});

test('commands: one run per id across tunnel pushes and heartbeats; re-pushes are re-acked', async () => {
  const runs: string[] = [];
  const reports: Array<[string, string, unknown]> = [];
  const acks: Array<[string, string]> = [];
  const d = new CommandDispatcher({
    handlers: {
      config_update: async (p) => {
        runs.push('config');
        return { applied: p };
      },
      reboot: async () => {
        throw new Error('reboot not allowed');
      },
    },
    report: async (id, status, result) => {
      reports.push([id, status, result]);
    },
    ack: (id, status) => acks.push([id, status]),
    logger,
  });
  const cmd = { id: 'cmd_aaaaaaaaaa', type: 'config_update', payload: { heartbeat_interval_s: 10 } };
  assert.equal(d.submit(cmd, 'tunnel'), true);
  assert.equal(d.submit(cmd, 'tunnel'), false);
  assert.equal(d.submit(cmd, 'heartbeat'), false);
  await d.idle();
  assert.equal(d.submit(cmd, 'tunnel'), false);
  assert.deepEqual(runs, ['config']);
  assert.deepEqual(
    reports.map((r) => r[1]),
    ['acked', 'succeeded'],
  );
  assert.deepEqual(acks, [
    ['cmd_aaaaaaaaaa', 'received'],
    ['cmd_aaaaaaaaaa', 'received'],
    ['cmd_aaaaaaaaaa', 'succeeded'],
    ['cmd_aaaaaaaaaa', 'succeeded'],
  ]);
  d.submit({ id: 'cmd_bbbbbbbbbb', type: 'reboot' }, 'heartbeat');
  d.submit({ id: 'cmd_cccccccccc', type: 'self_destruct' }, 'heartbeat');
  await d.idle();
  assert.deepEqual(
    reports
      .slice(2)
      .map((r) => `${r[0]} ${r[1]}`)
      .sort(),
    ['cmd_bbbbbbbbbb acked', 'cmd_bbbbbbbbbb failed', 'cmd_cccccccccc acked', 'cmd_cccccccccc failed'],
  );
  assert.match(
    JSON.stringify(reports.find((r) => r[0] === 'cmd_bbbbbbbbbb' && r[1] === 'failed')![2]),
    /reboot not allowed/,
  );
  assert.match(
    JSON.stringify(reports.find((r) => r[0] === 'cmd_cccccccccc' && r[1] === 'failed')![2]),
    /unknown command type/,
  );
});

test('transport policy: UDP -> TCP after fallbackAfterMs without a session, UDP retry while on TCP', () => {
  const p = new TransportPolicy({ fallbackAfterMs: 10_000, udpRetryMs: 60_000, udpRetryFirstMs: 60_000 }, 0);
  assert.deepEqual(p.tick(5_000), {});
  assert.deepEqual(p.tick(9_999), {});
  assert.deepEqual(p.tick(10_000), { switchTo: 'tcp' });
  assert.deepEqual(p.tick(15_000), {});
  p.onEstablished(16_000);
  assert.deepEqual(p.tick(70_000), {});
  assert.deepEqual(p.tick(76_000), { probeUdp: true });
  assert.deepEqual(p.tick(77_000), {});
  assert.equal(p.onAuthenticated('tcp', 78_000), undefined);
  assert.equal(p.onAuthenticated('udp', 78_000), 'udp');
  assert.equal(p.mode, 'udp');
  p.onSessionLost(100_000);
  assert.deepEqual(p.tick(109_000), {});
  assert.deepEqual(p.tick(110_000), { switchTo: 'tcp' });
  assert.deepEqual(p.tick(120_000), { switchTo: 'udp' }); // TCP did not work either: alternate
});

test('transport policy: after a fallback, UDP probes 1, 2, 4, ... s apart up to 60 s; a rekey keeps the schedule, a new session restarts it', () => {
  const p = new TransportPolicy({}, 0); // defaults: fallback 10 s, first probe 1 s, at most 60 s apart
  assert.deepEqual(p.tick(9_999), {});
  assert.deepEqual(p.tick(10_000), { switchTo: 'tcp' });
  assert.deepEqual(p.tick(11_000), {}, 'no probes while connecting');
  p.onEstablished(12_000); // the session came up on TCP
  const probes: number[] = [];
  const run = (from: number, to: number) => {
    for (let t = from; t <= to; t += 100) if (p.tick(t).probeUdp) probes.push(t);
  };
  run(12_100, 200_000);
  assert.deepEqual(probes, [13_000, 15_000, 19_000, 27_000, 43_000, 75_000, 135_000, 195_000]);
  // A rekey (already established) does not restart the schedule.
  p.onEstablished(196_000);
  probes.length = 0;
  run(196_100, 260_000);
  assert.deepEqual(probes, [255_000]);
  // UDP answered: back on UDP, no more probes.
  assert.equal(p.onAuthenticated('udp', 260_000), 'udp');
  probes.length = 0;
  run(260_100, 300_000);
  assert.deepEqual(probes, []);
  // Lost again, fell back again, new session on TCP: 1 s again.
  p.onSessionLost(300_000);
  assert.deepEqual(p.tick(310_000), { switchTo: 'tcp' });
  p.onEstablished(310_500);
  assert.equal(p.nextUdpProbeAt, 311_500);
  assert.deepEqual(p.tick(311_400), {});
  assert.deepEqual(p.tick(311_500), { probeUdp: true });
  assert.equal(p.nextUdpProbeAt, 313_500);
  // The first gap never exceeds the longest.
  assert.equal(new TransportPolicy({ udpRetryMs: 800 }).udpRetryFirstMs, 800);
});

test("transport policy: a lane adopts lane 0's transport; its own fallback timer restarts from there", () => {
  const p = new TransportPolicy({}, 0);
  p.onEstablished(500);
  p.onSessionLost(20_000); // lane 0's word: the relay lost, a new session over TCP
  assert.equal(p.adopt('tcp', 20_000), true);
  assert.equal(p.mode, 'tcp');
  assert.equal(p.adopt('tcp', 20_100), false, 'already there: no change');
  assert.deepEqual(p.tick(29_999), {}, 'TCP gets the whole fallback time before UDP is tried again');
  assert.deepEqual(p.tick(30_000), { switchTo: 'udp' });
  p.onSessionLost(40_000);
  assert.equal(p.adopt('tcp', 40_000), true);
  p.onEstablished(40_300); // up on TCP: UDP probes from 1 s on, as after its own fallback
  assert.equal(p.nextUdpProbeAt, 41_300);
});

test('liveness: probe after idle, restart when unanswered, slow mode for a relay deaf to probes', () => {
  const l = new Liveness({ probeIdleMs: 2_000, replyTimeoutMs: 3_000, slowTimeoutMs: 15_000 });
  l.onEstablished(0);
  assert.equal(l.tick(1_000), null);
  assert.equal(l.tick(2_000), 'probe');
  l.onAuthenticated(2_050);
  assert.equal(l.tick(3_000), null);
  assert.equal(l.tick(4_050), 'probe');
  assert.equal(l.tick(6_050), 'probe');
  assert.equal(l.tick(7_049), null);
  assert.equal(l.tick(7_050), 'restart'); // 3 s after the first unanswered probe, 5 s after the last reply
  // Handshake succeeds at once, probes keep going unanswered: false alarms -> slow mode.
  let t = 7_100;
  for (let i = 0; i < 3 && !l.slow; i++) {
    l.onEstablished(t);
    do t += 50;
    while (l.tick(t) !== 'restart');
  }
  assert.ok(l.slow);
  l.onEstablished(t);
  assert.equal(l.tick(t + 5_000), null);
  // A probe answered again restores fast detection.
  let a: string | null = null;
  for (let k = t; a !== 'probe'; k += 100) a = l.tick(k);
  l.onAuthenticated(t + 8_000);
  assert.equal(l.slow, false);
});

test('heartbeat payload matches the API schema (Heartbeat); usage is what the meters counted, reported once', async () => {
  const usage = new UsageMeter(() => new ConnectionMeter());
  usage.of('con_aaaaaaaaaa').take('up', 100);
  usage.of('con_aaaaaaaaaa').take('down', 2000);
  usage.of('con_bbbbbbbbbb').take('down', 20);
  const body = await buildHeartbeat({
    metrics: async () => ({ battery: 80, charging: true, signal: null, carrier: null, network_type: 'LTE' }),
    publicIp: async () => '198.18.1.2',
    proxyStats: () => ({
      listeners: 2,
      open: 1,
      admitted: 1,
      handshakeTimeouts: 3,
      idleClosed: 0,
      authFailures: 4,
      denied: 1,
      unauthRefusedPerAddress: 5,
      unauthRefusedTotal: 0,
      unauthActive: 0,
      listenFailures: 0,
      handedOff: 0,
      handoffDeclined: 0,
    }),
    agentVersion: '0.1.0',
    startedAt: 0,
    now: () => 61_500,
  });
  body.usage = usage.drain();
  const parsed = Heartbeat.parse(body);
  assert.equal(parsed.uptime_s, 61);
  assert.equal(parsed.proxy?.handshake_timeouts, 3);
  assert.deepEqual(body.usage, [
    { connection_id: 'con_aaaaaaaaaa', bytes_in: 100, bytes_out: 2000 },
    { connection_id: 'con_bbbbbbbbbb', bytes_in: 0, bytes_out: 20 },
  ]);
  // Counted meanwhile; a failed heartbeat gives its part back, so the next one carries both.
  usage.of('con_bbbbbbbbbb').take('up', 30);
  const failed = usage.drain();
  assert.deepEqual(failed, [{ connection_id: 'con_bbbbbbbbbb', bytes_in: 30, bytes_out: 0 }]);
  usage.restore(failed);
  usage.of('con_bbbbbbbbbb').take('down', 50);
  assert.deepEqual(usage.drain(), [{ connection_id: 'con_bbbbbbbbbb', bytes_in: 30, bytes_out: 50 }]);
  assert.deepEqual(usage.drain(), []);
  assert.equal(usage.of('con_bbbbbbbbbb').reported, 100);
  // Past a spent budget nothing is delivered, and nothing is billed.
  const capped = new UsageMeter(() => new ConnectionMeter({ budgetBytes: 1000 }));
  assert.equal(capped.of('con_cccccccccc').take('down', 1500), 0, 'the chunk that crosses the budget is delivered');
  assert.equal(capped.of('con_cccccccccc').take('down', 500), -1);
  assert.deepEqual(capped.drain(), [{ connection_id: 'con_cccccccccc', bytes_in: 0, bytes_out: 1500 }]);
  // A policed datagram given back is neither billed nor reported.
  usage.of('con_aaaaaaaaaa').take('up', 7);
  usage.of('con_aaaaaaaaaa').refund('up', 7);
  assert.deepEqual(usage.drain(), []);
  // Metrics unavailable and IP echo down still give a valid heartbeat.
  const b2 = await buildHeartbeat({
    metrics: async () => {
      throw new Error('x');
    },
    publicIp: async () => {
      throw new Error('down');
    },
    agentVersion: '0.1.0',
    startedAt: 0,
  });
  Heartbeat.parse(b2);
  assert.equal(b2.public_ip, null);
});

test("heartbeat capabilities: the command types the agent's driver can run (issue 12), valid for the API", async () => {
  const exec: Exec = async () => ({ stdout: '', stderr: '' });
  const caps = (driver: DriverName | undefined, allowReboot = false) =>
    commandCapabilities(
      driver ? createRotationDriver({ driver, rotateCommand: 'true', exec, sleep: async () => {} }) : undefined,
      allowReboot,
    );
  assert.deepEqual(caps(undefined), ['config_update']);
  assert.deepEqual(caps('command'), ['rotate_ip', 'config_update']);
  assert.deepEqual(caps('modemmanager'), ['rotate_ip', 'config_update']);
  assert.deepEqual(caps('android-root'), ['rotate_ip', 'wifi_toggle', 'airplane_mode', 'config_update']);
  assert.deepEqual(caps('command', true), ['rotate_ip', 'reboot', 'config_update']);
  for (const driver of [undefined, 'command', 'android-root', 'modemmanager'] as const) {
    const body = await buildHeartbeat({
      metrics: async () => ({}),
      publicIp: async () => '198.18.1.2',
      agentVersion: '0.1.0',
      startedAt: 0,
      capabilities: caps(driver, true),
    });
    assert.deepEqual(body.capabilities, caps(driver, true));
    // Every reported type is one the API knows.
    assert.deepEqual(Heartbeat.parse(body).capabilities, caps(driver, true));
    for (const t of body.capabilities!) assert.ok(CommandType.options.includes(t as never), t);
  }
});

test('heartbeat after a rotation: one built before it goes without its (stale) address, a fresh one follows', async () => {
  let ip = '198.18.1.2';
  let release: (() => void) | undefined;
  const sent: (string | null | undefined)[] = [];
  const loop = new HeartbeatLoop({
    send: async (b) => {
      sent.push(b.public_ip);
      return { commands: [], heartbeat_interval_s: 30, credentials_version: 'v' };
    },
    metrics: async () => ({}),
    // The first lookup answers the old address, but only after the rotation finished.
    publicIp: async () => {
      const now = ip;
      if (sent.length === 0 && !release) await new Promise<void>((r) => (release = r));
      return now;
    },
    usage: new UsageMeter(() => new ConnectionMeter()),
    onReply: () => {},
    agentVersion: '0.1.0',
    startedAt: 0,
    logger,
  });
  const first = loop.beat();
  while (!release) await new Promise((r) => setImmediate(r));
  ip = '198.18.1.77';
  const after = loop.addressChanged();
  release();
  await first;
  await after;
  assert.deepEqual(sent, [null, '198.18.1.77']);
  assert.equal(loop.lastPublicIp, '198.18.1.77');
});

test('heartbeat: a process that ran again after a freeze beats at once, then keeps its interval', async () => {
  let clock = 1_000_000;
  const sent: number[] = [];
  const loop = new HeartbeatLoop({
    send: async () => {
      sent.push(clock);
      return { commands: [], heartbeat_interval_s: 30, credentials_version: 'v' };
    },
    metrics: async () => ({}),
    publicIp: async () => '198.18.1.2',
    usage: new UsageMeter(() => new ConnectionMeter()),
    onReply: () => {},
    agentVersion: '0.1.0',
    startedAt: 0,
    now: () => clock,
    logger,
    intervalS: 30,
    resumeCheckMs: 20,
    resumeGapMs: 5_000,
  });
  loop.start();
  try {
    await waitFor(() => sent.length === 1, 2000); // the first beat, at start
    // The clock moves on normally (a second per look): no extra beat.
    for (let i = 0; i < 10; i++) {
      clock += 1_000;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(sent.length, 1);
    assert.equal(loop.resumes, 0);
    // Frozen for 40 s (the interval's timer has not fired yet in real time): a beat at once.
    clock += 40_000;
    await waitFor(() => sent.length === 2, 2000);
    assert.equal(sent[1], clock);
    assert.equal(loop.resumes, 1);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(sent.length, 2, 'one beat per freeze');
  } finally {
    loop.stop();
  }
});

test('metrics: mmcli parsing, battery absent -> null', async () => {
  const m = parseMmcli(
    'modem.3gpp.operator-name : LabTel\nmodem.generic.access-technologies.value[1] : lte\nmodem.generic.signal-quality.value : 75\n',
  );
  assert.deepEqual(m, { carrier: 'LabTel', network_type: 'lte', signal: 3 });
  assert.deepEqual(parseMmcli(''), { carrier: null, network_type: null, signal: null });
  assert.deepEqual(await readBattery('/nonexistent'), { battery: null, charging: null, temperature: null });
  // A battery in sysfs: capacity, status and temp (tenths of °C); a temp out of range is null.
  const root = await mkdtemp(join(tmpdir(), 'pp-psu-'));
  try {
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(join(root, 'BAT0'));
    await writeFile(join(root, 'BAT0', 'type'), 'Battery\n');
    await writeFile(join(root, 'BAT0', 'capacity'), '81\n');
    await writeFile(join(root, 'BAT0', 'status'), 'Discharging\n');
    await writeFile(join(root, 'BAT0', 'temp'), '365\n');
    assert.deepEqual(await readBattery(root), { battery: 81, charging: false, temperature: 36.5 });
    await writeFile(join(root, 'BAT0', 'temp'), '99999\n');
    assert.equal((await readBattery(root)).temperature, null);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('probe packet and destination policy', () => {
  assert.equal(firstHost('192.168.255.0/24'), '192.168.255.1');
  assert.equal(firstHost('10.20.16.0/20'), '10.20.16.1');
  const p = icmpEcho('192.168.255.7', '192.168.255.1', 1, 2);
  assert.equal(checksum(p.subarray(0, 20)), 0);
  assert.equal(checksum(p.subarray(20)), 0);
  const pol = currentPolicy({
    tunnelSubnet: '192.168.255.0/24',
    allowPrivate: false,
    interfaces: () => ({
      wwan0: [
        {
          address: '100.64.1.2',
          family: 'IPv4',
          netmask: '255.255.255.0',
          internal: false,
          mac: '',
          cidr: '100.64.1.2/24',
        },
      ],
    }),
  });
  for (const ok of ['203.0.113.10', '198.51.100.1', '192.0.2.1', '8.8.8.8'])
    assert.equal(isForbiddenAddress(ok, pol), false, ok);
  for (const bad of ['192.168.255.1', '10.0.0.1', '127.0.0.1', '100.64.1.2', '169.254.169.254'])
    assert.equal(isForbiddenAddress(bad, pol), true, bad);
  const priv = currentPolicy({ tunnelSubnet: '192.168.255.0/24', allowPrivate: true, interfaces: () => ({}) });
  assert.equal(isForbiddenAddress('10.0.0.1', priv), false);
  assert.equal(isForbiddenAddress('192.168.255.9', priv), true);
});

test('egress: one DNS cache across interface snapshots, --dns-cache-ms 0 disables it', async () => {
  let t = 0;
  let lookups = 0;
  const resolve = async () => {
    lookups++;
    return [{ address: '203.0.113.10', family: 4 as const }];
  };
  const egress = createEgress({
    tunnelSubnet: '192.168.255.0/24',
    allowPrivate: false,
    interfaces: () => ({}),
    resolve,
    now: () => t,
  });
  for (let i = 0; i < 6; i++) {
    assert.equal((await egress.resolveUdp('echo.test')).address, '203.0.113.10');
    t += 1_200; // a new interface snapshot (and policy dialer) each time
  }
  assert.equal(lookups, 2, 'answer reused for 5 s across snapshots (t = 0, then t = 6000)');
  const off = createEgress({
    tunnelSubnet: '192.168.255.0/24',
    allowPrivate: false,
    interfaces: () => ({}),
    resolve,
    dnsCacheMs: 0,
  });
  lookups = 0;
  await off.resolveUdp('echo.test');
  await off.resolveUdp('echo.test');
  assert.equal(lookups, 2);
});

test('farm: the enrollment token from POCKETPROXY_ENROLL_TOKEN (kept out of the process list); --enroll wins', () => {
  const saved = process.env.POCKETPROXY_ENROLL_TOKEN;
  try {
    process.env.POCKETPROXY_ENROLL_TOKEN = 'fromenvironment0123456';
    const p = parseCli(['farm', '--server', 'https://proxy.example.com']);
    assert.ok(p.command === 'farm');
    assert.equal(p.farm.enrollToken, 'fromenvironment0123456');
    const q = parseCli(['farm', '--server', 'https://proxy.example.com', '--enroll', 'fromthecommandline0123']);
    assert.ok(q.command === 'farm');
    assert.equal(q.farm.enrollToken, 'fromthecommandline0123');
    // Checked like the flag, and named as where it came from.
    process.env.POCKETPROXY_ENROLL_TOKEN = 'bad token';
    assert.throws(
      () => parseCli(['farm', '--server', 'https://proxy.example.com']),
      /POCKETPROXY_ENROLL_TOKEN must be/,
    );
    process.env.POCKETPROXY_ENROLL_TOKEN = 'fromenvironment0123456';
    assert.throws(() => parseCli(['farm']), /POCKETPROXY_ENROLL_TOKEN needs --server/);
  } finally {
    if (saved === undefined) delete process.env.POCKETPROXY_ENROLL_TOKEN;
    else process.env.POCKETPROXY_ENROLL_TOKEN = saved;
  }
});
