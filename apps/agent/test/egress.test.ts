// Egress pinning on loopback: with an egress interface, TCP sockets (openSocket gets the device)
// and UDP sockets (pinned in their bind callback) are bound to the interface with SO_BINDTODEVICE
// as well as to its address; a socket that cannot be pinned is never used. The route choice this
// changes needs two uplinks: test/egress.lab.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import net from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';
import { isPPError } from '@pocketproxy/errors';
import { addonAvailable, openTcpSocket } from '@pocketproxy/tun';
import * as http from 'node:http';
import { createEgress, type EgressOptions } from '../src/proxy/egress.js';
import { fetchPublicIp } from '../src/api-client.js';

const skip = !addonAvailable() && 'the @pocketproxy/tun addon is not built';
// The egress interface's address: 127.0.0.2 (lo holds all of 127/8), so the targets on 127.0.0.1
// are not "own addresses" for the destination policy and the source address shows the bind.
const SRC = '127.0.0.2';
const ifs = (name: string) => () => ({
  [name]: [
    {
      address: SRC,
      family: 'IPv4',
      netmask: '255.0.0.0',
      mac: '00:00:00:00:00:00',
      internal: true,
      cidr: `${SRC}/8`,
    } as NetworkInterfaceInfo,
  ],
});

function egressOn(name: string, extra: Partial<EgressOptions> = {}) {
  const devices: (string | undefined)[] = [];
  const warnings: string[] = [];
  const egress = createEgress({
    interface: name,
    interfaces: ifs(name),
    tunnelSubnet: '192.168.255.0/24',
    allowPrivate: true,
    allowLoopback: true,
    openSocket: (family, local, device) => {
      devices.push(device);
      return openTcpSocket(family, local, { device });
    },
    logger: { warn: (_o, msg) => warnings.push(msg) },
    ...extra,
  });
  return { egress, devices, warnings };
}

async function tcpServer() {
  const peers: string[] = [];
  const server = net.createServer((s) => {
    peers.push(s.remoteAddress!);
    s.on('error', () => {});
    s.end('hello');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, peers, port: (server.address() as net.AddressInfo).port };
}

async function udpServer() {
  const seen: string[] = [];
  const rx = dgram.createSocket('udp4');
  rx.on('message', (m, r) => {
    seen.push(`${r.address} ${m}`);
    rx.send(`re:${m}`, r.port, r.address);
  });
  await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r));
  return { rx, seen, port: rx.address().port };
}

test('egress pinned to lo: the TCP dial gets device "lo" and leaves from the interface address; UDP pinned, answered', {
  skip,
}, async () => {
  const { egress, devices, warnings } = egressOn('lo');
  const t = await tcpServer();
  const u = await udpServer();
  try {
    const s = await egress.dial({ host: '127.0.0.1', port: t.port, principal: 'p' });
    assert.equal(s.localAddress, SRC);
    const got = await new Promise<string>((r) => s.once('data', (d) => r(d.toString())));
    assert.equal(got, 'hello');
    s.destroy();
    assert.deepEqual(devices, ['lo']);
    assert.deepEqual(t.peers, [SRC]);

    const us = egress.createUdpSocket('udp4');
    const answer = new Promise<string>((r) => us.once('message', (m) => r(m.toString())));
    us.send('ping', u.port, '127.0.0.1'); // before the bind completed: queued, sent pinned
    assert.equal(await answer, 're:ping');
    assert.deepEqual(u.seen, [`${SRC} ping`]);
    us.close();
    assert.deepEqual(warnings, []);
  } finally {
    t.server.close();
    u.rx.close();
  }
});

test('egress pinned to an interface that does not exist: the TCP dial is network unreachable, the UDP socket is closed, nothing leaves unpinned', {
  skip,
}, async () => {
  const { egress, devices, warnings } = egressOn('ppnosuch0');
  const t = await tcpServer();
  const u = await udpServer();
  try {
    await assert.rejects(egress.dial({ host: '127.0.0.1', port: t.port, principal: 'p' }), (e: unknown) => {
      assert.ok(isPPError(e) && e.code === 'PP_ERR_PROXY_NETWORK_UNREACHABLE', String(e));
      return true;
    });
    assert.ok(devices.length >= 1 && devices.every((d) => d === 'ppnosuch0'));
    // Default opener (no openSocket given) behaves the same.
    const { egress: plain } = egressOn('ppnosuch0', { openSocket: undefined });
    await assert.rejects(
      plain.dial({ host: '127.0.0.1', port: t.port, principal: 'p' }),
      (e: unknown) => isPPError(e) && e.code === 'PP_ERR_PROXY_NETWORK_UNREACHABLE',
    );

    const us = egress.createUdpSocket('udp4');
    us.on('error', () => {});
    const closed = new Promise((r) => us.once('close', r));
    us.send('leak?', u.port, '127.0.0.1');
    await closed;
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(u.seen, [], 'the queued datagram was dropped, not sent unpinned');
    assert.deepEqual(t.peers, []);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /could not be pinned/);
  } finally {
    t.server.close();
    u.rx.close();
  }
});

test('egress with bindToDevice: false binds the address only (openSocket gets no device)', { skip }, async () => {
  const { egress, devices } = egressOn('ppnosuch0', { bindToDevice: false });
  const t = await tcpServer();
  const u = await udpServer();
  try {
    const s = await egress.dial({ host: '127.0.0.1', port: t.port, principal: 'p' });
    assert.equal(s.localAddress, SRC);
    s.destroy();
    assert.deepEqual(devices, [undefined]);
    const us = egress.createUdpSocket('udp4');
    const answer = new Promise<string>((r) => us.once('message', (m) => r(m.toString())));
    us.send('x', u.port, '127.0.0.1');
    assert.equal(await answer, 're:x');
    us.close();
  } finally {
    t.server.close();
    u.rx.close();
  }
});

test('fetchPublicIp through the egress device: pinned socket from the egress address; an unknown device fails the request', {
  skip,
}, async () => {
  const server = http.createServer((req, res) => res.end(JSON.stringify({ ip: req.socket.remoteAddress })));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/api/public/ip`;
  try {
    assert.equal(await fetchPublicIp(url, { localAddress: SRC, device: 'lo' }), SRC);
    assert.equal(await fetchPublicIp(url, { device: 'lo' }), '127.0.0.1');
    // A name is resolved before the pinned socket is made (an adopted socket left unconnected while
    // connect() looks the name up fails with ENOTCONN).
    assert.equal(await fetchPublicIp(url.replace('127.0.0.1', 'localhost'), { localAddress: SRC, device: 'lo' }), SRC);
    await assert.rejects(fetchPublicIp(url, { localAddress: SRC, device: 'ppnosuch0' }), (e: unknown) => {
      assert.ok(isPPError(e) && e.code === 'PP_ERR_AGENT_API' && /ppnosuch0/.test(e.message), String(e));
      return true;
    });
  } finally {
    server.close();
  }
});
