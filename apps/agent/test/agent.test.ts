// The whole agent in one process: FakeTun, a fake API object, a real Responder on 127.0.0.1, the
// connections' listeners on 127.0.0.1 (their ports picked free). Covers wiring: credentials ->
// one listener per connection, auth against that connection only, state changes pushed through
// the tunnel (refusal with a reason, listener closed on delete), destination policy, a command
// pushed through the tunnel (0x06 ack + REST result), heartbeat with usage.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeTun } from '@pocketproxy/tun';
import { encodeKey } from '@pocketproxy/protocol';
import { Heartbeat } from '@pocketproxy/api-schema';
import { createAgent, type RunConfig } from '../src/agent.js';
import { inProcessTunnel } from '../src/tunnel/host.js';
import { writeState } from '../src/state.js';
import type { ApiClient, HeartbeatBody } from '../src/api-client.js';
import { startFakeRelay } from './fake-relay.js';
import { credentialItem, logger, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** The status line of a CONNECT answer (with the reason header, if any), or the socket error code. */
function connectRequest(port: number, auth?: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      s.destroy();
      const reason = /\r\nX-PocketProxy-Reason: ([^\r]+)/i.exec(buf)?.[1];
      resolve(buf.split('\r\n')[0]! + (reason ? ` [${reason}]` : ''));
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    s.write(
      `CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n${auth ? `Proxy-Authorization: Basic ${Buffer.from(auth).toString('base64')}\r\n` : ''}\r\n`,
    );
  });
}

function freePorts(n: number): Promise<number[]> {
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<number>((resolve) => {
          const srv = net.createServer().listen(0, '127.0.0.1', () => {
            const p = (srv.address() as net.AddressInfo).port;
            srv.close(() => resolve(p));
          });
        }),
    ),
  );
}

/** The agent's configuration in these tests: its state in `dir`, TUN ppd0, a fast tunnel tick. */
function runConfig(dir: string): RunConfig {
  return {
    stateDir: dir,
    tunnelInterface: 'ppd0',
    allowPrivateDestinations: false,
    closeOnRotate: true,
    allowReboot: false,
    airplaneSeconds: 5,
    tunnel: { tickMs: 50 },
  };
}

/** A fake relay and a state directory paired with it (the relay's key not yet known: the API gives it). */
async function pairedWithFakeRelay(prefix: string) {
  const relay = await startFakeRelay();
  cleanups.push(() => relay.close());
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await writeState(dir, {
    version: 1,
    server: 'http://127.0.0.1:1',
    device_id: 'dev_abcdefghij',
    auth_token: 'tok',
    private_key: encodeKey(relay.device.privateKey),
    public_key: encodeKey(relay.device.publicKey),
    psk: encodeKey(relay.psk),
    relay: { id: 'rly_abcdefghij', host: '127.0.0.1', port: relay.port, public_key: null },
    vpn_ip: null,
    mtu: 1380,
    subnet: '127.0.0.0/8',
    paired_at: new Date().toISOString(),
  });
  return { relay, dir };
}

test('agent: tunnel up, one listener per connection, auth per connection, state pushed, commands over the tunnel, heartbeat', async () => {
  const { relay, dir } = await pairedWithFakeRelay('ppagent-run-');
  let tunnelReply = {
    relay: { host: '127.0.0.1', port: relay.port, public_key: encodeKey(relay.keys.publicKey) as string | null },
    vpn_ip: '127.0.0.1',
    mtu: 1380,
    subnet: '127.0.0.0/8',
  };
  const heartbeats: HeartbeatBody[] = [];
  const results: Array<{ id: string; status: string; result?: Record<string, unknown> }> = [];
  let credFetches = 0;
  const [portA, portB] = (await freePorts(2)) as [number, number];
  const item = credentialItem;
  let items = [item('con_aaaaaaaaaa', portA, 'alice', 'wonderland'), item('con_bbbbbbbbbb', portB, 'bob', 'builder')];
  const api: ApiClient = {
    pair: async () => {
      throw new Error('unused');
    },
    tunnel: async () => tunnelReply,
    heartbeat: async (b) => {
      heartbeats.push(b);
      return {
        commands:
          heartbeats.length === 1
            ? [{ id: 'cmd_hbhbhbhbhb', type: 'config_update', payload: { heartbeat_interval_s: 3600 } }]
            : [],
        heartbeat_interval_s: 3600,
        credentials_version: 'v1',
      };
    },
    commandResult: async (id, status, result) => {
      results.push({ id, status, result });
    },
    credentials: async () => {
      credFetches++;
      return { version: 'v1', items };
    },
  };
  // A new TUN each time the agent opens one (it does again when its tunnel moves to another relay).
  let tun = new FakeTun({ name: 'ppd0' });
  let opened = 0;
  const configured: unknown[] = [];
  const agent = createAgent(runConfig(dir), {
    logger,
    api,
    startTunnel: inProcessTunnel({
      openTun: () => {
        if (opened++ > 0) tun = new FakeTun({ name: 'ppd0' });
        return tun;
      },
      configureTun: async (c) => void configured.push(c),
    }),
    publicIp: async () => '198.18.1.2',
  });
  cleanups.push(() => agent.stop());
  await agent.start();
  // The TUN io is asked to route answers from the tunnel address back into the TUN (kernelTun does, with `ip rule`).
  assert.deepEqual(configured, [{ name: 'ppd0', address: '127.0.0.1', prefixLength: 8, mtu: 1380, replyTable: 5210 }]);
  await waitFor(() => agent.tunnel!.established, 3000);

  // TUN -> tunnel -> relay (which echoes) -> tunnel -> TUN
  const pkt = Buffer.alloc(28);
  pkt[0] = 0x45;
  tun.inject(pkt);
  await waitFor(() => tun.written.some((p) => p.equals(pkt)), 2000).catch((e) => {
    console.log('DEBUG', relay.packets, tun.written, agent.tunnel!.stats());
    throw e;
  });

  assert.deepEqual(
    agent.listeners!.ports(),
    new Map([
      ['con_aaaaaaaaaa', portA],
      ['con_bbbbbbbbbb', portB],
    ]),
  );
  assert.match(await connectRequest(portA), / 407 /);
  assert.match(await connectRequest(portA, 'alice:wrong'), / 407 /);
  // Bob's credentials are right, but for another connection: this port does not know them.
  assert.match(await connectRequest(portA, 'bob:builder'), / 407 /);
  assert.match(await connectRequest(portB, 'alice:wonderland'), / 407 /);
  // Authenticated, but loopback is this device: refused by policy (403), never dialled.
  assert.match(await connectRequest(portA, 'alice:wonderland'), /^HTTP\/1\.1 403 [^[]*$/);
  assert.match(await connectRequest(portB, 'bob:builder'), /^HTTP\/1\.1 403 [^[]*$/);

  // A command pushed over the tunnel: acked over the tunnel, result over REST; re-push not rerun.
  const cmd = { kind: 'command' as const, command: { id: 'cmd_tunneltunn', type: 'reboot', payload: {} } };
  relay.push(cmd);
  relay.push(cmd);
  await waitFor(() => results.some((r) => r.id === 'cmd_tunneltunn' && r.status === 'failed'), 3000);
  await waitFor(
    () => relay.messages.filter((m) => m.kind === 'ack' && m.ack.id === 'cmd_tunneltunn').length >= 3,
    2000,
  );
  assert.equal(results.filter((r) => r.id === 'cmd_tunneltunn').length, 2); // acked + failed, once
  assert.match(JSON.stringify(results.find((r) => r.id === 'cmd_tunneltunn' && r.status === 'failed')), /not allowed/);

  // Heartbeat ran at start, delivered a command; credentials_version matched so no refetch storm.
  await waitFor(() => results.some((r) => r.id === 'cmd_hbhbhbhbhb' && r.status === 'succeeded'), 3000);
  assert.ok(heartbeats.length >= 1);
  for (const h of heartbeats) Heartbeat.parse(h);
  assert.equal(heartbeats[0]!.public_ip, '198.18.1.2');
  // No rotation driver, no --allow-reboot: the agent says it can run config_update only.
  assert.deepEqual(heartbeats[0]!.capabilities, ['config_update']);
  assert.equal(credFetches, 1);

  // Pushed changes (the relay's credentials hint): Alice's connection disabled, Bob's deleted.
  items = [item('con_aaaaaaaaaa', portA, 'alice', 'wonderland', { state: 'disabled' })];
  relay.push({ kind: 'control', control: { type: 'credentials', payload: { refetch: true } } });
  await waitFor(() => credFetches === 2 && agent.listeners!.ports().size === 1, 2000);
  assert.equal(await connectRequest(portA, 'alice:wonderland'), 'HTTP/1.1 403 Forbidden [disabled]');
  // A wrong password learns nothing about the state.
  assert.match(await connectRequest(portA, 'alice:wrong'), / 407 /);
  assert.equal(await connectRequest(portB, 'bob:builder'), 'ECONNREFUSED');
  // Re-enabled and expired-by-date: the listener is the same, the answer follows the item.
  items = [
    item('con_aaaaaaaaaa', portA, 'alice', 'wonderland', { expires_at: new Date(Date.now() - 1000).toISOString() }),
  ];
  relay.push({ kind: 'control', control: { type: 'credentials_changed' } });
  await waitFor(() => credFetches === 3, 2000);
  await waitFor(() => agent.listeners!.stats().listeners === 1, 2000);
  assert.equal(await connectRequest(portA, 'alice:wonderland'), 'HTTP/1.1 403 Forbidden [expired]');
  assert.ok(agent.listeners!.stats().denied >= 2);

  // The device moved to another relay: told through the old one, it asks the API again and opens
  // its tunnel to the new relay (its listeners come back with it).
  const relay2 = await startFakeRelay({ device: relay.device, psk: relay.psk });
  cleanups.push(() => relay2.close());
  tunnelReply = {
    relay: { host: '127.0.0.1', port: relay2.port, public_key: encodeKey(relay2.keys.publicKey) },
    vpn_ip: '127.0.0.1',
    mtu: 1380,
    subnet: '127.0.0.0/8',
  };
  relay.push({ kind: 'control', control: { type: 'tunnel_changed' } });
  await waitFor(() => agent.tunnel!.established && configured.length === 2, 5000);
  const probe = Buffer.alloc(28);
  probe[0] = 0x45;
  probe[1] = 7;
  tun.inject(probe);
  await waitFor(() => relay2.packets.some((p) => p.equals(probe)), 3000);
  await waitFor(() => agent.listeners!.stats().listeners === 1, 3000);
  assert.equal(await connectRequest(portA, 'alice:wonderland'), 'HTTP/1.1 403 Forbidden [expired]');
});

test('agent: lanes by `--lanes auto` fall back to one lane where the TUN has no multi-queue; asked by number, the start fails', async (t) => {
  const { addonAvailable, TUN_ERRORS } = await import('@pocketproxy/tun');
  if (!addonAvailable()) {
    // Lanes need the native engine (agent.ts threadsPossible); without the addon there is nothing to fall back from.
    console.error('SKIPPED: the tun addon is not built (npm run build -w @pocketproxy/tun)');
    t.skip('tun addon not built');
    return;
  }
  const { errorFactory } = await import('@pocketproxy/errors');
  const fail = errorFactory(TUN_ERRORS);
  for (const lanesAuto of [true, false]) {
    const { relay, dir } = await pairedWithFakeRelay('ppagent-lanes-');
    const api: ApiClient = {
      pair: async () => {
        throw new Error('unused');
      },
      tunnel: async () => ({
        relay: { host: '127.0.0.1', port: relay.port, public_key: encodeKey(relay.keys.publicKey), max_lanes: 16 },
        vpn_ip: '127.0.0.1',
        mtu: 1380,
        subnet: '127.0.0.0/8',
      }),
      heartbeat: async () => ({ commands: [], heartbeat_interval_s: 3600, credentials_version: 'v1' }),
      commandResult: async () => {},
      credentials: async () => ({ version: 'v1', items: [] }),
    };
    const opens: boolean[] = [];
    let threadsStarted = 0;
    const agent = createAgent(
      { ...runConfig(dir), lanes: 4, lanesAuto },
      {
        logger,
        api,
        startTunnel: inProcessTunnel({
          // A kernel without IFF_MULTI_QUEUE, or a one-queue ppd0 made before: the multi-queue open fails.
          openTun: (name, _mtu, _offload, multiQueue) => {
            opens.push(multiQueue === true);
            if (multiQueue)
              throw fail('PP_ERR_TUN_OPEN_FAILED', { name, reason: 'Invalid argument (queue flags differ?)' });
            return new FakeTun({ name });
          },
          configureTun: async () => {},
        }),
        startListenerThread: () => {
          threadsStarted++;
          throw new Error('no listener thread expected with one lane');
        },
        publicIp: async () => '198.18.1.2',
      },
    );
    cleanups.push(() => agent.stop());
    if (lanesAuto) {
      await agent.start();
      await waitFor(() => agent.tunnel!.established, 3000);
      assert.deepEqual(opens, [true, false], 'one multi-queue try, then one single-queue TUN');
    } else {
      await assert.rejects(agent.start(), (e: Error & { code?: string }) => e.code === 'PP_ERR_TUN_OPEN_FAILED');
      assert.deepEqual(opens, [true], 'lanes asked for by number: no quiet fallback');
    }
    assert.equal(threadsStarted, 0);
  }
});
