// Stamped connections on the native fronts, with real stamped SYNs (front/connection.ts TransparentFront,
// @pocketproxy/tun syn_stamp.h): in a private network namespace, fixtures/stamped-child.ts writes a customer's
// TCP packets into a TUN, so the listeners' kernel saves SYNs carrying a stamp, a forged one or none. Checked:
// a stamped connection is carried to the stamp's destination with nothing of the protocol answered (HTTP and
// SOCKS5); one JS does not vouch for gets a reset and no connection; a malformed stamp and no stamp are proxy
// requests like any other (no credentials: refused); a limited meter relays in JS and counts every byte; a
// listener that reads no SYNs (ProxyServer.readStamps) takes a stamped SYN as a plain connection, and reads
// the next once switched on.
// Needs root (a namespace, a TUN); skips loudly otherwise.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { canRunLab } from '@pocketproxy/testkit';

const ROOT = canRunLab();
if (!ROOT) console.error('front-stamped.lab.test: SKIPPED — needs root (a network namespace and a TUN)');

interface Case {
  synAck: boolean;
  got: string;
  rst: boolean;
  dialled: number;
}

it('stamped SYNs on the HTTP and SOCKS5 fronts: carried, refused, forged, absent, metered, not read, switched', {
  skip: !ROOT,
}, () => {
  const ns = `pp-stamp-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  let out: ReturnType<typeof spawnSync>;
  try {
    out = spawnSync(
      'ip',
      [
        'netns',
        'exec',
        ns,
        process.execPath,
        '--import',
        'tsx',
        '--conditions=source',
        new URL('./fixtures/stamped-child.ts', import.meta.url).pathname,
      ],
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NODE_TEST_CONTEXT: '' } },
    );
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
  const line = String(out.stdout).trim().split('\n').at(-1) ?? '';
  assert.ok(line.startsWith('{'), `the child's results (exit ${out.status}): ${out.stdout}\n${out.stderr}`);
  const r = JSON.parse(line) as Record<string, Case> & {
    metered: { up: number; down: number };
    vouched: string[];
    stats: { http: { authFailures: number }; front: { joined: number; adopted: number } };
  };
  const hello = '\x16\x03\x01 not a proxy request';
  // Carried: the target's echo and nothing else (no 200, no SOCKS5 reply), one connection dialled.
  for (const k of ['http_stamped', 'socks_stamped']) {
    assert.deepEqual(
      { ...r[k], rst: false },
      { synAck: true, got: hello, rst: false, dialled: 1 },
      `${k}: ${JSON.stringify(r[k])}`,
    );
  }
  // Not vouched for: a reset, the destination never dialled.
  assert.equal(r.refused!.rst, true, JSON.stringify(r.refused));
  assert.equal(r.refused!.dialled, 0);
  assert.equal(r.refused!.got, '');
  // A malformed stamp is no stamp: the CONNECT is a proxy request without credentials (407), never a tunnel.
  assert.match(r.malformed_stamp!.got, /^HTTP\/1\.1 407 /, JSON.stringify(r.malformed_stamp));
  assert.equal(r.malformed_stamp!.dialled, 0);
  // No stamp: the TLS bytes wait as an unfinished request head (the head deadline ends them), never a tunnel.
  assert.ok(!r.unstamped!.got.includes(hello), JSON.stringify(r.unstamped));
  assert.equal(r.unstamped!.dialled, 0);
  // Vouch asked only for the stamped ones read (2 carried, 1 refused, 1 limited, 1 switched on, in order).
  assert.deepEqual(r.vouched, ['10.77.0.9', '10.77.0.9', '10.77.0.66', '10.77.0.9', '10.77.0.9']);
  // A listener that reads no SYNs: the stamped SYN's bytes wait as a request head, never a tunnel; switched on,
  // the next one is carried; switched off again, not.
  for (const k of ['quiet_stamped', 'switched_off']) {
    assert.ok(r[k]!.synAck && !r[k]!.got.includes(hello), `${k}: ${JSON.stringify(r[k])}`);
    assert.equal(r[k]!.dialled, 0, k);
  }
  assert.deepEqual({ ...r.switched_on, rst: false }, { synAck: true, got: hello, rst: false, dialled: 1 });
  // A limited meter: relayed in JS (adopted), its bytes counted both ways.
  assert.equal(r.limited!.got, hello, JSON.stringify(r.limited));
  assert.equal(r.limited!.dialled, 1);
  assert.ok(r.metered.up >= 2 * hello.length && r.metered.down >= 2 * hello.length, JSON.stringify(r.metered));
  assert.ok(r.stats.front.joined >= 2 && r.stats.front.adopted >= 1, JSON.stringify(r.stats.front));
});
