// The addon under AddressSanitizer: the native relay, the transparent proxy's listener and the HTTP
// and SOCKS5 fronts (native/splice_relay.cc) face hostile customers, devices and origins, so their tests (random bytes
// and random cuts on both sides, forged and endless answers, caps, resets, half-closes) run again on
// a build with -fsanitize=address, loaded in place of the regular one by every test process (a
// `--require` hook of this test's own redirects the addon's require) with libasan preloaded; the addon's other unit tests (AEAD, offload parsing, batched UDP) too. Any invalid read
// or write, use after free or double free ends the run with a report. Leak checking is off: Node
// itself is not built for it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ADDON_PATH } from '../src/native.js';

const root = new URL('../../../', import.meta.url).pathname;
const TESTS = [
  'apps/server/test/tunnel-tproxy.test.ts',
  'apps/server/test/tunnel-tproxy-hostile.test.ts',
  // The relay's SOCKS5 front on the same listener: answers from the relay, passes, refusals, caps, cuts.
  'apps/server/test/socks5-front.test.ts',
  // HTTP CONNECT's early reply there: the device's answer head read off the pair, the memo's header reading.
  'apps/server/test/http-early-reply.test.ts',
  'packages/tun/test/splice.test.ts',
  // The fronts (accept, head or SOCKS5 handshake, connect, answer, adopt in the addon): their own
  // hostile cases and the proxy's HTTP and SOCKS5 suites through them.
  'packages/proxy/test/front.test.ts',
  'packages/proxy/test/socks5-front.test.ts',
  'packages/proxy/test/front-matrix.test.ts',
  // Answer bodies lent to the engine (lend(): a client socket it only writes to).
  'packages/proxy/test/body-handoff.test.ts',
  // The rest of the addon's unit tests: the AEAD, offload (GSO/GRO) parsing, batched UDP, TCP flags.
  'packages/tun/test/aead.test.ts',
  // The SYN stamp (its differential fuzz run feeds the C parser hostile bytes).
  'packages/tun/test/syn-stamp.test.ts',
  // ACK thinning's parser, the same way.
  'packages/tun/test/ack-filter.test.ts',
  'packages/tun/test/offload.test.ts',
  'packages/tun/test/udp.test.ts',
  'packages/tun/test/tcp-flags.test.ts',
  'packages/tun/test/addon.test.ts',
];

function libasan(): string | undefined {
  const r = spawnSync('g++', ['-print-file-name=libasan.so'], { encoding: 'utf8' });
  const path = r.status === 0 ? r.stdout.trim() : '';
  return path.startsWith('/') && existsSync(path) ? path : undefined;
}

test('the native relay and transparent listener tests pass on an AddressSanitizer build of the addon', async (t) => {
  const asan = process.platform === 'linux' ? libasan() : undefined;
  if (!asan) {
    console.error('\n*** SKIPPED: no libasan (g++ with AddressSanitizer is needed to build the addon with it) ***\n');
    t.skip('no libasan');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'pp-asan-'));
  try {
    cpSync(join(root, 'packages/tun/binding.gyp'), join(dir, 'binding.gyp'));
    cpSync(join(root, 'packages/tun/native'), join(dir, 'native'), { recursive: true });
    const flags = '-fsanitize=address -fno-omit-frame-pointer -g';
    // Against the installed Node's headers, as npm's nodedir setting has the regular build do (no download).
    const nodedir = process.env.npm_config_nodedir || dirname(dirname(process.execPath));
    const gyp = join(root, 'node_modules/node-gyp/bin/node-gyp.js');
    const build = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`], {
      cwd: dir,
      encoding: 'utf8',
      // binding.gyp asks node for node-addon-api's include path: from the project's node_modules.
      // No NODE_OPTIONS: the test runner's `--import tsx` does not resolve from the build's directory.
      env: {
        ...process.env,
        NODE_OPTIONS: '',
        CXXFLAGS: flags,
        LDFLAGS: '-fsanitize=address',
        NODE_PATH: join(root, 'node_modules'),
      },
      timeout: 10 * 60_000,
    });
    assert.equal(build.status, 0, `the sanitized build failed:\n${build.stdout}\n${build.stderr}`);
    const addon = join(dir, 'build/Release/pp_tun.node');
    const nm = spawnSync('nm', ['-D', addon], { encoding: 'utf8' });
    assert.match(nm.stdout, /__asan_/, 'the build is instrumented');

    // Every test process requires the sanitized build where it would require the regular one.
    const hook = join(dir, 'asan-hook.cjs');
    writeFileSync(
      hook,
      `const Module = require('node:module');
const load = Module._extensions['.node'];
Module._extensions['.node'] = (m, filename) => {
  if (filename !== ${JSON.stringify(ADDON_PATH)}) return load(m, filename);
  globalThis.ppAsanAddon = true;
  return load(m, ${JSON.stringify(addon)});
};
`,
    );
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      LD_PRELOAD: asan,
      ASAN_OPTIONS: 'detect_leaks=0:halt_on_error=1:exitcode=86',
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${hook} --import tsx --conditions=source`.trim(),
    };
    // A test runner of its own, not a child of this one (which would skip the files).
    delete env.NODE_TEST_CONTEXT;
    // The tests load this build, not the regular one.
    const which = spawnSync(
      process.execPath,
      [
        '-e',
        `import(${JSON.stringify(join(root, 'packages/tun/src/native.ts'))}).then((n) => console.log(n.addonAvailable(), globalThis.ppAsanAddon))`,
      ],
      { cwd: root, env, encoding: 'utf8' },
    );
    assert.equal(which.stdout.trim(), 'true true', which.stderr);

    const run = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=tap', ...TESTS], {
      cwd: root,
      env,
      encoding: 'utf8',
      timeout: 15 * 60_000,
      maxBuffer: 64 << 20,
    });
    const out = `${run.stdout}\n${run.stderr}`;
    assert.doesNotMatch(out, /AddressSanitizer/, out.slice(out.indexOf('AddressSanitizer') - 2_000));
    // The failed tests' names first (the tail alone may not hold them).
    const failed = out.split('\n').filter((l) => /^\s*not ok /.test(l));
    assert.equal(run.status, 0, `${failed.join('\n')}\n${out.slice(-4_000)}`);
    assert.match(out, /# fail 0/);
    // The run's own summary (the last one: per-file summaries may come before it).
    const pass = Number([...out.matchAll(/^# pass (\d+)$/gm)].at(-1)?.[1] ?? 0);
    assert.ok(pass >= 50, `ran ${pass} tests`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
