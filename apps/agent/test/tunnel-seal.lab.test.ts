// Lab test (root): the agent tunnel's native seal path end to end with the kernel TUN and the
// addon (host.ts runTunnel + kernelTun) in a throwaway network namespace: a transfer routed into
// the TUN reaches the relay in order, sealed in C++ (the TUN's sealNative), and with
// spec.nativeSeal false (POCKETPROXY_NATIVE_SEAL=0) all through JS. The namespace has only lo and
// the TUN: nothing leaves it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { addonAvailable } from '@pocketproxy/tun';

const ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
if (!ROOT) console.error('tunnel-seal.lab.test: SKIPPED — needs root (network namespace, /dev/net/tun)');
const FIXTURE = fileURLToPath(new URL('./fixtures/tunnel-seal-probe.ts', import.meta.url));

async function probe(mode: 'on' | 'off'): Promise<any> {
  const ns = `pph9-${randomBytes(4).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.NODE_OPTIONS;
    const child = spawn(
      'ip',
      ['netns', 'exec', ns, process.execPath, '--import', 'tsx', '--conditions=source', FIXTURE, mode],
      { stdio: ['ignore', 'pipe', 'pipe'], env },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 40_000);
    const code = await new Promise<number | null>((r) => child.on('close', r));
    clearTimeout(timer);
    assert.equal(code, 0, `fixture exited ${code}: ${err}`);
    const line = out
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .pop()!;
    console.error(`tunnel-seal.lab ${mode}: ${line}`);
    return JSON.parse(line);
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

test('agent tunnel over the kernel TUN: a transfer is sealed in C++ (sealNative) and one back is opened in C++ (framesInNative), each in order; POCKETPROXY_NATIVE_SEAL=0: both through JS', {
  skip: ROOT ? false : 'needs root',
  timeout: 120_000,
}, async () => {
  assert.ok(addonAvailable(), 'addon not built: npm run build -w @pocketproxy/tun');
  const on = await probe('on');
  assert.equal(on.sealingAtStart, true);
  assert.equal(on.received, 300);
  assert.equal(on.inOrder, true);
  assert.ok(on.sealNative >= 300, `sealNative ${on.sealNative}`);
  assert.equal(on.sealErrors, 0);
  assert.equal(on.framesOutNative, on.sealNative);
  assert.ok(on.framesOutUdp >= on.sealNative);
  // The other way: opened in C++ by the socket's open route, in order, counted in framesIn.udp.
  assert.equal(on.nativeOpening, true);
  assert.equal(on.backReceived, 300);
  assert.equal(on.backInOrder, true);
  assert.ok(on.framesInNative >= 300, `framesInNative ${on.framesInNative}`);
  assert.ok(on.framesInUdp >= on.framesInNative);
  const off = await probe('off');
  assert.equal(off.received, 300);
  assert.equal(off.inOrder, true);
  assert.equal(off.sealNative ?? 0, 0);
  assert.equal(off.framesOutNative, 0);
  assert.ok(off.framesOutUdp >= 300);
  assert.equal(off.backReceived, 300);
  assert.equal(off.backInOrder, true);
  assert.equal(off.framesInNative, 0);
  assert.ok(off.framesInUdp >= 300);
});
