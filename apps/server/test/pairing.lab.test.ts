// Pairing to serving with the real binaries: `pocketproxy up` in the relay namespace, a freshly paired
// `pocketproxy-agent` per try behind its carrier NAT, curl as the customer.
//
//   pairing code redeemed (paired_at) -> the API pushes the new device to its relay (POST /sync: peer
//   list refreshed) -> agent `run`: first initiation answered -> online -> its new connection's port answers
//
// Also the first seconds when the relay does not answer yet: its tunnel port closed (as while the
// tunnel process starts) when the agent starts, and UDP blocked at pairing time. Either way the device
// must end on UDP within seconds of UDP answering, not after the old 60 s UDP retry.
// Goal (issue "Live control plane"): p95 <= 2 s from the code's redemption to online and answering;
// asserted generously (< 5 s per try) for a loaded 2-core VM. Needs root; skips loudly otherwise.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  createLab,
  waitUntil,
  startRelay,
  startAgent,
  waitDeviceOnline,
  canRunLab,
  pairAndMeasure,
  agentTransport,
  type Lab,
  type LabRelay,
  type LabAgent,
} from '@pocketproxy/testkit';

const ROOT = canRunLab();
if (!ROOT) console.error('pairing.lab.test: SKIPPED — needs root (network namespaces, TUN, nftables)');

const TUNNEL_PORT = 1194;

describe('pairing to serving (relay + freshly paired agents in the lab)', {
  skip: ROOT ? false : 'needs root',
  timeout: 300_000,
}, () => {
  let lab: Lab;
  let relay: LabRelay;
  const running: LabAgent[] = [];

  const status = async () =>
    (await relay.tunnelStatus()) as
      | {
          relay_id: string | null;
          tcp_connections: number;
          devices_connected: number;
          initiations_replayed: number;
          drops: Record<string, number>;
        }
      | undefined;
  /** On UDP by every account: the agent's log, the relay's TCP connections, the API's tunnel_transport (from heartbeats). */
  const onUdp = async (a: LabAgent) => {
    if (agentTransport(a) !== 'udp') return false;
    const st = await status();
    if (st?.tcp_connections !== 0) return false;
    const d = (await relay.api.call('GET', `/api/devices/${a.deviceId}`)).body;
    return d?.tunnel_transport === 'udp';
  };

  before(async () => {
    lab = await createLab({ devices: 3 });
    relay = await startRelay(lab, { env: { POCKETPROXY_HEARTBEAT_INTERVAL_S: '5' } });
    await waitUntil(async () => (await status())?.relay_id, {
      timeoutMs: 30_000,
      intervalMs: 200,
      what: 'relay tunnel registered',
    });
  });

  after(async () => {
    if (process.env.PP_PAIRING_DEBUG) console.error(relay?.proc.output().slice(-20_000));
    for (const a of running) await a.stop().catch(() => {});
    await lab?.teardown(4_000);
  });

  it('paired -> online, and a connection created at once answers through the device: each try in seconds, on UDP, first initiation answered (no initiation from an unknown key)', async () => {
    const answers: number[] = [];
    const onlines: number[] = [];
    for (let i = 0; i < 5; i++) {
      const before = await status();
      const m = await pairAndMeasure(lab, relay, 1, { timeoutMs: 20_000 });
      running.push(m.agent);
      answers.push(m.answerMs);
      onlines.push(m.onlineMs);
      // The figure itself belongs to `npm run bench:control` (p95 1.6-1.8 s); this bound only catches a return of
      // the poll paths (relay 10 s, first handshake >= 5 s) on a host loaded by other jobs (CI saw 5.4 s once).
      assert.ok(m.answerMs < 12_000, `try ${i + 1}: port answered ${m.answerMs} ms after pairing`);
      await waitUntil(() => onUdp(m.agent), {
        timeoutMs: 10_000,
        intervalMs: 200,
        what: `device ${m.deviceId} on UDP`,
      });
      // The API's push made the relay know the key before the agent's first initiation: nothing dropped as unknown.
      const after = await status();
      assert.equal(
        after!.drops.unknown_peer ?? 0,
        before!.drops.unknown_peer ?? 0,
        'no initiation from an unknown key',
      );
      await m.agent.stop();
      running.splice(running.indexOf(m.agent), 1);
    }
    const s = [...answers].sort((a, b) => a - b);
    console.error(
      `pairing.lab: paired -> port answering ${answers.join(', ')} ms (median ${s[2]}); -> online ${onlines.join(', ')} ms`,
    );
  });

  it('an agent that starts while the relay tunnel is down (port closed, tunnel restarting): online on UDP within seconds of the tunnel answering', async () => {
    // The tunnel process dies (up restarts it after 1 s) and its port stays closed for 12 s from the
    // agent's start: longer than the agent's UDP -> TCP fallback (10 s), so it goes through it.
    const old = await relay.tunnelPid();
    assert.ok(old, 'tunnel child found');
    const closed = `table inet pplab_closed {\n  chain input {\n    type filter hook input priority filter - 5; policy accept;\n    udp dport ${TUNNEL_PORT} reject\n    tcp dport ${TUNNEL_PORT} reject with tcp reset\n  }\n}\n`;
    await lab.exec('relay', 'nft', ['-f', '-'], { input: closed, check: true });
    process.kill(old, 'SIGKILL');
    let agent: LabAgent | undefined;
    try {
      agent = await startAgent(lab, relay, 2, { rotate: false });
      running.push(agent);
      await waitUntil(
        async () => {
          const p = await relay.tunnelPid();
          return p !== undefined && p !== old && (await status()) !== undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200, what: 'the tunnel restarted' },
      );
      await new Promise((r) => setTimeout(r, 12_000));
      assert.equal(
        (await relay.api.call('GET', `/api/devices/${agent.deviceId}`)).body?.tunnel_connected,
        false,
        'nothing got through the closed port',
      );
    } finally {
      await lab.exec('relay', 'nft', ['delete', 'table', 'inet', 'pplab_closed']);
    }
    const t0 = Date.now();
    const a = agent;
    let agentUdpMs: number | undefined;
    const watch = waitUntil(
      () => {
        if (agentTransport(a) !== 'udp' || !a.proc.lines.some((l) => l.includes('"tunnel established"'))) return false;
        agentUdpMs = Date.now() - t0;
        return true;
      },
      { timeoutMs: 20_000, intervalMs: 25, what: 'agent established, on UDP' },
    );
    await waitDeviceOnline(relay, agent.deviceId, 20_000);
    const onlineMs = Date.now() - t0;
    await watch;
    // The relay's TCP connection closes and the API hears the transport with the next heartbeat (5 s here).
    await waitUntil(() => onUdp(a), {
      timeoutMs: 15_000,
      intervalMs: 100,
      what: `device ${agent.deviceId} on UDP (agent, relay, API)`,
    });
    const allMs = Date.now() - t0;
    assert.ok(onlineMs < 8_000, `online ${onlineMs} ms after the port opened`);
    assert.ok(agentUdpMs! < 6_000, `agent on UDP ${agentUdpMs} ms after the port opened`);
    console.error(
      `pairing.lab: tunnel port closed at the agent's start, opened: online after ${onlineMs} ms, agent on UDP after ${agentUdpMs} ms, relay and API agree after ${allMs} ms; agent transport switches: ${agent.proc.lines.filter((l) => l.includes('tunnel transport switched')).length}`,
    );
    await agent.stop();
    running.splice(running.indexOf(agent), 1);
  });

  it('UDP blocked when the device is paired: it serves over the TCP fallback, and is back on UDP within a few seconds of UDP answering', async () => {
    await lab.blockUdp('relay', TUNNEL_PORT);
    let m: Awaited<ReturnType<typeof pairAndMeasure>>;
    try {
      m = await pairAndMeasure(lab, relay, 3, { timeoutMs: 40_000 });
      running.push(m.agent);
      assert.equal(agentTransport(m.agent), 'tcp');
      assert.ok((await status())!.tcp_connections >= 1);
    } finally {
      await lab.unblockUdp('relay', TUNNEL_PORT);
    }
    const t0 = Date.now();
    await waitUntil(() => agentTransport(m.agent) === 'udp', {
      timeoutMs: 20_000,
      intervalMs: 50,
      what: 'agent back on UDP',
    });
    const ms = Date.now() - t0;
    await waitUntil(() => onUdp(m.agent), { timeoutMs: 10_000, intervalMs: 200, what: 'relay and API see UDP' });
    assert.ok(ms < 6_000, `back on UDP ${ms} ms after UDP was unblocked`);
    console.error(
      `pairing.lab: UDP blocked at pairing: port answered over TCP ${m.answerMs} ms after pairing; back on UDP ${ms} ms after the unblock`,
    );
    await m.agent.stop();
    running.splice(running.indexOf(m.agent), 1);
  });
});
