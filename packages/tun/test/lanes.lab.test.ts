// Lab test (root): a device's lanes in the kernel (native/lanes.cc) — a multi-queue TUN steered by the
// relay's flow hash, and a front listener whose SO_REUSEPORT group picks its socket by the TUN queue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addonAvailable } from '../src/index.js';
import { requireRoot, runFixture } from './fixtures/netns.js';

test("lanes: a flow written into queue k is accepted by lane k's listener, and every packet the device answers with (SYN-ACK first) leaves by queue k; ICMP answers leave by queue 0; a one-queue TUN refuses a multi-queue open", async (t) => {
  if (!requireRoot(t, 'lanes.lab.test.ts', 'network namespace + /dev/net/tun + BPF')) return;
  assert.ok(addonAvailable(), 'addon not built: npm run build -w @pocketproxy/tun');
  const out = await runFixture<any>('tun-lanes.ts', [], 30_000);
  assert.equal(out.flows.length, 24);
  for (const [i, f] of out.flows.entries()) {
    assert.equal(f.synack, f.lane, `flow ${i}: SYN-ACK by the SYN's queue`);
    assert.equal(f.engine, f.lane === 0 ? 'a' : 'b', `flow ${i}: accepted by its lane's engine`);
    assert.equal(f.rst, f.lane, `flow ${i}: the reset by the same queue`);
  }
  const lanes = new Set(out.flows.map((f: any) => f.lane));
  assert.equal(lanes.size, 2, 'both lanes used');
  // ICMP: every echo reply by queue 0, whichever queue its request came in on.
  assert.equal(out.echoes.length, 24);
  for (const [i, e] of out.echoes.entries()) assert.equal(e.reply, 0, `echo ${i} (written into queue ${e.wrote})`);
  // A one-queue TUN of the name: the multi-queue open fails with the code apps/agent's `--lanes auto` takes
  // for "no multi-queue here, run one lane" (agent.ts bringUp).
  assert.equal(out.mismatch, 'PP_ERR_TUN_OPEN_FAILED');
});
