// setTcpFlag on real loopback sockets. Its effect on the wire (the request's ACK riding the answer,
// answer and FIN in one segment) is asserted by counting tunnel frames in apps/server's dataplane lab test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { openTcpSocket, setTcpFlag, setThreadName } from '../src/index.js';

test('setTcpFlag: quickack on a listener and its connections, cork before end; bytes and EOF still arrive; false without an fd', async () => {
  const server = net.createServer({ allowHalfOpen: true });
  assert.equal(setTcpFlag(server, 'quickack', false), false, 'not listening yet: no fd');
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    assert.equal(setTcpFlag(server, 'quickack', false), true);
    assert.equal(setTcpFlag(server, 'defer_accept', true), true);
    // Nagle off on the listener (inherited by accepted sockets; Node's per-socket call skipped).
    assert.equal(setTcpFlag(server, 'nodelay', true), true);
    (server as net.Server & { noDelay: boolean }).noDelay = false;
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await new Promise((r) => client.once('connect', r));
    // Deferred accept: the server sees the connection once the client has said something.
    client.write('hello');
    const sock = await accepted;
    const first = await new Promise<Buffer>((r) => sock.once('data', r));
    assert.equal(first.toString(), 'hello');
    assert.equal(setTcpFlag(client, 'quickack', false), true);
    const received: Buffer[] = [];
    client.on('data', (d) => received.push(d));
    const ended = new Promise((r) => client.once('end', r));
    sock.cork();
    sock.write('answer head\r\n\r\n');
    sock.write('body');
    assert.equal(setTcpFlag(sock, 'cork', true), true);
    sock.end();
    await ended;
    assert.equal(Buffer.concat(received).toString(), 'answer head\r\n\r\nbody');
    client.destroy();
    sock.destroy();
    await new Promise((r) => sock.once('close', r));
    assert.equal(setTcpFlag(sock, 'cork', true), false, 'closed socket: no fd');
  } finally {
    server.close();
  }
});

test('openTcpSocket: bound to the given address, port chosen at connect; adopted and connected by Node; bad input refused', async () => {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.end('answer');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const s = openTcpSocket(4, '127.0.0.1', { quietAck: true });
    const got: Buffer[] = [];
    s.on('data', (d) => got.push(d));
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.connect({ host: '127.0.0.1', port }, resolve);
    });
    assert.equal(s.localAddress, '127.0.0.1');
    assert.ok(s.localPort! > 0);
    s.write('request');
    await new Promise((r) => s.once('end', r));
    assert.equal(Buffer.concat(got).toString(), 'answer');
    s.destroy();
    // Refused target: an ordinary Node socket error.
    const r = openTcpSocket(4, undefined, { quietAck: false });
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => {
      r.once('error', resolve);
      r.connect({ host: '127.0.0.1', port: 1 });
    });
    assert.equal(err.code, 'ECONNREFUSED');
    // An address this host does not have; an address of the other family.
    assert.throws(
      () => openTcpSocket(4, '192.0.2.77', { quietAck: true }),
      (e: any) => e.code === 'EADDRNOTAVAIL' && e.syscall === 'bind',
    );
    assert.throws(() => openTcpSocket(4, '::1', { quietAck: true }), TypeError);
    assert.throws(() => openTcpSocket(6, 'not-an-ip', { quietAck: true }), TypeError);
  } finally {
    server.close();
  }
});

test('setThreadName: names the calling thread (what /proc/<pid>/task/<tid>/comm shows); bad names refused', () => {
  const before = readFileSync('/proc/thread-self/comm', 'utf8').trim();
  try {
    assert.equal(setThreadName('pp-test-thread'), true);
    assert.equal(readFileSync('/proc/thread-self/comm', 'utf8').trim(), 'pp-test-thread');
  } finally {
    setThreadName(before);
  }
  assert.equal(setThreadName(''), false, 'empty: refused (the addon throws, the wrapper answers false)');
  assert.equal(setThreadName('a-name-longer-than-15'), false);
});
