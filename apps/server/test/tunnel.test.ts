// The relay tunnel end to end on loopback, without root: FakeTun for pp0, netfw's fake runner for
// nft, a fake API over real HTTP, and the protocol Initiator playing devices over real UDP / TCP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { parseIPv4Udp } from '@pocketproxy/tun';
import { createInitiator, generateKeyPair, generatePsk } from '@pocketproxy/protocol';
import { connectDevice, makeDevice, sleep, startHarness, TOKEN, udpPacket, waitFor } from './tunnel/helpers.js';

const push = async (port: number, path: string, body?: unknown, token = TOKEN) => {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
};

test("start: registers, configures pp0, rebuilds the table from the API with the known devices' ports (warm start), applies sysctls", async () => {
  const rec = makeDevice(1);
  const gone = makeDevice(2);
  const h = await startHarness([rec, gone], { warmMs: 10_000 });
  try {
    const reg = h.api.callsTo('/api/internal/relays/register')[0]!;
    assert.equal(reg.body.name, 'local');
    assert.equal(reg.body.public_key, h.relayKeys.publicKey.toString('base64'));
    assert.equal(reg.body.tunnel_port, 0);
    assert.ok(h.api.callsTo('/api/internal/tunnel/peers').length >= 1);
    assert.deepEqual(h.tunRunner.commands, [
      'ip link set dev pp0 mtu 1380',
      'ip addr replace 192.168.255.1/24 dev pp0',
      'ip link set dev pp0 up',
    ]);
    // The first apply is one full rebuild, and it already forwards every known device's ports: after a
    // restart their customers' open flows must not meet an empty table while the devices reconnect.
    const first = await waitFor('first apply', () => h.runner.scripts()[0]);
    assert.match(first, /delete table ip pocketproxy/);
    assert.match(first, new RegExp(`${rec.port} : ${rec.vpn_ip.replaceAll('.', '\\.')} \\. ${rec.port}`));
    assert.match(first, new RegExp(`${gone.port} : ${gone.vpn_ip.replaceAll('.', '\\.')} \\. ${gone.port}`));
    assert.ok(h.runner.calls.some((c) => c.cmd === 'sysctl' && c.args.join(' ') === '-w net.ipv4.ip_forward=1'));
    // Device 1 comes back: its ports stay. Device 2 does not: its ports go once the warm time is over.
    await connectDevice(h, rec);
    const before = h.runner.scripts().length;
    h.tunnel.tick();
    assert.equal(h.runner.scripts().length, before, 'nothing expires early');
    h.clock.offset += 11_000;
    h.tunnel.tick();
    await waitFor('warm ports of the absent device removed', () => h.runner.scripts().length > before);
    const last = h.runner.scripts().at(-1)!;
    assert.match(last, new RegExp(`delete element ip pocketproxy tcp_fwd \\{ ${gone.port} \\}`));
    assert.doesNotMatch(last, new RegExp(`${rec.port}`));
    assert.equal(h.tunnel.status().ports_forwarded, 1);
  } finally {
    await h.close();
  }
});

test('UDP: handshake -> vpn/connected -> ports -> packets both ways; spoofed source dropped', async () => {
  const rec = makeDevice(1, [
    { connection_id: 'con_a', protocol: 'http', port: 40000, allow_from: [], enabled: true },
    { connection_id: 'con_b', protocol: 'socks5', port: 40001, allow_from: ['203.0.113.0/24'], enabled: true },
  ]);
  const h = await startHarness([rec]);
  try {
    const d = await connectDevice(h, rec);
    const call = h.api.callsTo('/api/internal/vpn/connected')[0]!;
    assert.equal(call.body.vpn_ip, '192.168.255.2');
    assert.equal(call.body.relay_id, 'rly_test');
    assert.match(call.body.endpoint, /^127\.0\.0\.1:\d+$/);
    const script = h.runner.scripts().at(-1)!;
    // Each connection's port goes to the same port of the device (its own listener there); no device-level ports.
    for (const e of ['30003 : 192.168.255.2 . 30003', '40000 : 192.168.255.2 . 40000', '40001 : 192.168.255.2 . 40001'])
      assert.ok(script.includes(e), `${e} in\n${script}`);
    assert.match(script, /udp_fwd \{[^}]*40001 : 192\.168\.255\.2 \. 40001/);
    assert.doesNotMatch(script, /30004|30005|8080|1080/);
    assert.match(script, /tcp \. 40001 \. 203\.0\.113\.0\/24/);
    // The config control message tells the device its address and MTU.
    await waitFor('config', () => d.messages.find((m) => m.kind === 'control' && m.control.type === 'config'));
    const cfg = d.messages.find((m) => m.kind === 'control' && m.control.type === 'config')!;
    assert.deepEqual(cfg.kind === 'control' && cfg.control.payload, {
      address: '192.168.255.2/24',
      gateway: '192.168.255.1',
      mtu: 1380,
    });
    await waitFor('credentials', () =>
      d.messages.some((m) => m.kind === 'control' && m.control.type === 'credentials'),
    );

    // pp0 -> device
    h.tun.inject(udpPacket('203.0.113.9', '192.168.255.2', 'to-device'));
    const got = await waitFor('packet at device', () => d.packets[0]);
    assert.equal(parseIPv4Udp(got)!.payload.toString(), 'to-device');
    // device -> pp0
    d.sendPacket(udpPacket('192.168.255.2', '203.0.113.9', 'from-device'));
    const w = await waitFor('packet in TUN', () => h.tun.written[0]);
    assert.equal(parseIPv4Udp(w)!.payload.toString(), 'from-device');
    // spoofed source (another device's address) never reaches pp0
    d.sendPacket(udpPacket('192.168.255.7', '203.0.113.9', 'spoofed'));
    d.sendPacket(udpPacket('192.168.255.2', '203.0.113.9', 'after'));
    await waitFor('second packet', () => h.tun.written.length >= 2);
    await sleep(50);
    assert.deepEqual(
      h.tun.written.map((p) => parseIPv4Udp(p)!.payload.toString()),
      ['from-device', 'after'],
    );
    assert.equal(h.tunnel.status().drops.spoofed, 1);
    assert.equal(h.tunnel.status().offload.tun, null, 'FakeTun has no offloads');
    // a packet for an address with no device is dropped, not sent anywhere
    h.tun.inject(udpPacket('203.0.113.9', '192.168.255.99'));
    assert.equal(h.tunnel.status().drops.no_device, 1);
  } finally {
    await h.close();
  }
});

test('push API: command frame delivered, ack logged, unacked command re-pushed once; auth and validation', async () => {
  const rec = makeDevice(2);
  const h = await startHarness([rec, makeDevice(3)]);
  try {
    const d = await connectDevice(h, rec);
    const port = h.tunnel.addresses.push;
    assert.equal(
      (
        await push(
          port,
          '/push',
          { device_id: rec.device_id, message: { kind: 'command', id: 'cmd_1', type: 'rotate_ip', payload: { x: 1 } } },
          'wrong',
        )
      ).status,
      401,
    );
    const r = await push(port, '/push', {
      device_id: rec.device_id,
      message: { kind: 'command', id: 'cmd_1', type: 'rotate_ip', payload: { x: 1 } },
    });
    assert.deepEqual(r, { status: 200, body: { delivered: true } });
    const cmd = await waitFor('command at device', () => d.messages.find((m) => m.kind === 'command'));
    assert.deepEqual(cmd, { kind: 'command', command: { id: 'cmd_1', type: 'rotate_ip', payload: { x: 1 } } });
    // not connected -> delivered false
    assert.deepEqual(
      (await push(port, '/push', { device_id: 'dev_3', message: { kind: 'command', id: 'cmd_2', type: 'x' } })).body,
      { delivered: false },
    );
    // control frame
    assert.deepEqual(
      (await push(port, '/push', { device_id: rec.device_id, message: { kind: 'control', type: 'hello', payload: 1 } }))
        .body,
      { delivered: true },
    );
    await waitFor('control at device', () =>
      d.messages.find((m) => m.kind === 'control' && m.control.type === 'hello'),
    );
    // bad message
    assert.equal((await push(port, '/push', { device_id: rec.device_id, message: { kind: 'nope' } })).status, 400);
    assert.equal(
      (
        await push(port, '/push', {
          device_id: rec.device_id,
          message: { kind: 'command', id: 'x', type: 'y', payload: 'z'.repeat(5000) },
        })
      ).status,
      400,
    );
    // no ack -> one re-push after ~5 s
    h.clock.offset += 5_100;
    h.tunnel.tick();
    await waitFor(
      're-push',
      () => d.messages.filter((m) => m.kind === 'command' && m.command.id === 'cmd_1').length === 2,
    );
    h.clock.offset += 5_100;
    h.tunnel.tick();
    await sleep(50);
    assert.equal(d.messages.filter((m) => m.kind === 'command').length, 2, 're-pushed only once');
    // an acked command is not re-pushed
    await push(port, '/push', { device_id: rec.device_id, message: { kind: 'command', id: 'cmd_3', type: 'x' } });
    await waitFor('cmd_3', () => d.messages.find((m) => m.kind === 'command' && m.command.id === 'cmd_3'));
    d.sendMessage({ kind: 'ack', ack: { id: 'cmd_3', status: 'received' } });
    await waitFor('ack processed', () => h.tunnel.status().pending_commands === 0);
    const st = await push(port, '/status');
    assert.equal(st.body.devices_connected, 1);
    assert.equal(st.body.relay_id, 'rly_test');
  } finally {
    await h.close();
  }
});

test('silence: peer_down -> vpn/disconnected and ports removed; reconnect forwards again', async () => {
  const rec = makeDevice(4, [{ connection_id: 'con_c', protocol: 'http', port: 40010, allow_from: [], enabled: true }]);
  const h = await startHarness([rec]);
  try {
    const d = await connectDevice(h, rec);
    d.close();
    h.clock.offset += 31_000;
    h.tunnel.tick();
    await waitFor('vpn/disconnected', () =>
      h.api.callsTo('/api/internal/vpn/disconnected').find((c) => c.body.device_id === rec.device_id),
    );
    assert.equal(h.api.callsTo('/api/internal/vpn/disconnected')[0]!.body.reason, 'dead');
    await waitFor(
      'ports removed',
      () => h.runner.scripts().at(-1)!.includes('delete element') && !h.tunnel.devices.byId.get(rec.device_id)!.up,
    );
    const last = h.runner.scripts().at(-1)!;
    assert.match(last, /delete element ip pocketproxy tcp_fwd \{[^}]*40010/);
    assert.equal((await h.tunnel.status()).ports_forwarded, 0);
    // The device comes back (new socket, new handshake): forwarded again.
    h.clock.offset = 0;
    await connectDevice(h, rec);
    assert.equal(h.api.callsTo('/api/internal/vpn/connected').length, 2);
    // connectDevice's script check also matches the first period's scripts: wait for the applied state itself.
    await waitFor('ports forwarded again', () => h.tunnel.status().ports_forwarded === 2);
  } finally {
    await h.close();
  }
});

test('TCP fallback: handshake, packets and pushes over one TCP connection; roaming UDP -> TCP', async () => {
  const rec = makeDevice(5);
  const h = await startHarness([rec]);
  try {
    const d = await connectDevice(h, rec, 'tcp');
    assert.match(h.api.callsTo('/api/internal/vpn/connected')[0]!.body.endpoint, /^tcp\/127\.0\.0\.1:\d+$/);
    h.tun.inject(udpPacket('203.0.113.9', rec.vpn_ip, 'over-tcp'));
    assert.equal(parseIPv4Udp(await waitFor('packet', () => d.packets[0]))!.payload.toString(), 'over-tcp');
    d.sendPacket(udpPacket(rec.vpn_ip, '203.0.113.9', 'up-tcp'));
    assert.equal(parseIPv4Udp(await waitFor('tun', () => h.tun.written[0]))!.payload.toString(), 'up-tcp');
    assert.deepEqual(
      (
        await push(h.tunnel.addresses.push, '/push', {
          device_id: rec.device_id,
          message: { kind: 'command', id: 'cmd_t', type: 'x' },
        })
      ).body,
      { delivered: true },
    );
    await waitFor('command over tcp', () => d.messages.find((m) => m.kind === 'command'));
    assert.equal(h.tunnel.status().tcp_connections, 1);
  } finally {
    await h.close();
  }
});

test('unauthenticated input gets no answer: garbage, unknown device, bad TCP length', async () => {
  const h = await startHarness([makeDevice(6)]);
  try {
    const sock = dgram.createSocket('udp4');
    const answers: Buffer[] = [];
    sock.on('message', (m) => answers.push(m));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    const port = h.tunnel.addresses.udp;
    sock.send(Buffer.from('hello relay'), port, '127.0.0.1');
    sock.send(Buffer.alloc(148, 1), port, '127.0.0.1');
    // A well-formed initiation from a key the API does not know.
    const stranger = createInitiator({
      privateKey: generateKeyPair().privateKey,
      responderPublicKey: h.relayKeys.publicKey,
      psk: generatePsk(),
    });
    for (const f of stranger.tick(Date.now())) sock.send(f, port, '127.0.0.1');
    await sleep(300);
    assert.equal(answers.length, 0);
    sock.close();
    assert.ok((h.tunnel.status().drops.unknown_peer ?? 0) >= 1);
    // TCP: a length below the minimum desyncs the stream: closed, nothing answered.
    const c = net.connect(h.tunnel.addresses.tcp, '127.0.0.1');
    const got: Buffer[] = [];
    c.on('data', (b) => got.push(b));
    await new Promise<void>((r) => c.once('connect', () => r()));
    c.write(Buffer.from([0, 3, 1, 2, 3]));
    await new Promise<void>((r) => c.once('close', () => r()));
    assert.equal(got.length, 0);
  } finally {
    await h.close();
  }
});

test('initiations are rate-limited per source address', async () => {
  const rec = makeDevice(7);
  const h = await startHarness([rec], { initiationRate: { perSec: 5, burst: 20 } });
  try {
    const d = await h.device(rec);
    // 40 initiations at once from one address: the burst (20) passes, the rest is dropped unanswered.
    for (let i = 0; i < 40; i++) for (const f of d.initiator.tick(Date.now() + i * 6000)) d.sendRaw(f);
    await waitFor('drops', () => (h.tunnel.status().drops.rate_limited ?? 0) >= 15);
  } finally {
    await h.close();
  }
});

test('forwarding poll applies new and deleted connections (disabled ones stay forwarded); usage reports deltas', async () => {
  let bytes = 1000;
  let bytesOut = 30_000;
  const rec = makeDevice(8, [{ connection_id: 'con_d', protocol: 'http', port: 40020, allow_from: [], enabled: true }]);
  const counter = (name: string, b: number) => ({
    counter: { family: 'ip', name, table: 'pocketproxy', packets: 1, bytes: b },
  });
  const h = await startHarness([rec], {
    counters: () =>
      JSON.stringify({ nftables: [counter('port_40020_in', bytes), counter('port_40020_out', bytesOut)] }),
  });
  try {
    await connectDevice(h, rec);
    const scripts = h.runner.scripts().length;
    // A disabled connection stays forwarded: its device answers the customer with the reason.
    rec.connections[1] = { ...rec.connections[1]!, enabled: false };
    await h.tunnel.pollForwarding();
    assert.equal(h.runner.scripts().length, scripts, 'disabling changes no rule');
    rec.connections.push({ connection_id: 'con_e', protocol: 'socks5', port: 40021, allow_from: [], enabled: true });
    await h.tunnel.pollForwarding();
    const s = h.runner.scripts().at(-1)!;
    assert.match(s, /40021 : 192\.168\.255\.9 \. 40021/);
    rec.connections.pop();
    await h.tunnel.pollForwarding();
    assert.match(
      h.runner.scripts().at(-1)!,
      /delete element ip pocketproxy forwarded_ports \{ tcp \. 40021, udp \. 40021 \}/,
    );
    const before = h.runner.scripts().length;
    await h.tunnel.pollForwarding();
    assert.equal(h.runner.scripts().length, before, 'unchanged state runs no nft');

    // usage: only connection ports, as deltas per direction (port_<n>_in -> bytes_in,
    // port_<n>_out -> bytes_out); a smaller counter means reset -> counted from zero
    await h.tunnel.reportUsage();
    assert.deepEqual(h.api.callsTo('/api/internal/usage').at(-1)!.body.samples, [
      { port: 40020, bytes_in: 1000, bytes_out: 30_000 },
    ]);
    bytes = 1500;
    await h.tunnel.reportUsage();
    assert.deepEqual(h.api.callsTo('/api/internal/usage').at(-1)!.body.samples, [
      { port: 40020, bytes_in: 500, bytes_out: 0 },
    ]);
    const n = h.api.callsTo('/api/internal/usage').length;
    await h.tunnel.reportUsage();
    assert.equal(h.api.callsTo('/api/internal/usage').length, n, 'no change, no report');
    bytes = 200;
    bytesOut = 42_000;
    await h.tunnel.reportUsage();
    assert.deepEqual(h.api.callsTo('/api/internal/usage').at(-1)!.body.samples, [
      { port: 40020, bytes_in: 200, bytes_out: 12_000 },
    ]);
  } finally {
    await h.close();
  }
});

test('vpn/connected failing is retried; unknown device key triggers a peer refresh', async () => {
  const rec = makeDevice(9);
  const later = makeDevice(10);
  const h = await startHarness([rec]);
  try {
    h.api.failNextConnected(2);
    const d = await h.device(rec);
    await d.connect();
    // The tick loop retries with back-off (max 200 ms in the harness).
    for (let i = 0; i < 50 && !h.tunnel.devices.byId.get(rec.device_id)?.reported; i++) {
      h.tunnel.tick();
      await sleep(100);
    }
    assert.ok(h.tunnel.devices.byId.get(rec.device_id)!.reported);
    assert.equal(h.api.callsTo('/api/internal/vpn/connected').length, 3);
    // A device paired after the peer list was loaded: its first initiation is dropped, fetches the list, its retry works.
    h.api.devices.push(later);
    const peersBefore = h.api.callsTo('/api/internal/tunnel/peers').length;
    const d2 = await h.device(later, 'udp', { rekeyTimeoutMs: 300 });
    for (const f of d2.initiator.tick(Date.now())) d2.sendRaw(f);
    await waitFor('peer refresh', () => h.api.callsTo('/api/internal/tunnel/peers').length > peersBefore);
    await waitFor('known', () => h.tunnel.devices.byId.get(later.device_id));
    await d2.connect(8000);
    await waitFor('forwarded', () => h.tunnel.devices.byId.get(later.device_id)?.reported);
  } finally {
    await h.close();
  }
});

test('forwarding poll: a device left with no ports is not told to refetch its credentials at every poll', async () => {
  const rec = makeDevice(13);
  const h = await startHarness([rec]);
  try {
    // TCP: the session keeps the relay's messages in order, so a command pushed after the polls is a barrier.
    const d = await connectDevice(h, rec, 'tcp');
    const hints = () => d.messages.filter((m) => m.kind === 'control' && m.control.type === 'credentials').length;
    const barrier = async (id: string) => {
      await push(h.tunnel.addresses.push, '/push', {
        device_id: rec.device_id,
        message: { kind: 'command', id, type: 'x' },
      });
      await waitFor(id, () => d.messages.some((m) => m.kind === 'command' && m.command.id === id));
    };
    await barrier('cmd_b0');
    const first = hints();
    rec.connections.length = 0; // its last connection deleted: one change, one hint
    await h.tunnel.pollForwarding();
    await barrier('cmd_b1');
    assert.equal(hints(), first + 1);
    assert.match(h.runner.scripts().at(-1)!, new RegExp(`delete element .*${rec.port}`));
    // Nothing changes any more: no hint, no nft (was: a hint at every poll, ~10 s, for every portless device).
    const scripts = h.runner.scripts().length;
    await h.tunnel.pollForwarding();
    await h.tunnel.pollForwarding();
    await barrier('cmd_b2');
    assert.equal(hints(), first + 1);
    assert.equal(h.runner.scripts().length, scripts);
  } finally {
    await h.close();
  }
});

test('POST /sync: a pushed change of one device is applied before the answer, and the device is told to refetch its credentials', async () => {
  const rec = makeDevice(11);
  const other = makeDevice(12);
  const h = await startHarness([rec, other]);
  try {
    const d = await connectDevice(h, rec);
    const hints = () => d.messages.filter((m) => m.kind === 'control' && m.control.type === 'credentials').length;
    const before = hints();
    rec.connections.push({ connection_id: 'con_new', protocol: 'socks5', port: 40030, allow_from: [], enabled: true });
    const r = await push(h.tunnel.addresses.push, '/sync', { device_id: rec.device_id });
    assert.deepEqual(r.body, { ok: true, connected: true });
    // Applied when the answer came: no poll ran.
    assert.match(h.runner.scripts().at(-1)!, /40030 : 192\.168\.255\.12 \. 40030/);
    await waitFor('credentials hint', () => hints() > before);
    // Deleted: the port goes at once.
    rec.connections.pop();
    assert.deepEqual((await push(h.tunnel.addresses.push, '/sync', { device_id: rec.device_id })).body, {
      ok: true,
      connected: true,
    });
    assert.match(h.runner.scripts().at(-1)!, /delete element ip pocketproxy tcp_fwd \{ 40030 \}/);
    // A password change moves no port, but the device still hears of it.
    const n = hints();
    const scripts = h.runner.scripts().length;
    assert.deepEqual((await push(h.tunnel.addresses.push, '/sync', { device_id: rec.device_id })).body, {
      ok: true,
      connected: true,
    });
    assert.equal(h.runner.scripts().length, scripts);
    await waitFor('credentials hint again', () => hints() > n);
    // A device without a session here, and bad input.
    assert.deepEqual((await push(h.tunnel.addresses.push, '/sync', { device_id: other.device_id })).body, {
      ok: true,
      connected: false,
    });
    assert.equal((await push(h.tunnel.addresses.push, '/sync', { device_id: 7 })).status, 400);
  } finally {
    await h.close();
  }
});

test('with port 0 the TCP fallback takes the UDP port; a port some TCP socket holds already is given up for another', async () => {
  // A TCP listener holds a port; the first UDP socket the tunnel opens lands on that same number.
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  const held = (holder.address() as net.AddressInfo).port;
  const { dgramUdpPort } = await import('../src/tunnel/transport.js');
  const asked: number[] = [];
  const openUdp = (host: string, port: number) => {
    asked.push(port);
    return dgramUdpPort(host, asked.length === 1 ? held : port);
  };
  const h = await startHarness([makeDevice(21)], { openUdp });
  try {
    // At least a second one: its port-0 number may be held by some TCP socket too (other test files listen on
    // loopback meanwhile; CI of 4267baa drew one), and the tunnel gives that up as well, five tries at most.
    assert.ok(asked.length >= 2 && asked.length <= 6, `a second UDP socket was opened (${asked.length} in all)`);
    assert.notEqual(h.tunnel.addresses.udp, held);
    assert.equal(h.tunnel.addresses.tcp, h.tunnel.addresses.udp);
  } finally {
    await h.close();
    await new Promise((r) => holder.close(r));
  }
});

test("POCKETPROXY_HTTP_FRONT=auto: a device's HTTP ports go through the relay's front when a handshake measures its link far, back below half the limit, at most once per hold time", async () => {
  const rec = makeDevice(1, [
    { connection_id: 'con_s', protocol: 'socks5', port: 40001, allow_from: [], enabled: true },
  ]);
  const h = await startHarness([rec], {
    socks5Front: { port: 12346, mark: 0x7050, http: 'auto' },
    httpFrontAuto: { rttMs: 40, holdMs: 5_000 },
  });
  const sims: Array<Awaited<ReturnType<typeof h.device>>> = [];
  // A restarted agent: a new handshake of the same device over a link `delayMs` long one way.
  const handshake = async (delayMs: number) => {
    sims.at(-1)?.close();
    const d = await h.device(rec);
    d.sendDelayMs = delayMs;
    sims.push(d);
    await d.connect();
    // The relay has its confirmation (the frame the device sends at once, protocol §4).
    await waitFor('confirmed', () => {
      const rtt = h.tunnel.status().handshake_rtt_ms;
      return rtt !== null && h.api.callsTo('/api/internal/vpn/connected').length > 0;
    });
    await sleep(delayMs + 50);
  };
  const inFront = (script: string, port: number) =>
    new RegExp(`socks5_front \\{[^}]*\\b${port}\\b`).test(script) ||
    new RegExp(`add element ip pocketproxy socks5_front \\{ ${port} \\}`).test(script);
  try {
    const d = await connectDevice(h, rec);
    sims.push(d);
    // Near (loopback): the SOCKS5 port is the front's, the HTTP one DNAT'ed; the front still hears its device's answers.
    const first = h.runner.scripts().at(-1)!;
    assert.ok(inFront(first, 40001), first);
    assert.ok(!inFront(first, rec.port), first);
    assert.match(first, new RegExp(`socks5_front_devices \\{[^}]*192\\.168\\.255\\.2 \\. ${rec.port}`));
    assert.deepEqual(h.tunnel.status().http_front, { mode: 'auto', far_devices: 0 });

    // 60 ms one way: far. Only the HTTP port's element changes.
    let n = h.runner.scripts().length;
    await handshake(60);
    const toFar = await waitFor('HTTP port to the front', () => h.runner.scripts().slice(n).join('\n') || undefined);
    assert.match(toFar, new RegExp(`add element ip pocketproxy socks5_front \\{ ${rec.port} \\}`));
    assert.doesNotMatch(toFar, /socks5_front_devices|delete table/);
    assert.equal(h.tunnel.devices.byId.get(rec.device_id)!.far, true);
    assert.deepEqual(h.tunnel.status().http_front, { mode: 'auto', far_devices: 1 });

    // 25 ms: under the limit but not under half of it, the path stays.
    n = h.runner.scripts().length;
    await handshake(25);
    assert.equal(h.tunnel.devices.byId.get(rec.device_id)!.far, true);
    // Near again within the hold time: the path stays too.
    await handshake(0);
    assert.equal(h.tunnel.devices.byId.get(rec.device_id)!.far, true);
    await sleep(100);
    assert.equal(h.runner.scripts().length, n, 'no apply while the path holds');
    // After it, near: back to the DNAT.
    h.clock.offset += 6_000;
    await handshake(0);
    const toNear = await waitFor(
      'HTTP port back to the DNAT',
      () => h.runner.scripts().slice(n).join('\n') || undefined,
    );
    assert.match(toNear, new RegExp(`delete element ip pocketproxy socks5_front \\{ ${rec.port} \\}`));
    assert.doesNotMatch(toNear, /socks5_front_devices|delete table/);
    assert.deepEqual(h.tunnel.status().http_front, { mode: 'auto', far_devices: 0 });
  } finally {
    for (const s of sims) s.close();
    await h.close();
  }
});

test('nextFar: far at the limit, near below half of it, unchanged between, a change held until holdMs after the last', async () => {
  const { nextFar } = await import('../src/tunnel/firewall-sync.js');
  // First decision of an up period (no change yet): at once.
  assert.equal(nextFar(false, 10, 10, 60_000, undefined, 0), true);
  assert.equal(nextFar(false, 9.9, 10, 60_000, undefined, 0), false);
  // Between half and the limit: whatever it was.
  assert.equal(nextFar(true, 5, 10, 60_000, undefined, 0), true);
  assert.equal(nextFar(false, 9, 10, 60_000, undefined, 0), false);
  assert.equal(nextFar(true, 4.9, 10, 60_000, undefined, 0), false);
  // Held: a change within holdMs of the last waits; the same answer needs no wait.
  assert.equal(nextFar(true, 1, 10, 60_000, 1_000, 60_999), true);
  assert.equal(nextFar(true, 1, 10, 60_000, 1_000, 61_000), false);
  assert.equal(nextFar(false, 50, 10, 60_000, 1_000, 2_000), false);
  assert.equal(nextFar(true, 50, 10, 60_000, 1_000, 2_000), true);
});
