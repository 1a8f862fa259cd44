// The HTTP and SOCKS5 proxies' suites once more with the native front (front/connection.ts over
// @pocketproxy/tun's SpliceEngine): the engine accepts, plain CONNECTs of unlimited customers (and an
// HTTP customer's last GET) are served there, failures are answered there, and everything else
// (absolute-form requests with keep-alive, heads the parser refuses, metered customers, SOCKS5 UDP
// ASSOCIATE and BIND, no-auth greetings) is adopted by the JS path. The customer must not be able to
// tell. The fronts' own cases (revocation, counts, caps) are in front.test.ts and socks5-front.test.ts.
import { createHandoff, useFront, useHandoff, useLeanSockets, type HandoffStats } from '../src/index.js';
import { openTcpFd, SpliceEngine } from '@pocketproxy/tun';

const engine = new SpliceEngine();
const stats: HandoffStats = { handedOff: 0, declined: 0 };
useLeanSockets(true);
useHandoff(createHandoff(engine, stats));
useFront({ engine, openFd: (family, localAddress) => openTcpFd(family, localAddress) });
await import('./http.test.js');
await import('./http-limits.test.js');
await import('./matrix.test.js');
await import('./socks5.test.js');
await import('./udp.test.js');

import { after } from 'node:test';
import assert from 'node:assert/strict';

after(() => {
  // All three ways ran: CONNECTs joined in the engine, failures answered there, the rest adopted.
  const f = engine.frontStats();
  assert.ok(f.joined >= 4, `joined ${f.joined}`);
  assert.ok(f.answered >= 10, `answered ${f.answered}`);
  assert.ok(f.adopted >= 10, `adopted ${f.adopted}`);
  // Nothing left waiting in the engine.
  assert.equal(f.waiting, 0);
  assert.equal(f.unauthenticated, 0);
});
