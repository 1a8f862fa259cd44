// Data-plane isolation, tried as a hostile customer and a hostile device would, against the built
// `pocketproxy up` and two `pocketproxy-agent run` in the lab (docs/security.md names this file
// for each line of the threat model it proves):
//
//   cust 192.0.2.1 / .2 --> relay 198.51.100.1:PORT --DNAT, port kept, no SNAT--> pp0 --> dev1 listener vpn_ip:PORT
//   dev2: tunnel over its Wi-Fi (default route), customer traffic out of wwan0 (the egress interface)
//
// One system for the whole file (starting it costs ~20 s on the 2-core VM); every check is bounded.
// Needs root (namespaces, TUN, nftables); skips loudly otherwise.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  createLab,
  waitUntil,
  startRelay,
  startAgent,
  agentLanes,
  waitDeviceOnline,
  createConnection,
  CLIENTS,
  canRunLab,
  type Lab,
  type LabRelay,
  type LabAgent,
  type Connection,
  type LabProcess,
} from '@pocketproxy/testkit';

const ROOT = canRunLab();
if (!ROOT) console.error('isolation.lab.test: SKIPPED — needs root (network namespaces, TUN, nftables)');

const CUST2 = '192.0.2.2';
/** The relay runs its SOCKS5 front (the default; isolation-socks5-dnat.lab.test.ts runs this file without it). */
const FRONT = !['0', 'false', 'no'].includes(process.env.POCKETPROXY_SOCKS5_FRONT ?? '');
/** HTTP ports through the front too (isolation-http-front.lab.test.ts runs this file with it). */
const HTTP_FRONT = FRONT && ['1', 'true', 'yes'].includes(process.env.POCKETPROXY_HTTP_FRONT ?? '');
const MB = 1_000_000;

/** A UDP sink in the lab's internet: prints one line per datagram ("got <payload> from <ip>:<port>") and echoes it. */
const UDP_SINK = `
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m, r) => { console.log('got ' + m.toString() + ' from ' + r.address + ':' + r.port); s.send(m, r.port, r.address); });
s.bind(9999, '203.0.113.10', () => console.log('sink ready'));
setTimeout(() => process.exit(0), 600000).unref();
`;

describe('data-plane isolation: hostile customers and devices (relay + 2 agents in the lab)', {
  skip: ROOT ? false : 'needs root',
  timeout: 600_000,
}, () => {
  let lab: Lab;
  let relay: LabRelay;
  const agents: LabAgent[] = [];
  let sink: LabProcess;
  const c: Record<string, Connection> = {};

  const curl = (args: string[], timeoutS = 5) =>
    lab.exec('cust', 'curl', ['-sS', '--max-time', String(timeoutS), ...args], { timeoutMs: (timeoutS + 5) * 1000 });
  /** HTTP status of a GET through an HTTP proxy (000 = no answer), with the reason header when there is one. */
  const status = async (proxy: string, opts: { from?: string; url?: string } = {}) => {
    const r = await curl(
      [
        ...(opts.from ? ['--interface', opts.from] : []),
        '-o',
        '/dev/null',
        '-D',
        '-',
        '-w',
        '%{http_code}',
        '-x',
        proxy,
        opts.url ?? 'http://echo.test/ip',
      ],
      4,
    );
    const reason = /x-pocketproxy-reason: *([^\r\n]+)/i.exec(r.stdout)?.[1];
    const code = r.stdout.trim().slice(-3);
    return reason ? `${code} ${reason}` : code;
  };
  const via = (
    conn: Connection,
    user = conn.username,
    pass = conn.password,
    scheme = conn.protocol === 'socks5' ? 'socks5h' : 'http',
  ) => `${scheme}://${encodeURIComponent(user)}:${encodeURIComponent(pass)}@${lab.relay.ip}:${conn.port}`;
  const exitIp = async (proxy: string, from?: string) => {
    const r = await curl([...(from ? ['--interface', from] : []), '-x', proxy, 'http://echo.test/ip'], 5);
    return r.code === 0 ? r.stdout.trim() : `curl exit ${r.code}`;
  };
  const node = (script: string, args: string[], timeoutMs = 30_000) =>
    lab.exec('cust', process.execPath, ['--import', lab.tsxLoader, '--conditions=source', script, ...args], {
      timeoutMs,
    });
  const hostile = async (args: string[], timeoutMs = 60_000) => {
    const r = await node(CLIENTS.hostile, args, timeoutMs);
    const line = r.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line);
    } catch {
      throw new Error(`hostile ${args[0]}: ${r.stdout} ${r.stderr}`);
    }
  };
  const socksAuth = async (conn: Connection, user: string, pass: string) =>
    JSON.parse((await node(CLIENTS.proxyProbe, ['socks5-auth', lab.relay.ip, String(conn.port), user, pass])).stdout)
      .hex as string;
  const carrier = (n: number) => lab.carrierAddress(n);
  /** The relay's SOCKS5 front's counters (the tunnel's GET /status), null without the front. */
  const frontStats = async () => {
    const s = await relay.tunnelStatus();
    assert.ok(s, "the tunnel's status answers");
    return s.socks5_front as {
      credentials_answered: number;
      credentials_deferred: number;
      steps_without_js: number;
    } | null;
  };

  before(async () => {
    lab = await createLab({ devices: 2, wifi: [2] });
    await lab.exec('cust', 'ip', ['addr', 'add', `${CUST2}/24`, 'dev', lab.cust.iface], { check: true });
    relay = await startRelay(lab, { env: { POCKETPROXY_HEARTBEAT_INTERVAL_S: '5', POCKETPROXY_STALE_AFTER_S: '20' } });
    agents.push(await startAgent(lab, relay, 1));
    agents.push(await startAgent(lab, relay, 2));
    for (const a of agents) await waitDeviceOnline(relay, a.deviceId, 30_000);
    // With lanes (the default on more than one core; isolation-one-lane.lab.test.ts runs one): every lane of
    // both devices carries before the claims.
    const lanes = agentLanes();
    if (lanes > 1)
      await waitUntil(async () => (await relay.tunnelStatus())?.lanes_up === agents.length * (lanes - 1), {
        timeoutMs: 15_000,
        intervalMs: 300,
        what: `${lanes} lanes per device`,
      });
    const d1 = agents[0]!.deviceId;
    const make = async (
      name: string,
      protocol: 'http' | 'socks5',
      extra: Record<string, unknown> = {},
      device = d1,
    ) => {
      c[name] = await createConnection(relay, device, protocol, extra);
    };
    await make('A', 'http', { allow_from: ['198.51.100.0/24'] }); // the customer's addresses are not in it
    await make('B', 'http');
    await make('C', 'socks5');
    await make('C2', 'socks5');
    await make('S', 'socks5', { allow_from: ['198.51.100.0/24'] }); // the customer's addresses are not in it
    await make('R', 'http', { rate_limit_down_kbps: 8000, rate_limit_up_kbps: 4000 });
    await make('L', 'http', { bandwidth_limit_bytes: 5 * MB });
    await make('M', 'http', { max_connections: 2 });
    await make('M2', 'socks5', { max_connections: 1 });
    // Paced by the device (2 MB/s), so a download runs long without filling the customer's own socket
    // buffer: what ends it is the revocation, not a buffer running dry (a reader slower than the
    // sender holds megabytes in its kernel, which no proxy can take back).
    for (const v of ['V1', 'V2', 'V3']) await make(v, 'http', { rate_limit_down_kbps: 16_000 });
    await make('W', 'http', {}, agents[1]!.deviceId);
    sink = lab.spawn('inet', process.execPath, ['-e', UDP_SINK]);
    await sink.waitForLine(/sink ready/, 10_000);
    // Pushed by the API: every new port answers through its device without waiting for a poll.
    await waitUntil(async () => (await status(via(c.B!))) === '200' && (await status(via(c.W!))) === '200', {
      timeoutMs: 15_000,
      intervalMs: 300,
      what: 'new connections answer',
    });
  });

  after(async () => {
    if (process.env.PP_ISOLATION_DEBUG)
      for (const p of [relay?.proc, ...agents.map((a) => a.proc)]) console.error(p?.lines.slice(-300).join('\n'));
    await lab?.teardown(4_000);
  });

  it('credentials work only on their own connection port and protocol; the allow-list cannot be escaped; no port without a connection', async () => {
    const A = c.A!,
      B = c.B!,
      C = c.C!,
      C2 = c.C2!;
    assert.equal(await status(via(B)), '200');
    // A is refused on its own port by its allow-list (the relay drops the customer's packets)...
    assert.equal(await status(via(A)), '000');
    // ...and its credentials open nothing anywhere else: B's port, a SOCKS5 port.
    assert.equal(await status(via(B, A.username, A.password)), '407');
    assert.equal(await status(via(B, C.username, C.password)), '407', 'SOCKS5 credentials on an HTTP port');
    // Which ports the relay's front takes: SOCKS5 ones, and HTTP ones with POCKETPROXY_HTTP_FRONT.
    const set = FRONT
      ? (await lab.exec('relay', 'nft', ['list', 'set', 'ip', 'pocketproxy', 'socks5_front'])).stdout
      : '';
    assert.equal(new RegExp(`\\b${C.port}\\b`).test(set), FRONT, set);
    assert.equal(new RegExp(`\\b${B.port}\\b`).test(set), HTTP_FRONT, set);
    const before = await frontStats();
    assert.match(
      await socksAuth(C2, C.username, C.password),
      /^0502(01..)$/,
      "one SOCKS5 connection's credentials on another",
    );
    assert.match(await socksAuth(C, B.username, B.password), /^0502(01..)$/, 'HTTP credentials on a SOCKS5 port');
    assert.match(await socksAuth(C, A.username, A.password), /^0502(01..)$/);
    assert.equal(await socksAuth(C, C.username, C.password), '05020100');
    assert.equal(await socksAuth(C, C.username, C.password), '05020100', 'again: answered in the listener');
    // With the front, the relay answered the right credentials itself and left the wrong ones to the device;
    // every greeting, and the credentials it had checked before, without a call into JS.
    const after = await frontStats();
    if (!FRONT) assert.equal(after, null);
    else {
      assert.equal(after!.credentials_answered - before!.credentials_answered, 2);
      assert.equal(after!.credentials_deferred - before!.credentials_deferred, 3);
      assert.ok(after!.steps_without_js - before!.steps_without_js >= 5 + 1, JSON.stringify({ before, after }));
    }
    // A port no connection owns is closed (no device-level ports any more).
    const unused = Math.max(...Object.values(c).map((x) => x.port)) + 50;
    const r = await curl(
      ['-o', '/dev/null', '-x', `http://${B.username}:${B.password}@${lab.relay.ip}:${unused}`, 'http://echo.test/ip'],
      3,
    );
    assert.equal(r.code, 7, `port ${unused}: ${r.stderr}`);
    // The relay's SOCKS5 front (POCKETPROXY_SOCKS5_FRONT) is reached only through a SOCKS5 port's redirect:
    // dialled directly it is dropped (no answer), without the front nothing listens there.
    const direct = await curl(
      ['-o', '/dev/null', '-x', `socks5h://${C.username}:${C.password}@${lab.relay.ip}:12346`, 'http://echo.test/ip'],
      2,
    );
    assert.equal(direct.code, FRONT ? 28 : 7, `the SOCKS5 front's port dialled directly: ${direct.stderr}`);
    // A SOCKS5 port's allow-list holds as an HTTP port's does (the relay drops the customer first).
    assert.match(await exitIp(via(c.S!)), /^curl exit/);
  });

  /** A TCP listener on device 1's carrier gateway (100.64/10, which the device's policy refuses) for `fn`: it prints whatever reaches it. */
  const withTrap = async (fn: (trap: LabProcess) => Promise<void>) => {
    const dev = lab.device(1);
    const trap = lab.spawn(dev.cgnNs, process.execPath, [
      '-e',
      `require('net').createServer((s) => { console.log('connected'); s.on('data', (d) => console.log('got ' + d)); s.on('error', () => {}); }).listen(8099, '${dev.gateway}', () => console.log('trap ready'));`,
    ]);
    try {
      await trap.waitForLine(/trap ready/, 10_000);
      await fn(trap);
    } finally {
      await trap.stop(2_000);
    }
  };

  it("SOCKS5's early reply: an uncapped connection's CONNECT is answered before the device's; a destination the device refuses resets the customer, and what it sent behind the request reaches nothing; a capped connection keeps the device's reply code", async () => {
    const dev = lab.device(1);
    await withTrap(async (trap) => {
      const probe = async (conn: Connection, ip: string, port: number, payload: string) =>
        JSON.parse(
          (
            await node(CLIENTS.proxyProbe, [
              'socks5-connect',
              lab.relay.ip,
              String(conn.port),
              conn.username,
              conn.password,
              ip,
              String(port),
              payload,
            ])
          ).stdout,
        ) as { hex: string; text: string; error?: string; closed?: boolean; replyMs?: number };
      const C = c.C!;
      const early0 = (await relay.tunnelStatus())?.socks5_front as {
        early_replies: number;
        early_failed: number;
      } | null;
      // Allowed: the success (BND 0.0.0.0:0 when the relay answered it), then the target's answer.
      const ok = await probe(C, lab.inet.dnsRecords['echo.test']!, 80, 'GET /ip HTTP/1.0\r\nHost: echo.test\r\n\r\n');
      assert.equal(ok.hex.slice(0, 8), '05020100', JSON.stringify(ok));
      assert.equal(ok.hex.slice(8, 12), '0500', JSON.stringify(ok));
      if (FRONT) assert.equal(ok.hex.slice(8, 28), '05000001000000000000', 'answered by the relay');
      assert.match(ok.text, /200 OK/);
      assert.ok(ok.text.includes(await carrier(1)), ok.text);
      // Refused by the device's policy: early, a success then a reset; through the DNAT, the device's reply 02.
      const refused = await probe(C, dev.gateway, 8099, 'SECRET-BEHIND-THE-REQUEST');
      if (FRONT) {
        // The early success and nothing after it; the connection ends at once with a reset (the probe reads a
        // byte at a time so that a reset behind unread bytes is not taken for a close: proxy-probe.ts).
        assert.equal(refused.hex, '0502010005000001000000000000', JSON.stringify(refused));
        assert.match(refused.error ?? '', /ECONNRESET/, JSON.stringify(refused));
        const early1 = (await relay.tunnelStatus())?.socks5_front as { early_replies: number; early_failed: number };
        assert.equal(early1.early_replies - early0!.early_replies, 2);
        assert.equal(early1.early_failed - early0!.early_failed, 1);
      } else assert.equal(refused.hex.slice(8, 12), '0502', JSON.stringify(refused));
      // The capped connection (max_connections): the device's own reply, BND.ADDR its egress address.
      const capped = await probe(c.M2!, lab.inet.dnsRecords['echo.test']!, 80, 'GET /ip HTTP/1.0\r\n\r\n');
      assert.equal(capped.hex.slice(8, 16), '05000001', JSON.stringify(capped));
      assert.notEqual(capped.hex.slice(16, 24), '00000000', "BND.ADDR is the device socket's");
      const cappedRefused = await probe(c.M2!, dev.gateway, 8099, 'SECRET-BEHIND-THE-REQUEST');
      assert.equal(cappedRefused.hex.slice(8, 12), '0502', JSON.stringify(cappedRefused));
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(
        trap.lines.filter((l) => l !== 'trap ready'),
        [],
        'nothing reached the refused destination',
      );
      // The trap itself works: the device's namespace reaches it directly (so the silence above is the policy's).
      await lab.exec(dev.ns, 'bash', ['-c', `exec 3<>/dev/tcp/${dev.gateway}/8099; echo direct >&3; sleep 0.2`], {
        check: true,
      });
      await trap.waitForLine(/got direct/, 5_000);
    });
  });

  it("HTTP CONNECT's early reply (HTTP ports through the front): an uncapped connection's CONNECT with its credentials is answered before the device's; a destination the device refuses resets the customer, and what it sent behind the 200 reaches nothing; without credentials, or capped, the device's own answer", async () => {
    const dev = lab.device(1);
    await withTrap(async (trap) => {
      const probe = async (conn: Connection, target: string, payload: string, user = conn.username) =>
        JSON.parse(
          (
            await node(CLIENTS.proxyProbe, [
              'http-connect',
              lab.relay.ip,
              String(conn.port),
              user,
              conn.password,
              target,
              payload,
            ])
          ).stdout,
        ) as { hex: string; text: string; error?: string; closed?: boolean; replyMs?: number };
      const B = c.B!;
      type Early = { early_replies: number; early_failed: number };
      const early0 = (await relay.tunnelStatus())?.socks5_front as Early | null;
      const ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n';
      // Allowed: the 200 (the relay's or the device's, the same bytes), then the target's answer from the carrier.
      const ok = await probe(
        B,
        `${lab.inet.dnsRecords['echo.test']!}:80`,
        'GET /ip HTTP/1.0\r\nHost: echo.test\r\n\r\n',
      );
      assert.ok(ok.text.startsWith(ESTABLISHED), JSON.stringify(ok));
      assert.match(ok.text.slice(ESTABLISHED.length), /^HTTP\/1\.[01] 200 OK/, JSON.stringify(ok));
      assert.ok(ok.text.includes(await carrier(1)), ok.text);
      // Refused by the device's policy: early, a 200 then a reset; through the DNAT, the device's 403.
      const refused = await probe(B, `${dev.gateway}:8099`, 'SECRET-BEHIND-THE-CONNECT');
      if (HTTP_FRONT) {
        assert.equal(refused.text, ESTABLISHED, JSON.stringify(refused));
        assert.match(refused.error ?? '', /ECONNRESET/, JSON.stringify(refused));
        const early1 = (await relay.tunnelStatus())?.socks5_front as Early;
        assert.equal(early1.early_replies - early0!.early_replies, 2);
        assert.equal(early1.early_failed - early0!.early_failed, 1);
      } else assert.match(refused.text, /^HTTP\/1\.1 403 /, JSON.stringify(refused));
      // No credentials, or a wrong password: the device's 407 challenge, with or without the front.
      const anonymous = await probe(B, `${lab.inet.dnsRecords['echo.test']!}:80`, 'x', '-');
      assert.match(anonymous.text, /^HTTP\/1\.1 407 /, JSON.stringify(anonymous));
      const wrong = await probe({ ...B, password: `${B.password}x` }, `${lab.inet.dnsRecords['echo.test']!}:80`, 'x');
      assert.match(wrong.text, /^HTTP\/1\.1 407 /, JSON.stringify(wrong));
      // The capped connection (max_connections): the device answers, its 403 included.
      const cappedRefused = await probe(c.M!, `${dev.gateway}:8099`, 'SECRET-BEHIND-THE-CONNECT');
      assert.match(cappedRefused.text, /^HTTP\/1\.1 403 /, JSON.stringify(cappedRefused));
      if (HTTP_FRONT) {
        const early2 = (await relay.tunnelStatus())?.socks5_front as Early;
        assert.equal(early2.early_replies - early0!.early_replies, 2, 'none for the anonymous, wrong or capped ones');
      }
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(
        trap.lines.filter((l) => l !== 'trap ready'),
        [],
        'nothing reached the refused destination',
      );
    });
  });

  it('UDP ASSOCIATE serves only its client: sprays without credentials, from another address or another port, are never relayed', async () => {
    const C = c.C!;
    const assoc = lab.spawnNode('cust', CLIENTS.hostile, [
      'assoc',
      lab.relay.ip,
      String(C.port),
      C.username,
      C.password,
      lab.inet.servicesIp,
      '9999',
      '8000',
    ]);
    const ready = JSON.parse((await assoc.waitForLine(/"ready"/, 15_000)).trim());
    assert.equal(ready.reply, 'legit', JSON.stringify(ready));
    await sink.waitForLine(/got legit from 198\.18\.1\./, 5_000);
    // During the association: another address, and the client's own address from another port.
    const other = await hostile(['udp-spray', lab.relay.ip, String(C.port), lab.inet.servicesIp, '9999', '300', CUST2]);
    const same = await hostile([
      'udp-spray',
      lab.relay.ip,
      String(C.port),
      lab.inet.servicesIp,
      '9999',
      '300',
      lab.cust.ip,
    ]);
    assert.deepEqual([other.answers, same.answers], [0, 0]);
    assert.equal(sink.lines.filter((l) => l.includes('spray')).length, 0, 'no sprayed datagram reached the internet');
    assert.equal((await assoc.exited).code, 0);
    // After it: nothing either.
    await hostile(['udp-spray', lab.relay.ip, String(C.port), lab.inet.servicesIp, '9999', '100', lab.cust.ip]);
    assert.equal(sink.lines.filter((l) => l.includes('spray')).length, 0);
    console.error(
      `isolation.lab: UDP sprays (300 + 300 + 100 datagrams) relayed: 0; the association's own datagram: ${ready.reply}`,
    );
  });

  it('1,000 request heads that never finish: refused or closed by the deadline, while a customer from another address is served', async () => {
    const B = c.B!;
    const slow = hostile(['slow-heads', lab.relay.ip, String(B.port), '1000', '4000', '20000', lab.cust.ip], 60_000);
    await new Promise((r) => setTimeout(r, 2_000));
    const t0 = Date.now();
    assert.equal(await status(via(B), { from: CUST2 }), '200', 'a legitimate request during the attack');
    const legitMs = Date.now() - t0;
    const res = await slow;
    console.error(`isolation.lab: slow heads ${JSON.stringify(res)}; legitimate request meanwhile ${legitMs} ms`);
    assert.equal(res.opened, 1000, JSON.stringify(res));
    assert.equal(res.stillOpen, 0, JSON.stringify(res));
    assert.ok(res.closedWithin1s >= 900, `most refused at once by the per-address cap: ${JSON.stringify(res)}`);
    assert.ok(res.lastCloseMs <= 14_000, `the rest closed by the 10 s head deadline: ${JSON.stringify(res)}`);
    // The agent counted both, and says so in its heartbeat.
    await waitUntil(
      async () => {
        const d = await relay.api.ok('GET', `/api/devices/${agents[0]!.deviceId}`);
        return (
          (d.proxy_stats?.unauth_refused_per_address ?? 0) >= 900 && (d.proxy_stats?.handshake_timeouts ?? 0) >= 50
        );
      },
      { timeoutMs: 15_000, intervalMs: 1_000, what: 'device proxy_stats count the refusals and the timeouts' },
    );
  });

  it('1,000 SOCKS5 greetings that never finish: refused at once past 64 per address or closed by the 10 s deadline, while a SOCKS5 customer from another address is served', async () => {
    const C = c.C!;
    // 05 ff: a greeting announcing 255 methods, then one method byte every 4 s. With the relay's SOCKS5
    // front it is the front that caps and closes them (its maxWaitingPerAddress and handshake deadline),
    // through the DNAT the device.
    const slow = hostile(
      ['slow-heads', lab.relay.ip, String(C.port), '1000', '4000', '20000', lab.cust.ip, '05ff'],
      60_000,
    );
    await new Promise((r) => setTimeout(r, 2_000));
    const legit = await exitIp(via(C), CUST2);
    const res = await slow; // before any assertion: the attack must be over before the next test
    assert.equal(legit, await carrier(1), 'a legitimate SOCKS5 customer during the attack');
    console.error(`isolation.lab: slow SOCKS5 greetings ${JSON.stringify(res)} (front ${FRONT})`);
    assert.equal(res.opened, 1000, JSON.stringify(res));
    assert.equal(res.stillOpen, 0, JSON.stringify(res));
    assert.ok(res.closedWithin1s >= 900, `most refused at once by the per-address cap: ${JSON.stringify(res)}`);
    assert.ok(res.lastCloseMs <= 14_000, `the rest closed by the 10 s handshake deadline: ${JSON.stringify(res)}`);
  });

  it('max_connections + 1 is refused: HTTP 503, SOCKS5 reply 0x05', async () => {
    const M = c.M!,
      M2 = c.M2!;
    const http = await hostile([
      'hold-connect',
      lab.relay.ip,
      String(M.port),
      'http',
      M.username,
      M.password,
      lab.inet.servicesIp,
      '80',
      '3',
      '200',
    ]);
    assert.deepEqual(http.answers, ['200', '200', '503']);
    const socks = await hostile([
      'hold-connect',
      lab.relay.ip,
      String(M2.port),
      'socks5',
      M2.username,
      M2.password,
      lab.inet.servicesIp,
      '80',
      '2',
      '200',
    ]);
    assert.deepEqual(socks.answers, ['0', '5']);
    // Once they are closed the connection serves again.
    await waitUntil(async () => (await status(via(M))) === '200', {
      timeoutMs: 5_000,
      intervalMs: 200,
      what: 'M serves again',
    });
  });

  it('speed limits hold within ±10 % in each direction', async () => {
    const R = c.R!;
    const down = await curl(
      ['-o', '/dev/null', '-w', '%{speed_download} %{size_download}', '-x', via(R), 'http://echo.test/bytes?n=4000000'],
      20,
    );
    assert.equal(down.code, 0, down.stderr);
    const [downBps, downSize] = down.stdout.trim().split(' ').map(Number) as [number, number];
    assert.equal(downSize, 4_000_000);
    const up = await lab.exec(
      'cust',
      'sh',
      [
        '-c',
        `head -c 2000000 /dev/zero | curl -sS --max-time 20 -o /dev/null -w '%{speed_upload}' -x '${via(R)}' --data-binary @- http://echo.test/upload`,
      ],
      { timeoutMs: 30_000 },
    );
    assert.equal(up.code, 0, up.stderr);
    const upBps = Number(up.stdout.trim());
    const kbps = (bps: number) => Math.round((bps * 8) / 1000);
    console.error(
      `isolation.lab: rate limits down ${kbps(downBps)} kbps (limit 8000), up ${kbps(upBps)} kbps (limit 4000)`,
    );
    assert.ok(Math.abs(kbps(downBps) - 8000) <= 800, `download ${kbps(downBps)} kbps`);
    assert.ok(Math.abs(kbps(upBps) - 4000) <= 400, `upload ${kbps(upBps)} kbps`);
  });

  it('a bandwidth limit is overshot by less than 1 MB at full speed; then the customer gets 403 with the reason at once', async () => {
    const L = c.L!;
    const r = await curl(
      ['-o', '/dev/null', '-w', '%{size_download}', '-x', via(L), 'http://echo.test/bytes?n=20000000'],
      20,
    );
    const got = Number(r.stdout.trim());
    console.error(
      `isolation.lab: 5 MB limit, 20 MB download at full speed: ${got} bytes delivered (curl exit ${r.code})`,
    );
    assert.notEqual(r.code, 0, 'the download was cut');
    assert.ok(got <= 5 * MB + 1 * MB, `delivered ${got}`);
    const t0 = Date.now();
    assert.equal(await status(via(L)), '403 bandwidth');
    assert.ok(Date.now() - t0 < 3_000, 'refused at once, not after a timeout');
    let conn: any;
    await waitUntil(
      async () => {
        conn = await relay.api.ok('GET', `/api/connections/${L.id}`);
        return conn.blocked_reason === 'bandwidth';
      },
      { timeoutMs: 15_000, intervalMs: 500, what: 'the API blocked L' },
    );
    console.error(`isolation.lab: L bytes_used_month ${conn.bytes_used_month} (limit ${5 * MB})`);
    assert.ok(conn.bytes_used_month <= 5 * MB + 1 * MB, `recorded ${conn.bytes_used_month}`);
    // SOCKS5 customers of a blocked connection get reply 0x02 (not allowed by ruleset).
    const s = await createConnection(relay, agents[0]!.deviceId, 'socks5', { bandwidth_limit_bytes: 0 });
    await waitUntil(
      async () =>
        (
          await hostile([
            'hold-connect',
            lab.relay.ip,
            String(s.port),
            'socks5',
            s.username,
            s.password,
            lab.inet.servicesIp,
            '80',
            '1',
            '0',
          ])
        ).answers[0] === '2',
      { timeoutMs: 10_000, intervalMs: 500, what: 'SOCKS5 reply 0x02 for a connection over its limit' },
    );
  });

  it('delete, disable and password change end a running download within 1 s; an expired connection is refused with its reason', async () => {
    const ended: Record<string, number> = {};
    const change: Record<string, () => Promise<unknown>> = {
      V1: () => relay.api.ok('DELETE', `/api/connections/${c.V1!.id}`),
      V2: () => relay.api.ok('PATCH', `/api/connections/${c.V2!.id}`, { enabled: false }),
      V3: () => relay.api.ok('PATCH', `/api/connections/${c.V3!.id}`, { password: 'a-brand-new-password-123' }),
    };
    for (const [name, act] of Object.entries(change)) {
      const dl = lab.spawn('cust', 'curl', [
        '-sS',
        '--max-time',
        '60',
        '-o',
        '/dev/null',
        '-x',
        via(c[name]!),
        'http://echo.test/bytes?n=100000000',
      ]);
      await new Promise((r) => setTimeout(r, 1_500));
      assert.equal(dl.exitStatus, null, `${name}: download running`);
      await act();
      const t0 = Date.now();
      const st = await dl.exited;
      ended[name] = Date.now() - t0;
      assert.notEqual(st.code, 0, `${name}: curl ended with an error`);
    }
    console.error(
      `isolation.lab: download ended after delete ${ended.V1} ms, disable ${ended.V2} ms, password change ${ended.V3} ms`,
    );
    for (const [name, ms] of Object.entries(ended)) assert.ok(ms <= 1_000, `${name}: ${ms} ms`);
    assert.equal(await status(via(c.V2!)), '403 disabled');
    assert.equal(await status(via(c.V3!)), '407', 'old password');
    assert.equal(await status(via(c.V3!, c.V3!.username, 'a-brand-new-password-123')), '200', 'new password');
    // The deletion reaches the relay's DNAT and the device's listener on their own: for a moment a new
    // connection may still be let through to a device whose listener just closed (a reset after connecting,
    // curl 56). It never answers, and it refuses (curl 7) within a few seconds.
    const seen: (number | null)[] = [];
    const until = Date.now() + 3_000;
    for (;;) {
      const gone = await curl(['-o', '/dev/null', '-x', via(c.V1!), 'http://echo.test/ip'], 3);
      seen.push(gone.code);
      if (gone.code === 7) break;
      assert.notEqual(gone.code, 0, `deleted: its port answered (curl exit codes ${seen.join(', ')})`);
      assert.ok(Date.now() < until, `deleted: the port is closed within 3 s (curl exit codes ${seen.join(', ')})`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const e = await createConnection(relay, agents[0]!.deviceId, 'http', {
      expires_at: new Date(Date.now() + 4_000).toISOString(),
    });
    await waitUntil(async () => (await status(via(e))) === '200', {
      timeoutMs: 5_000,
      intervalMs: 200,
      what: 'E works before it expires',
    });
    await waitUntil(async () => (await status(via(e))) === '403 expired', {
      timeoutMs: 8_000,
      intervalMs: 300,
      what: 'E refused with "expired"',
    });
    // SOCKS5, whose credentials the relay's front checks too, from its own copy: the new password opens,
    // the old one is refused, on the relay's copy and the device's alike. (Last: a new connection may
    // take the port of the one deleted above.)
    const P = await createConnection(relay, agents[0]!.deviceId, 'socks5');
    await waitUntil(async () => (await socksAuth(P, P.username, P.password)) === '05020100', {
      timeoutMs: 5_000,
      intervalMs: 200,
      what: 'the new SOCKS5 connection answers',
    });
    await relay.api.ok('PATCH', `/api/connections/${P.id}`, { password: 'another-new-password-456' });
    await waitUntil(async () => (await socksAuth(P, P.username, 'another-new-password-456')) === '05020100', {
      timeoutMs: 5_000,
      intervalMs: 200,
      what: 'the new SOCKS5 password opens',
    });
    assert.equal(await socksAuth(P, P.username, P.password), '05020101', 'the old SOCKS5 password');
    assert.equal(await exitIp(via(P, P.username, 'another-new-password-456')), await carrier(1));
  });

  it('a device reaches nothing of the relay but its tunnel: the API and other ports are refused over the tunnel', async () => {
    const d = await relay.api.ok('GET', `/api/devices/${agents[0]!.deviceId}`);
    const vpnIp: string = d.vpn_ip;
    const gw = vpnIp.replace(/\.\d+$/, '.1');
    for (const url of [
      `http://${gw}:8080/healthz`,
      `http://${lab.relay.ip}:8080/healthz`,
      `http://${gw}:8081/status`,
      `http://${gw}:22/`,
    ]) {
      const r = await lab.exec('dev1', 'curl', ['-sS', '--max-time', '3', '--interface', vpnIp, url], {
        timeoutMs: 10_000,
      });
      assert.notEqual(r.code, 0, `${url} from the tunnel: ${r.stdout}`);
    }
    // The liveness probe still gets its answer.
    const ping = await lab.exec('dev1', 'ping', ['-c', '1', '-W', '2', '-I', vpnIp, gw], { timeoutMs: 10_000 });
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
  });

  it('two uplinks: the tunnel rides the Wi-Fi (default route), customer traffic exits by the egress interface', async () => {
    const wifi = lab.device(2).wifi!;
    assert.equal(await exitIp(via(c.W!)), await carrier(2), 'exit by wwan0, the carrier address');
    // The tunnel's flow to relay:1194 (UDP, or TCP if it fell back) goes through the Wi-Fi router, not the carrier.
    const flows = async (ns: string) => {
      const out = await Promise.all(
        ['udp', 'tcp'].map((p) =>
          lab.exec(ns, 'conntrack', ['-L', '-p', p, '--orig-port-dst', '1194'], { timeoutMs: 10_000 }),
        ),
      );
      return out.map((r) => r.stdout).join('');
    };
    const toRelay = new RegExp(`dst=${lab.relay.ip.replace(/\./g, '\\.')} `);
    const viaWifi = await flows(wifi.ns);
    assert.match(viaWifi, toRelay, `tunnel over the Wi-Fi router:\n${viaWifi}`);
    assert.doesNotMatch(await flows(lab.device(2).cgnNs), toRelay, 'no tunnel flow through the carrier');
    const direct = await lab.exec('dev2', 'curl', ['-sS', '--max-time', '3', 'http://echo.test/ip'], {
      timeoutMs: 10_000,
    });
    assert.equal(direct.stdout.trim(), wifi.publicIp, "the device's own default route is the Wi-Fi");
  });
});
