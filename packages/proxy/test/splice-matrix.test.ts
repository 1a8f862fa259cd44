// The engines' suites once more, on LeanSockets and with every established tunnel offered to the
// native relay (lean/handoff.ts over @pocketproxy/tun's SpliceEngine): a tunnel whose meter is
// unlimited leaves JS after its reply, one with limits stays in the JS pump, and the customer and
// the target must not be able to tell. The handoff's own cases (revocation, a budget set later,
// counts) are in handoff.test.ts.
import { useHandoff, useLeanSockets, createHandoff, type HandoffStats } from '../src/index.js';
import { SpliceEngine } from '@pocketproxy/tun';

const stats: HandoffStats = { handedOff: 0, declined: 0 };
useLeanSockets(true);
useHandoff(createHandoff(new SpliceEngine(), stats));
await import('./http.test.js');
await import('./http-limits.test.js');
await import('./socks5.test.js');
await import('./relay.test.js');
await import('./matrix.test.js');

import { after } from 'node:test';
import assert from 'node:assert/strict';

after(() => {
  // Both paths ran: the unlimited tunnels natively, the metered ones in JS.
  assert.ok(stats.handedOff >= 5, `handed off ${stats.handedOff}`);
  assert.ok(stats.declined >= 1, `declined ${stats.declined}`);
});
