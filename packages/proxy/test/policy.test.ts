// Destination policy: every special-purpose range, IPv6 embeddings, deny lists, DNS rebinding.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { isForbiddenAddress, addressCategory, createPolicyDialer, validatePolicy } from '../src/index.js';
import { testResolve } from './helpers.js';

it('classifies special-purpose addresses', () => {
  const cases: Array<[string, string]> = [
    ['8.8.8.8', 'public'],
    ['2001:4860:4860::8888', 'public'],
    ['198.51.100.7', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.5.4', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['100.127.255.254', 'private'],
    ['fd00::1', 'private'],
    ['fc12::1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['239.1.2.3', 'multicast'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:8.8.8.8', 'public'],
    ['64:ff9b::a00:1', 'private'],
    ['2002:a9fe:a9fe::1', 'link-local'],
    ['::127.0.0.1', 'loopback'],
    ['172.32.0.1', 'public'],
    ['100.128.0.1', 'public'],
    ['not-an-ip', 'invalid'],
  ];
  for (const [ip, cat] of cases) assert.equal(addressCategory(ip), cat, ip);
});

it('applies allowPrivate / allowLoopback / denyCidrs', () => {
  assert.equal(isForbiddenAddress('8.8.8.8'), false);
  assert.equal(isForbiddenAddress('127.0.0.1'), true);
  assert.equal(isForbiddenAddress('127.0.0.1', { allowLoopback: true }), false);
  assert.equal(isForbiddenAddress('::ffff:127.0.0.1', { allowLoopback: true }), false);
  assert.equal(isForbiddenAddress('10.1.1.1'), true);
  assert.equal(isForbiddenAddress('10.1.1.1', { allowPrivate: true }), false);
  assert.equal(isForbiddenAddress('169.254.169.254', { allowPrivate: true, allowLoopback: true }), true);
  const tunnel = { allowPrivate: true, denyCidrs: ['192.168.255.0/24', '2001:db8::/32'] };
  assert.equal(isForbiddenAddress('192.168.255.9', tunnel), true);
  assert.equal(isForbiddenAddress('::ffff:192.168.255.9', tunnel), true);
  assert.equal(isForbiddenAddress('192.168.254.9', tunnel), false);
  assert.equal(isForbiddenAddress('2001:db8::5', tunnel), true);
  assert.equal(isForbiddenAddress('garbage', { allowPrivate: true, allowLoopback: true }), true);
  assert.throws(() => validatePolicy({ denyCidrs: ['10.0.0.0/33'] }));
});

it('the policy dialer checks every resolved address (no DNS rebinding)', async () => {
  const dial = createPolicyDialer({ policy: { allowLoopback: false }, resolve: testResolve, connectTimeoutMs: 500 });
  await assert.rejects(dial({ host: 'rebind.test', port: 80, principal: 'p' }), {
    code: 'PP_ERR_PROXY_FORBIDDEN_DESTINATION',
  });
  // Verdicts are remembered per address: the second time is refused just the same.
  await assert.rejects(dial({ host: 'rebind.test', port: 80, principal: 'p' }), {
    code: 'PP_ERR_PROXY_FORBIDDEN_DESTINATION',
  });
  await assert.rejects(dial({ host: '[::1]', port: 80, principal: 'p' }), {
    code: 'PP_ERR_PROXY_FORBIDDEN_DESTINATION',
  });
  await assert.rejects(dial({ host: 'nx.test', port: 80, principal: 'p' }), { code: 'PP_ERR_PROXY_DNS_NOT_FOUND' });
});

it('binds the egress address per family', async () => {
  const dial = createPolicyDialer({
    policy: { allowLoopback: true },
    resolve: testResolve,
    bindAddress: { ipv4: '127.0.0.1' },
  });
  await assert.rejects(dial({ host: '::1', port: 9, principal: 'p' }), { code: 'PP_ERR_PROXY_NETWORK_UNREACHABLE' });
});

it('openSocket makes the socket of each attempt (family and bind address passed); its errors are classified', async () => {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.end('hi');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const calls: Array<[number, string | undefined]> = [];
    const dial = createPolicyDialer({
      policy: { allowLoopback: true },
      resolve: testResolve,
      bindAddress: { ipv4: '127.0.0.1' },
      openSocket: (family, local) => {
        calls.push([family, local]);
        return new net.Socket({ allowHalfOpen: true });
      },
    });
    const s = await dial({ host: 'echo.test', port, principal: 'p' });
    assert.deepEqual(calls, [[4, '127.0.0.1']]);
    assert.equal(s.remotePort, port);
    s.destroy();
    // undefined: net.connect's own socket.
    const plain = createPolicyDialer({
      policy: { allowLoopback: true },
      resolve: testResolve,
      openSocket: () => undefined,
    });
    (await plain({ host: '127.0.0.1', port, principal: 'p' })).destroy();
    // A factory that throws (e.g. EADDRNOTAVAIL after the egress address went away) is one failed attempt.
    const failing = createPolicyDialer({
      policy: { allowLoopback: true },
      resolve: testResolve,
      openSocket: () => {
        throw Object.assign(new Error('bind: address not available'), { code: 'EADDRNOTAVAIL' });
      },
    });
    await assert.rejects(failing({ host: '127.0.0.1', port, principal: 'p' }), {
      code: 'PP_ERR_PROXY_NETWORK_UNREACHABLE',
    });
  } finally {
    server.close();
  }
});
