// Scale check with the real nft: render + load N port elements, re-apply (the restart path),
// a single-element update at that size, and a counter read. Prints how long each `nft -f` took.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createFirewall,
  createRunner,
  type CommandRunner,
  type FirewallState,
  type PortForward,
} from '../src/index.js';
import { base } from './fixtures.js';
import { needsRoot, withNamespaces } from './lab.js';

/** `ports` port elements over devices of 3 ports each, in a /16 device subnet. */
function state(ports: number): FirewallState {
  const list: PortForward[] = [];
  for (let i = 0; i < ports; i++) {
    const host = 2 + Math.floor(i / 3);
    list.push({
      port: 20000 + i,
      proto: i % 3 === 2 ? 'udp' : 'tcp',
      vpnIp: `10.200.${host >> 8}.${host & 255}`,
      targetPort: [8080, 1080, 1081][i % 3]!,
      enabled: true,
      ...(i % 10 === 0 ? { allowFrom: ['198.51.100.0/24'] } : {}),
    });
  }
  return { ...base, deviceSubnet: '10.200.0.0/16', tunnelAddress: '10.200.0.1', ports: list };
}

function timed(inner: CommandRunner, log: number[]): CommandRunner {
  return {
    async run(cmd, args, stdin) {
      const t0 = performance.now();
      try {
        return await inner.run(cmd, args, stdin);
      } finally {
        log.push(performance.now() - t0);
      }
    },
  };
}

for (const size of [5_000, 30_000]) {
  test(`scale: ${size} port elements`, async (t) => {
    if (!(await needsRoot(t))) return;
    await withNamespaces(['scale'], async ({ scale }) => {
      const nftMs: number[] = [];
      const fw = createFirewall({ run: timed(createRunner({ netns: scale! }), nftMs) });
      const s = state(size);
      let t0 = performance.now();
      const full = await fw.apply(s);
      const fullTotal = performance.now() - t0;
      assert.equal(full.kind, 'full');
      const fullNft = nftMs.at(-1)!;

      t0 = performance.now();
      const again = await createFirewall({ run: timed(createRunner({ netns: scale! }), nftMs) }).apply(s);
      assert.equal(again.kind, 'full');
      const replaceNft = nftMs.at(-1)!;

      // One device reconnects with a new address: 3 map elements change.
      const next = {
        ...s,
        ports: s.ports.map((p) => (p.port >= 20000 && p.port < 20003 ? { ...p, vpnIp: '10.200.250.250' } : p)),
      };
      t0 = performance.now();
      const upd = await fw.apply(next);
      const updTotal = performance.now() - t0;
      assert.equal(upd.kind, 'update');
      assert.equal(upd.lines, 4);
      const updNft = nftMs.at(-1)!;

      t0 = performance.now();
      const counters = await fw.readCounters();
      const readMs = performance.now() - t0;
      assert.equal(counters.size, size);

      const f = (n: number) => `${n.toFixed(0)} ms`;
      console.error(
        `scale ${size} ports: full load nft -f ${f(fullNft)} (apply total ${f(fullTotal)}, ${full.lines} lines); ` +
          `replace existing table nft -f ${f(replaceNft)}; one-device update nft -f ${f(updNft)} (apply total ${f(updTotal)}); ` +
          `readCounters ${f(readMs)}`,
      );
    });
  });
}
