// The data plane under faults, with the real binaries in the lab: the relay's tunnel process
// killed, a device falling silent, UDP to the relay blocked, and the carrier address changing in
// the middle of a download.
//
//   cust --curl--> relay:PORT --DNAT--> pp0 --tunnel (UDP or TCP 1194)--> carrier NAT --> devN agent --> target
//
// About the download during a carrier change: the carrier NAT flushes conntrack when its public
// address changes, so a device's egress connection through that NAT to an internet target dies
// with the address (as on a real phone). What must survive is the tunnel itself. So the long
// download goes to a target the device reaches WITHOUT the carrier NAT: a web server in the
// carrier namespace on its LAN side (100.64.1.1, the device's gateway; device 1 runs with
// --allow-private-destinations for it). The carrier change then hits only the tunnel's underlay.
//
// Needs root; skips loudly otherwise.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import {
  createLab,
  waitUntil,
  startRelay,
  startAgent,
  agentLanes,
  waitDeviceOnline,
  createConnection,
  canRunLab,
  type Lab,
  type LabRelay,
  type LabAgent,
  type Connection,
} from '@pocketproxy/testkit';

const ROOT = canRunLab();
if (!ROOT) console.error('dataplane-faults.lab.test: SKIPPED — needs root (network namespaces, TUN, nftables)');
// The agents run their default lanes (--lanes auto: two on a two-core machine; dataplane-faults-one-lane.lab.test.ts
// runs one): with more than one, "a device's ports work" means several flows each (each curl a new source
// port, so the relay's flow hash spreads them over the lanes), and a flow on a lane but 0 must come back as
// fast as lane 0's.
const LANES = agentLanes();
const FLOWS = LANES > 1 ? 8 : 1;
const HTTP_ECHO = fileURLToPath(new URL('../../../packages/testkit/src/services/http-echo.ts', import.meta.url));

describe('data plane under faults (relay + 2 agents in the lab)', {
  skip: ROOT ? false : 'needs root',
  timeout: 240_000,
}, () => {
  let lab: Lab;
  let relay: LabRelay;
  const agents: LabAgent[] = [];
  const http: Connection[] = [];
  const socks: Connection[] = [];

  const curl = async (args: string[], timeoutS = 4) =>
    lab.exec('cust', 'curl', ['-sS', '--max-time', String(timeoutS), ...args], { timeoutMs: (timeoutS + 5) * 1000 });
  const proxyGet = async (proxy: string, url = 'http://echo.test/ip', timeoutS = 3) => {
    const r = await curl(['-x', proxy, url], timeoutS);
    return r.code === 0 ? r.stdout.trim() : `curl exit ${r.code}`;
  };
  /** FLOWS requests at once through `proxy` (each its own connection) all answer with `ip`. */
  const flowsWork = async (proxy: string, ip: string) =>
    (await Promise.all(Array.from({ length: FLOWS }, () => proxyGet(proxy)))).every((x) => x === ip);
  const allWork = async () =>
    (await Promise.all(http.map((c, i) => flowsWork(c.proxy_url, lab.device(i + 1).carrierIp)))).every(Boolean);
  const nftPorts = async () => {
    const out = (await lab.exec('relay', 'nft', ['list', 'table', 'ip', 'pocketproxy'])).stdout;
    const ports: number[] = [];
    for (const m of out.matchAll(/map (tcp|udp)_fwd \{[^}]*?elements = \{([^}]*)\}/g))
      for (const e of m[2]!.matchAll(/(\d+) : /g)) ports.push(Number(`${m[1] === 'tcp' ? 1 : 2}${e[1]}`));
    return { out, ports };
  };

  before(async () => {
    lab = await createLab({ devices: 2 });
    relay = await startRelay(lab, { env: { POCKETPROXY_HEARTBEAT_INTERVAL_S: '5', POCKETPROXY_STALE_AFTER_S: '20' } });
    agents.push(await startAgent(lab, relay, 1, { args: ['--allow-private-destinations'] }));
    agents.push(await startAgent(lab, relay, 2));
    for (const a of agents) await waitDeviceOnline(relay, a.deviceId, 30_000);
    for (const a of agents) http.push(await createConnection(relay, a.deviceId, 'http'));
    for (const a of agents) socks.push(await createConnection(relay, a.deviceId, 'socks5'));
    if (LANES > 1)
      await waitUntil(async () => (await relay.tunnelStatus())?.lanes_up === agents.length * (LANES - 1), {
        timeoutMs: 30_000,
        intervalMs: 300,
        what: `every device's ${LANES} lanes up`,
      });
    await waitUntil(allWork, {
      timeoutMs: 30_000,
      intervalMs: 500,
      what: 'every HTTP connection answers through its device',
    });
  });

  after(async () => {
    if (process.env.PP_DATAPLANE_DEBUG) console.error(relay?.proc.output().slice(-20_000));
    await lab?.teardown(4_000);
  });

  it('idle devices keep their sessions: lane 0 hears the answers to its probes (no re-handshake in 12 s)', async () => {
    // With lanes, an ICMP echo's answer hashed by its addresses came back on one fixed lane per device, and a
    // device for which that was not lane 0 re-handshook every few seconds when idle (docs/protocol.md §3.1).
    const mark = agents.map((a) => a.proc.lines.length);
    await new Promise((r) => setTimeout(r, 12_000));
    for (const [i, a] of agents.entries()) {
      const silent = a.proc.lines.slice(mark[i]).filter((l) => /relay silent|re-handshaking/.test(l));
      assert.deepEqual(silent, [], `agent ${i + 1} re-handshook while idle`);
    }
  });
  it('tunnel process SIGKILLed: `up` restarts it, ports work again within 5 s of the restart; a download running through it survives; nft has each port once', async () => {
    const pid = await relay.tunnelPid();
    assert.ok(pid, 'tunnel child of `up` found');
    // A download paced by its device (8 Mbit/s, ~12 s) across the restart: the restarted tunnel keeps
    // every known device's ports (warm start) while the devices reconnect, so the flow resumes.
    const paced = await createConnection(relay, agents[0]!.deviceId, 'http', { rate_limit_down_kbps: 8_000 });
    await waitUntil(
      async () =>
        (await proxyGet(`http://${paced.username}:${paced.password}@${lab.relay.ip}:${paced.port}`)) ===
        lab.device(1).carrierIp,
      { timeoutMs: 10_000, intervalMs: 300, what: 'paced connection answers' },
    );
    const dl = lab.spawn('cust', 'curl', [
      '-sS',
      '--max-time',
      '60',
      '-o',
      '/dev/null',
      '-w',
      '%{size_download}',
      '-x',
      `http://${paced.username}:${paced.password}@${lab.relay.ip}:${paced.port}`,
      'http://echo.test/bytes?n=12000000',
    ]);
    await new Promise((r) => setTimeout(r, 2_000));
    assert.equal(dl.exitStatus, null, 'download running');
    const t0 = Date.now();
    process.kill(pid, 'SIGKILL');
    let fresh: number | undefined;
    await waitUntil(
      async () => {
        fresh = await relay.tunnelPid();
        return fresh !== undefined && fresh !== pid;
      },
      {
        timeoutMs: 10_000,
        intervalMs: 100,
        what: 'a new tunnel process',
      },
    );
    const restarted = Date.now();
    await waitUntil(allWork, {
      timeoutMs: 5_000,
      intervalMs: 200,
      what: 'ports work within 5 s of the tunnel restart',
    }).catch((e) => {
      for (const a of agents)
        console.error(
          a.proc.lines
            .filter((l) => /tunnel|handshak|lane|relay/.test(l))
            .slice(-15)
            .join('\n'),
        );
      throw e;
    });
    const back = Date.now();
    const { out, ports } = await nftPorts();
    // Each connection's port once: HTTP tcp, SOCKS5 tcp and udp (1<port> = tcp, 2<port> = udp).
    const expected = agents.flatMap((_, i) => [
      Number(`1${http[i]!.port}`),
      Number(`1${socks[i]!.port}`),
      Number(`2${socks[i]!.port}`),
    ]);
    for (const p of expected)
      assert.equal(ports.filter((x) => x === p).length, 1, `port ${String(p).slice(1)} exactly once in\n${out}`);
    assert.equal(ports.length, new Set(ports).size, 'no duplicate map elements');
    const st = await dl.exited;
    const size = dl.lines.map((l) => l.trim()).find((l) => /^\d+$/.test(l));
    assert.equal(st.code, 0, `the download across the restart: ${dl.lines.join(' ')}`);
    assert.equal(size, '12000000');
    await relay.api.ok('DELETE', `/api/connections/${paced.id}`);
    console.error(
      `dataplane-faults.lab: tunnel ${pid} killed; new tunnel ${fresh} after ${restarted - t0} ms; ports back ${back - restarted} ms after that (${back - t0} ms after the kill)`,
    );
  });

  it('a device falling silent (SIGSTOP): offline and its ports closed within 30 s; back within 3 s of SIGCONT', async () => {
    const a = agents[1]!;
    const t0 = Date.now();
    a.proc.kill('SIGSTOP');
    try {
      await waitUntil(
        async () => {
          const d = await relay.api.ok('GET', `/api/devices/${a.deviceId}`);
          const { ports } = await nftPorts();
          return (
            d.status === 'offline' &&
            !ports.includes(Number(`1${socks[1]!.port}`)) &&
            !ports.includes(Number(`1${http[1]!.port}`))
          );
        },
        { timeoutMs: 30_000, intervalMs: 500, what: 'device offline and its ports removed' },
      );
      const gone = Date.now() - t0;
      const r = await curl(['-x', http[1]!.proxy_url, 'http://echo.test/ip'], 3);
      assert.notEqual(r.code, 0, 'the silent device port no longer proxies');
      assert.equal(await proxyGet(http[0]!.proxy_url), lab.device(1).carrierIp, 'the other device is unaffected');
      console.error(
        `dataplane-faults.lab: silent device offline with ports closed after ${gone} ms (curl exit ${r.code})`,
      );
    } finally {
      a.proc.kill('SIGCONT');
    }
    // Back within 3 s, not at its next heartbeat (5 s here, 30 s by default) nor after an unanswered probe
    // (5 s): the agent sees it was frozen, beats at once (ops/heartbeat.ts) and handshakes again when it sent
    // nothing for 20 s (the relay dropped its session at 25 s; protocol §6).
    const t1 = Date.now();
    await waitUntil(allWork, { timeoutMs: 3_000, intervalMs: 250, what: 'device back within 3 s of SIGCONT' });
    console.error(`dataplane-faults.lab: device serving again ${Date.now() - t1} ms after SIGCONT`);
  });

  it('carrier address changes in the middle of a download: the tunnel roams and the download completes', async () => {
    // Target on the carrier's LAN side: reached by the device without the carrier NAT (see the header).
    const target = lab.spawn(
      'cgn1',
      process.execPath,
      ['--import', lab.tsxLoader, HTTP_ECHO, '--host', lab.device(1).gateway, '--http-port', '8088'],
      { stdin: 'pipe' },
    );
    await target.waitForLine(/ready/, 15_000);
    const n = 30_000_000;
    const url = `http://${lab.device(1).gateway}:8088/bytes?n=${n}`;
    // ~6 s at 5 MB/s; the rotation lands after ~2 s.
    const handshakes = () =>
      agents[0]!.proc.lines.filter((l) => /tunnel established/.test(l) && !/"rekey":true/.test(l));
    const before = handshakes();
    assert.match(before.at(-1) ?? '', /"transport":"udp"/, 'the tunnel runs over UDP before the change');
    const dl = curl(
      ['-o', '/dev/null', '-w', '%{size_download} %{http_code}', '--limit-rate', '5M', '-x', http[0]!.proxy_url, url],
      40,
    );
    await new Promise((r) => setTimeout(r, 2_000));
    const rot = await lab.rotateCarrierAddress(1);
    const r = await dl;
    assert.equal(r.code, 0, `download failed: ${r.stderr}`);
    assert.equal(r.stdout, `${n} 200`);
    // Roaming, not reconnecting: the session followed the new address without a new handshake.
    assert.equal(
      handshakes().length,
      before.length,
      `no new handshake: ${handshakes().slice(before.length).join(' | ')}`,
    );
    // And the internet path follows the new address.
    await waitUntil(async () => (await proxyGet(http[0]!.proxy_url)) === rot.newIp, {
      timeoutMs: 10_000,
      intervalMs: 300,
      what: `exit from ${rot.newIp}`,
    });
    console.error(
      `dataplane-faults.lab: download of ${n} bytes completed across carrier change ${rot.oldIp} -> ${rot.newIp}`,
    );
    await target.stop(1_000);
  });
  it('UDP to the relay blocked: the agent falls back to TCP by itself and the ports work; unblocked: back on UDP', async () => {
    await lab.blockUdp('cgn1', 1194);
    const t0 = Date.now();
    try {
      await waitUntil(
        async () =>
          agents[0]!.proc.lines.slice(-200).some((l) => /tunnel established/.test(l) && /"transport":"tcp"/.test(l)),
        { timeoutMs: 45_000, intervalMs: 500, what: 'agent 1 re-established the tunnel over TCP' },
      );
      const tcpAt = Date.now() - t0;
      // With lanes, the other lanes go to TCP on lane 0's word (it passes its transport with 'relay-lost'),
      // not after trying UDP for their own fallback time: the same bound as one lane.
      await waitUntil(() => flowsWork(http[0]!.proxy_url, lab.device(1).carrierIp), {
        timeoutMs: 15_000,
        intervalMs: 500,
        what: 'device 1 serves over the TCP tunnel',
      });
      console.error(
        `dataplane-faults.lab: UDP blocked; TCP tunnel after ${tcpAt} ms, proxy working after ${Date.now() - t0} ms`,
      );
    } finally {
      await lab.unblockUdp('cgn1', 1194);
    }
    // UDP again: every tunnel back on it (with lanes, the others follow lane 0: none stays on TCP).
    const t1 = Date.now();
    await waitUntil(async () => (await relay.tunnelStatus())?.tcp_connections === 0, {
      timeoutMs: 15_000,
      intervalMs: 300,
      what: "no tunnel left on TCP after UDP is unblocked (the relay's tcp_connections)",
    });
    await waitUntil(() => flowsWork(http[0]!.proxy_url, lab.device(1).carrierIp), {
      timeoutMs: 10_000,
      intervalMs: 500,
      what: 'device 1 serves over UDP again',
    });
    console.error(`dataplane-faults.lab: UDP unblocked; every tunnel off TCP after ${Date.now() - t1} ms`);
  });
});
