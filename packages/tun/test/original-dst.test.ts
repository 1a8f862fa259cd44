// Without REDIRECT (the lab test covers that): error paths and a tracked plain connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { getOriginalDst, socketFd } from '../src/index.js';

test('socketFd: a socket that is not connected has no fd', () => {
  assert.throws(
    () => socketFd(new net.Socket()),
    (e: any) => e.code === 'PP_ERR_TUN_NO_FD',
  );
});

test('getOriginalDst on a loopback connection: its own address, or NO_ORIGINAL_DST when untracked', async () => {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const client = net.connect(port, '127.0.0.1');
    const sock = await accepted;
    try {
      const dst = getOriginalDst(sock);
      assert.deepEqual(dst, { address: '127.0.0.1', port, family: 'IPv4' });
    } catch (e: any) {
      assert.equal(e.code, 'PP_ERR_TUN_NO_ORIGINAL_DST'); // nf_conntrack not loaded in this namespace
    }
    client.destroy();
    sock.destroy();
  } finally {
    server.close();
  }
});
