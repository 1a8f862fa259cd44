// The whole agent in one process: FakeTun, a fake API object, a real Responder on 127.0.0.1, the
// proxies on 127.0.0.1 (ephemeral ports). Covers wiring: credentials -> proxy auth, destination
// policy, a command pushed through the tunnel (0x06 ack + REST result), heartbeat with usage.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeTun } from '@pocketproxy/tun';
import { encodeKey } from '@pocketproxy/protocol';
import { Heartbeat } from '@pocketproxy/api-schema';
import { createAgent } from '../src/agent.js';
import { inProcessTunnel } from '../src/tunnel/host.js';
import { writeState } from '../src/state.js';
import { makeVerifier } from '../src/credentials.js';
import type { ApiClient, HeartbeatBody } from '../src/api-client.js';
import { startFakeRelay } from './fake-relay.js';
import { logger, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

function connectRequest(port: number, auth?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    s.on('data', (d) => { buf += d.toString('latin1'); if (buf.includes('\r\n\r\n')) { s.destroy(); resolve(buf.split('\r\n')[0]!); } });
    s.on('error', reject);
    s.write(`CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n${auth ? `Proxy-Authorization: Basic ${Buffer.from(auth).toString('base64')}\r\n` : ''}\r\n`);
  });
}

test('agent: tunnel up, proxies authenticate from credentials, commands over the tunnel, heartbeat', async () => {
  const relay = await startFakeRelay();
  cleanups.push(() => relay.close());
  const dir = await mkdtemp(join(tmpdir(), 'ppagent-run-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await writeState(dir, {
    version: 1, server: 'http://127.0.0.1:1', device_id: 'dev_abcdefghij', auth_token: 'tok', private_key: encodeKey(relay.device.privateKey),
    public_key: encodeKey(relay.device.publicKey), psk: encodeKey(relay.psk), relay: { id: 'rly_abcdefghij', host: '127.0.0.1', port: relay.port, public_key: null },
    base_port: 30000, vpn_ip: null, mtu: 1380, subnet: '127.0.0.0/8', paired_at: new Date().toISOString(),
  });
  const heartbeats: HeartbeatBody[] = [];
  const results: Array<{ id: string; status: string; result?: Record<string, unknown> }> = [];
  let credFetches = 0;
  const api: ApiClient = {
    pair: async () => { throw new Error('unused'); },
    tunnel: async () => ({ relay: { host: '127.0.0.1', port: relay.port, public_key: encodeKey(relay.keys.publicKey) }, vpn_ip: '127.0.0.1', mtu: 1380, subnet: '127.0.0.0/8' }),
    heartbeat: async (b) => {
      heartbeats.push(b);
      return { commands: heartbeats.length === 1 ? [{ id: 'cmd_hbhbhbhbhb', type: 'config_update', payload: { heartbeat_interval_s: 3600 } }] : [], heartbeat_interval_s: 3600, credentials_version: 'v1' };
    },
    commandResult: async (id, status, result) => { results.push({ id, status, result }); },
    credentials: async () => {
      credFetches++;
      return { version: 'v1', items: [{ connection_id: 'con_aaaaaaaaaa', protocol: 'http', port: 30010, username: 'alice', verifier: makeVerifier('wonderland', 'salt1') }] };
    },
  };
  const tun = new FakeTun({ name: 'ppd0' });
  const configured: unknown[] = [];
  const agent = createAgent(
    { stateDir: dir, tunnelInterface: 'ppd0', allowPrivateDestinations: false, closeOnRotate: true, allowReboot: false, airplaneSeconds: 5, ports: { http: 0, socks5: 0, udp: 0 }, tunnel: { tickMs: 50 } },
    { logger, api, startTunnel: inProcessTunnel({ openTun: () => tun, configureTun: async (c) => void configured.push(c) }), publicIp: async () => '198.18.1.2' },
  );
  cleanups.push(() => agent.stop());
  await agent.start();
  assert.deepEqual(configured, [{ name: 'ppd0', address: '127.0.0.1', prefixLength: 8, mtu: 1380 }]);
  await waitFor(() => agent.tunnel!.established, 3000);

  // TUN -> tunnel -> relay (which echoes) -> tunnel -> TUN
  const pkt = Buffer.alloc(28);
  pkt[0] = 0x45;
  tun.inject(pkt);
  await waitFor(() => tun.written.some((p) => p.equals(pkt)), 2000).catch((e) => { console.log("DEBUG", relay.packets, tun.written, agent.tunnel!.stats()); throw e; });

  const port = agent.proxies!.ports.http;
  assert.match(await connectRequest(port), / 407 /);
  assert.match(await connectRequest(port, 'alice:wrong'), / 407 /);
  // Authenticated, but loopback is this device: refused by policy (403), never dialled.
  assert.match(await connectRequest(port, 'alice:wonderland'), / 403 /);

  // A command pushed over the tunnel: acked over the tunnel, result over REST; re-push not rerun.
  const cmd = { kind: 'command' as const, command: { id: 'cmd_tunneltunn', type: 'reboot', payload: {} } };
  relay.push(cmd);
  relay.push(cmd);
  await waitFor(() => results.some((r) => r.id === 'cmd_tunneltunn' && r.status === 'failed'), 3000);
  await waitFor(() => relay.messages.filter((m) => m.kind === 'ack' && m.ack.id === 'cmd_tunneltunn').length >= 3, 2000);
  assert.equal(results.filter((r) => r.id === 'cmd_tunneltunn').length, 2); // acked + failed, once
  assert.match(JSON.stringify(results.find((r) => r.id === 'cmd_tunneltunn' && r.status === 'failed')), /not allowed/);

  // Heartbeat ran at start, delivered a command; credentials_version matched so no refetch storm.
  await waitFor(() => results.some((r) => r.id === 'cmd_hbhbhbhbhb' && r.status === 'succeeded'), 3000);
  assert.ok(heartbeats.length >= 1);
  for (const h of heartbeats) Heartbeat.parse(h);
  assert.equal(heartbeats[0]!.public_ip, '198.18.1.2');
  assert.equal(credFetches, 1);

  // Control message: credentials changed -> refetch.
  relay.push({ kind: 'control', control: { type: 'credentials_changed' } });
  await waitFor(() => credFetches === 2, 2000);
});
