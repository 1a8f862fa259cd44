// The engines' suites again, with every server and the default dialer on LeanSockets
// (src/lean/): the same behaviour is asked of both socket kinds. Each suite file registers its tests
// when imported; this file only flips the default first.
import { useLeanSockets } from '../src/index.js';

useLeanSockets(true);
await import('./http.test.js');
await import('./http-limits.test.js');
await import('./socks5.test.js');
await import('./relay.test.js');
await import('./matrix.test.js');
await import('./response.test.js');
await import('./udp.test.js');

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createHttpProxy, LeanServer, LeanSocket } from '../src/index.js';
import { testDial, tcpEcho } from './helpers.js';

it('lean matrix: the servers and the default dialer really are on LeanSockets', async () => {
  const proxy = createHttpProxy({ authenticate: async () => null });
  assert.ok(proxy.server instanceof LeanServer);
  const port = await tcpEcho();
  const s = await testDial({ host: '127.0.0.1', port, principal: 'p' });
  assert.ok(s instanceof LeanSocket);
  s.destroy();
  await proxy.close();
});
