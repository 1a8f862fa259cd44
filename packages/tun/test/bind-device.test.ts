// SO_BINDTODEVICE on loopback: openTcpSocket({device}) and bindToDevice for net and dgram sockets.
// That pinning changes which interface a packet leaves by is shown where there are two uplinks:
// apps/agent/test/egress.lab.test.ts (a lab device with Wi-Fi and cellular).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import net from 'node:net';
import { isPPError } from '@pocketproxy/errors';
import { addonAvailable, bindToDevice, openTcpSocket, validateInterfaceName } from '../src/index.js';

const NO_SUCH = 'ppnosuch0';
const code = (c: string) => (e: unknown) => isPPError(e) && e.code === c;

async function echoServer(): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', (d) => s.end(`echo:${d}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as net.AddressInfo).port };
}

async function roundTrip(s: net.Socket, port: number): Promise<string> {
  const got: Buffer[] = [];
  s.on('data', (d) => got.push(d));
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.connect({ host: '127.0.0.1', port }, resolve);
  });
  s.write('hi');
  await new Promise((r) => s.once('end', r));
  s.destroy();
  return Buffer.concat(got).toString();
}

test('interface names: 1-15 bytes, no / : NUL or whitespace, not . or ..', () => {
  for (const ok of ['lo', 'wwan0', 'eth0.100', 'wlp2s0', 'a'.repeat(15), 'rmnet_data0']) validateInterfaceName(ok);
  for (const bad of [
    '',
    'a'.repeat(16),
    'é'.repeat(8),
    'eth0/1',
    '../x',
    'eth 0',
    ' lo',
    'lo\n',
    'eth0:1',
    '.',
    '..',
    'lo\0x',
  ]) {
    assert.throws(() => validateInterfaceName(bad), code('PP_ERR_TUN_INVALID_INTERFACE'), JSON.stringify(bad));
  }
});

test('openTcpSocket({device: "lo"}) reaches 127.0.0.1, with and without a bind address', {
  skip: !addonAvailable() && 'addon not built',
}, async () => {
  const { server, port } = await echoServer();
  try {
    const a = openTcpSocket(4, '127.0.0.1', { quietAck: true, device: 'lo' });
    assert.equal(await roundTrip(a, port), 'echo:hi');
    const b = openTcpSocket(4, undefined, { device: 'lo' });
    assert.equal(await roundTrip(b, port), 'echo:hi');
  } finally {
    server.close();
  }
});

test('openTcpSocket: an interface that does not exist fails with PP_ERR_TUN_BIND_DEVICE_FAILED (ENODEV); bad names are refused before any system call', {
  skip: !addonAvailable() && 'addon not built',
}, () => {
  assert.throws(
    () => openTcpSocket(4, '127.0.0.1', { device: NO_SUCH }),
    (e: any) => {
      assert.ok(isPPError(e) && e.code === 'PP_ERR_TUN_BIND_DEVICE_FAILED', String(e));
      assert.equal(e.status, 500);
      assert.match(e.message, /ppnosuch0.*ENODEV/);
      assert.equal((e.cause as { code?: string }).code, 'ENODEV');
      return true;
    },
  );
  for (const bad of ['', 'x'.repeat(16), 'a/b', 'lo 1'])
    assert.throws(() => openTcpSocket(4, undefined, { device: bad }), code('PP_ERR_TUN_INVALID_INTERFACE'));
  // The address errors are unchanged (system errors the dialer classifies).
  assert.throws(
    () => openTcpSocket(4, '192.0.2.77', { device: 'lo' }),
    (e: any) => e.code === 'EADDRNOTAVAIL' && e.syscall === 'bind',
  );
});

test('bindToDevice: a connected net.Socket; errors for no fd, unknown interface and bad names', {
  skip: !addonAvailable() && 'addon not built',
}, async () => {
  const { server, port } = await echoServer();
  try {
    const s = net.connect({ host: '127.0.0.1', port });
    assert.throws(() => bindToDevice(s, 'lo'), code('PP_ERR_TUN_NO_FD'), 'not connected yet: no fd');
    await new Promise((r) => s.once('connect', r));
    bindToDevice(s, 'lo');
    assert.throws(() => bindToDevice(s, NO_SUCH), code('PP_ERR_TUN_BIND_DEVICE_FAILED'));
    assert.throws(() => bindToDevice(s, 'bad name'), code('PP_ERR_TUN_INVALID_INTERFACE'));
    const got = new Promise<string>((r) => s.once('data', (d) => r(d.toString())));
    s.write('x');
    assert.equal(await got, 'echo:x');
    s.destroy();
  } finally {
    server.close();
  }
});

test('bindToDevice on a dgram socket: no fd before bind; pinned to lo in the bind callback, a datagram queued before the bind still arrives', {
  skip: !addonAvailable() && 'addon not built',
}, async () => {
  const rx = dgram.createSocket('udp4');
  await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r));
  const got = new Promise<string>((r) => rx.once('message', (m) => r(m.toString())));
  const s = dgram.createSocket('udp4');
  try {
    assert.throws(() => bindToDevice(s, 'lo'), code('PP_ERR_TUN_NO_FD'), 'a dgram socket has no fd before bind');
    let pinned: unknown = 'not called';
    s.bind({ address: '127.0.0.1', port: 0, exclusive: true }, () => {
      try {
        bindToDevice(s, 'lo');
        pinned = true;
      } catch (e) {
        pinned = e;
      }
    });
    // Sent while the bind is pending: dgram queues it until after the bind callback.
    s.send('queued', rx.address().port, '127.0.0.1');
    assert.equal(await got, 'queued');
    assert.equal(pinned, true);
    assert.throws(
      () => bindToDevice(s, NO_SUCH),
      (e: any) =>
        isPPError(e) && e.code === 'PP_ERR_TUN_BIND_DEVICE_FAILED' && (e.cause as { code?: string }).code === 'ENODEV',
    );
  } finally {
    s.close();
    rx.close();
  }
  assert.throws(() => bindToDevice(s, 'lo'), code('PP_ERR_TUN_NO_FD'), 'closed');
});
