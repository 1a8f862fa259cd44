// setTcpFlag on real loopback sockets. Its effect on the wire (the request's ACK riding the answer,
// answer and FIN in one segment) is asserted by counting tunnel frames in apps/server's dataplane lab test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTcpFlag } from '../src/index.js';

test('setTcpFlag: quickack on a listener and its connections, cork before end; bytes and EOF still arrive; false without an fd', async () => {
  const server = net.createServer({ allowHalfOpen: true });
  assert.equal(setTcpFlag(server, 'quickack', false), false, 'not listening yet: no fd');
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    assert.equal(setTcpFlag(server, 'quickack', false), true);
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await new Promise((r) => client.once('connect', r));
    const sock = await accepted;
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
