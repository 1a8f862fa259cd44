// Control-plane trust: plain-http refusal (loopback and --insecure-http excepted), the pairing URI, the
// server key pinned at pairing and the relay-key endorsement checked at pair and at run (src/trust.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { encodeKey, generateKeyPair, serverKeyFromSeed, type ServerKey } from '@pocketproxy/protocol';
import { isPPError } from '@pocketproxy/errors';
import { parseCli } from '../src/cli.js';
import { pairDevice } from '../src/pair.js';
import { readState, statePath, writeState, type AgentState } from '../src/state.js';
import { isLoopbackHost, parsePairingUri, serverUrlProblem, trustedApiClient } from '../src/trust.js';
import type { ApiClient, PairResult } from '../src/api-client.js';
import { logger } from './helpers.js';

const server = serverKeyFromSeed(Buffer.alloc(32, 7));
const mitm = serverKeyFromSeed(Buffer.alloc(32, 8));
const relayKey = encodeKey(generateKeyPair().publicKey);
const fakeRelayKey = encodeKey(generateKeyPair().publicKey);
const DEV = 'dev_abcdefghij';
const code = (e: unknown) => (isPPError(e) ? e.code : String(e));

test('server URLs: https anywhere, plain http only on loopback or with --insecure-http', () => {
  for (const h of ['127.0.0.1', '127.9.8.7', 'localhost', 'LOCALHOST', '[::1]', '::1', '[::ffff:7f00:1]'])
    assert.ok(isLoopbackHost(h), h);
  for (const h of ['10.0.0.1', '128.0.0.1', 'localhost.example.com', 'relay.example.com', '[::2]', '0.0.0.0'])
    assert.ok(!isLoopbackHost(h), h);
  for (const u of [
    'https://relay.example.com',
    'https://10.1.2.3:8443',
    'http://127.0.0.1:8080',
    'http://localhost:8080/',
    'http://[::1]:8080',
  ])
    assert.equal(serverUrlProblem(u, false), null, u);
  for (const u of ['http://relay.example.com', 'http://10.1.2.3:8080', 'http://127.0.0.1.nip.io']) {
    assert.match(serverUrlProblem(u, false) ?? '', /plain http and not loopback.*--insecure-http/, u);
    assert.equal(serverUrlProblem(u, true), null, u);
  }
  assert.match(serverUrlProblem('ftp://relay.example.com', true) ?? '', /http\(s\)/);
  assert.match(serverUrlProblem('nonsense', true) ?? '', /not a URL/);
});

test('pairing URI: server, code and fp; malformed ones say what is wrong', () => {
  const fp = server.fingerprint;
  assert.deepEqual(
    parsePairingUri(
      `pocketproxy://pair?server=${encodeURIComponent('https://relay.example.com')}&code=ABCDE-FGHJK&fp=${fp}`,
    ),
    { server: 'https://relay.example.com', code: 'ABCDE-FGHJK', fingerprint: fp },
  );
  assert.deepEqual(parsePairingUri('pocketproxy://pair?server=http://127.0.0.1:8080&code=ABCDE-FGHJK'), {
    server: 'http://127.0.0.1:8080',
    code: 'ABCDE-FGHJK',
  });
  assert.match(String(parsePairingUri('https://relay.example.com/pair?code=x')), /pocketproxy:\/\/pair/);
  assert.match(String(parsePairingUri('pocketproxy://pair?code=ABCDE-FGHJK')), /server=/);
  assert.match(String(parsePairingUri('pocketproxy://pair?server=ftp://x&code=A')), /server=/);
  assert.match(String(parsePairingUri('pocketproxy://pair?server=https://x')), /code=/);
  assert.match(String(parsePairingUri(`pocketproxy://pair?server=https://x&code=A&fp=short`)), /fp=/);
  assert.match(String(parsePairingUri('not a uri')), /not a URI/);
});

test('CLI: pair takes the URI or --server/--code/--fingerprint; http needs loopback or --insecure-http (and then the fingerprint); run --insecure-http', () => {
  const fp = server.fingerprint;
  const uri = (s: string) => `pocketproxy://pair?server=${encodeURIComponent(s)}&code=ABCDE-FGHJK&fp=${fp}`;
  const a = parseCli(['pair', uri('https://relay.example.com'), '--state-dir', '/tmp/x']);
  assert.deepEqual(a, {
    command: 'pair',
    server: 'https://relay.example.com',
    code: 'ABCDE-FGHJK',
    fingerprint: fp,
    insecureHttp: false,
    stateDir: '/tmp/x',
    name: undefined,
    logLevel: undefined,
  });
  const b = parseCli(['pair', '--server', 'http://127.0.0.1:8080', '--code', 'ABCDE-FGHJK']);
  assert.equal(b.command === 'pair' && b.fingerprint, undefined);
  const c = parseCli(['pair', '--server', 'https://r.example.com', '--code', 'C', '--fingerprint', fp]);
  assert.equal(c.command === 'pair' && c.fingerprint, fp);
  // A fingerprint is base64url: one in 32 begins with '-', one in 4,096 with '--'. The option still
  // takes it as its value (as getopt does), in both the pair and the farm commands; a missing value
  // and a flag where the value should be stay errors.
  for (const dashed of [`-${fp.slice(1)}`, `--${fp.slice(2)}`]) {
    const e = parseCli(['pair', '--server', 'https://r.example.com', '--code', 'C', '--fingerprint', dashed]);
    assert.equal(e.command === 'pair' && e.fingerprint, dashed);
    const f = parseCli([
      'farm',
      '--server',
      'https://r.example.com',
      '--enroll',
      'abcdefghijklmnop0123',
      '--fingerprint',
      dashed,
    ]);
    assert.equal(f.command === 'farm' && f.farm.fingerprint, dashed);
  }
  const problem = (args: string[], re: RegExp) =>
    assert.throws(
      () => parseCli(args),
      (e: Error) => code(e) === 'PP_ERR_AGENT_USAGE' && re.test(e.message),
      args.join(' '),
    );
  problem(['pair', uri('http://relay.example.com')], /plain http and not loopback.*--insecure-http/);
  problem(['pair', '--server', 'http://10.1.2.3:8080', '--code', 'C'], /--insecure-http/);
  problem(
    ['pair', '--server', 'http://10.1.2.3:8080', '--code', 'C', '--insecure-http'],
    /--insecure-http needs the server fingerprint/,
  );
  problem(['pair', uri('https://r.example.com'), '--server', 'https://r.example.com'], /not both/);
  problem(['pair', uri('https://r.example.com'), uri('https://r.example.com')], /one pairing URI/);
  problem(['pair', 'pocketproxy://pair?code=X'], /server=/);
  problem(
    ['pair', '--server', 'https://r.example.com', '--code', 'C', '--fingerprint', 'nope'],
    /--fingerprint must be/,
  );
  problem(['pair'], /--server is required[\s\S]*--code is required/);
  problem(['pair', '--server', 'https://r.example.com', '--code', 'C', '--fingerprint'], /--fingerprint/);
  problem(
    ['pair', '--server', 'https://r.example.com', '--code', 'C', '--fingerprint', '--insecure-http'],
    /--fingerprint must be/,
  );
  const d = parseCli(['pair', uri('http://10.1.2.3:8080'), '--insecure-http']);
  assert.ok(d.command === 'pair' && d.insecureHttp && d.server === 'http://10.1.2.3:8080');
  const r1 = parseCli(['run']);
  const r2 = parseCli(['run', '--insecure-http']);
  assert.equal(r1.command === 'run' && r1.insecureHttp, false);
  assert.equal(r2.command === 'run' && r2.insecureHttp, true);
  // The entry point (source, not a possibly older dist build): a usage error (exit 2) that names the flag.
  const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
  const p = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--conditions=source',
      main,
      'pair',
      '--server',
      'http://192.0.2.1:8080',
      '--code',
      'ABCDE-FGHJK',
    ],
    { encoding: 'utf8', timeout: 30_000, env: { ...process.env, NODE_OPTIONS: '' } },
  );
  assert.equal(p.status, 2, p.stderr);
  assert.match(p.stderr, /http:\/\/192\.0\.2\.1:8080 is plain http and not loopback[\s\S]*--insecure-http/);
});

/** A pairing answer as the server gives it, signed by `by` (a MITM substitutes its own key and relay). */
function answer(by: ServerKey | null, relay: string | null, endorsedRelay = relay): PairResult {
  return {
    device_id: DEV,
    auth_token: 'tok',
    relay: { id: 'rly_abcdefghij', host: 'relay.example.com', port: 1194 },
    tunnel: {
      server_public_key: relay,
      server_public_key_endorsement: by && endorsedRelay ? by.endorseRelayKey(DEV, endorsedRelay) : null,
      psk: encodeKey(Buffer.alloc(32, 3)),
      mtu: 1380,
      subnet: '192.168.255.0/24',
      vpn_ip: '192.168.255.2',
    },
    ...(by ? { server_key: { public_key: by.publicKey, fingerprint: by.fingerprint } } : {}),
  };
}
const apiAnswering = (r: PairResult): ApiClient & { calls: number } => {
  const api = { calls: 0 } as ApiClient & { calls: number };
  api.pair = async () => {
    api.calls++;
    return r;
  };
  return api;
};

test('pair: the server key must match the fingerprint and endorse the relay key; the pin and --insecure-http go to state.json', async () => {
  const root = await mkdtemp(join(tmpdir(), 'ppagent-trust-'));
  try {
    let n = 0;
    const dir = () => join(root, `s${++n}`);
    const pair = (
      r: PairResult,
      o: { fingerprint?: string; server?: string; insecureHttp?: boolean } = {},
      stateDir = dir(),
    ) =>
      pairDevice({
        server: o.server ?? 'https://relay.example.com',
        code: 'ABCDE-FGHJK',
        stateDir,
        fingerprint: o.fingerprint,
        insecureHttp: o.insecureHttp,
        api: apiAnswering(r),
      }).then(() => stateDir);
    const refused = async (r: PairResult, o: Parameters<typeof pair>[1], want: string) => {
      const d = dir();
      await assert.rejects(pair(r, o, d), (e) => code(e) === want, want);
      await assert.rejects(stat(statePath(d)), { code: 'ENOENT' }, 'nothing is saved');
    };

    const good = await readState(await pair(answer(server, relayKey), { fingerprint: server.fingerprint }));
    assert.deepEqual(good.server_key, {
      public_key: server.publicKey,
      fingerprint: server.fingerprint,
      from: 'fingerprint',
    });
    assert.equal(good.insecure_http, undefined);
    assert.equal(good.relay.public_key, relayKey);

    // A man in the middle: its own server key (and its relay, endorsed by it) → the fingerprint does not match.
    await refused(answer(mitm, fakeRelayKey), { fingerprint: server.fingerprint }, 'PP_ERR_AGENT_SERVER_KEY_MISMATCH');
    // The real server key passed through, the relay key swapped: not endorsed.
    await refused(
      answer(server, fakeRelayKey, relayKey),
      { fingerprint: server.fingerprint },
      'PP_ERR_AGENT_RELAY_KEY_UNENDORSED',
    );
    await refused(
      {
        ...answer(server, relayKey),
        tunnel: { ...answer(server, relayKey).tunnel, server_public_key_endorsement: null },
      },
      { fingerprint: server.fingerprint },
      'PP_ERR_AGENT_RELAY_KEY_UNENDORSED',
    );
    // The server key left out (an older API, or a stripped answer) while a fingerprint was given.
    await refused(answer(null, relayKey), { fingerprint: server.fingerprint }, 'PP_ERR_AGENT_SERVER_KEY_MISMATCH');
    // Plain http to a non-loopback server without the flag: refused before anything is sent.
    const api = apiAnswering(answer(server, relayKey));
    await assert.rejects(
      pairDevice({ server: 'http://relay.example.com', code: 'X', stateDir: dir(), api }),
      (e) => code(e) === 'PP_ERR_AGENT_INSECURE_SERVER',
    );
    assert.equal(api.calls, 0);

    // No fingerprint: the answer's key is pinned on first use (its endorsement still has to hold).
    const tofu = await readState(await pair(answer(server, null)));
    assert.deepEqual(tofu.server_key, {
      public_key: server.publicKey,
      fingerprint: server.fingerprint,
      from: 'first-use',
    });
    await refused(answer(server, fakeRelayKey, relayKey), {}, 'PP_ERR_AGENT_RELAY_KEY_UNENDORSED');
    // An older API without a server key and no fingerprint: no pin.
    assert.equal((await readState(await pair(answer(null, relayKey)))).server_key, undefined);
    // --insecure-http is remembered.
    const lab = await readState(
      await pair(answer(server, relayKey), {
        fingerprint: server.fingerprint,
        server: 'http://10.1.2.3:8080',
        insecureHttp: true,
      }),
    );
    assert.equal(lab.insecure_http, true);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('state.json: a server_key must be a key with its own fingerprint; insecure_http a boolean', async () => {
  const root = await mkdtemp(join(tmpdir(), 'ppagent-trust-'));
  try {
    const base: AgentState = {
      version: 1,
      server: 'https://relay.example.com',
      device_id: DEV,
      auth_token: 'tok',
      private_key: 'k',
      public_key: 'p',
      psk: 's',
      relay: { id: 'rly_abcdefghij', host: 'relay.example.com', port: 1194, public_key: null },
      vpn_ip: null,
      mtu: 1380,
      subnet: '192.168.255.0/24',
      paired_at: new Date(0).toISOString(),
      server_key: { public_key: server.publicKey, fingerprint: server.fingerprint, from: 'fingerprint' },
      insecure_http: true,
    };
    await writeState(root, base);
    assert.deepEqual(await readState(root), base);
    for (const bad of [
      { server_key: { ...base.server_key!, fingerprint: mitm.fingerprint } },
      { server_key: { ...base.server_key!, public_key: 'x' } },
      { server_key: { ...base.server_key!, from: 'someone' } },
      { server_key: null },
      { insecure_http: 'yes' },
    ]) {
      await writeState(root, { ...base, ...bad } as AgentState);
      await assert.rejects(readState(root), (e) => code(e) === 'PP_ERR_AGENT_STATE_INVALID', JSON.stringify(bad));
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('run: the API client refuses insecure servers and relay keys the pinned server key did not endorse', async () => {
  const state = (o: Partial<AgentState> = {}): AgentState => ({
    version: 1,
    server: 'https://relay.example.com',
    device_id: DEV,
    auth_token: 'tok',
    private_key: 'k',
    public_key: 'p',
    psk: 's',
    relay: { id: 'rly_abcdefghij', host: 'relay.example.com', port: 1194, public_key: null },
    vpn_ip: null,
    mtu: 1380,
    subnet: '192.168.255.0/24',
    paired_at: new Date(0).toISOString(),
    server_key: { public_key: server.publicKey, fingerprint: server.fingerprint, from: 'fingerprint' },
    ...o,
  });
  let tunnelAnswer: unknown;
  const urls: string[] = [];
  const fetchStub = (async (url: string) => {
    urls.push(url);
    return new Response(JSON.stringify(tunnelAnswer), { status: 200, headers: { 'content-type': 'application/json' } });
  }) as unknown as typeof fetch;
  const tunnel = (key: string | null, endorsement: string | null) => ({
    relay: { host: 'relay.example.com', port: 1194, public_key: key, public_key_endorsement: endorsement },
    vpn_ip: '192.168.255.2',
    mtu: 1380,
    subnet: '192.168.255.0/24',
  });
  const api = trustedApiClient(state(), { insecureHttp: false, logger, fetch: fetchStub });

  tunnelAnswer = tunnel(relayKey, server.endorseRelayKey(DEV, relayKey));
  assert.equal((await api.tunnel()).relay.public_key, relayKey);
  assert.equal(urls.at(-1), `https://relay.example.com/api/devices/${DEV}/tunnel`);
  tunnelAnswer = tunnel(null, null); // the relay has not registered its key yet: nothing to check, the agent waits
  assert.equal((await api.tunnel()).relay.public_key, null);
  for (const [key, endorsement] of [
    [fakeRelayKey, server.endorseRelayKey(DEV, relayKey)],
    [fakeRelayKey, mitm.endorseRelayKey(DEV, fakeRelayKey)],
    [relayKey, server.endorseRelayKey('dev_someoneelse', relayKey)],
    [relayKey, null],
  ] as const) {
    tunnelAnswer = tunnel(key, endorsement);
    await assert.rejects(api.tunnel(), (e) => code(e) === 'PP_ERR_AGENT_RELAY_KEY_UNENDORSED');
  }
  // Unpinned (paired before the pin existed): passes keys through, with a warning.
  tunnelAnswer = tunnel(fakeRelayKey, null);
  assert.equal(
    (
      await trustedApiClient(state({ server_key: undefined }), {
        insecureHttp: false,
        logger,
        fetch: fetchStub,
      }).tunnel()
    ).relay.public_key,
    fakeRelayKey,
  );

  const http = state({ server: 'http://10.1.2.3:8080' });
  assert.throws(
    () => trustedApiClient(http, { insecureHttp: false, logger, fetch: fetchStub }),
    (e: Error) => code(e) === 'PP_ERR_AGENT_INSECURE_SERVER' && /--insecure-http/.test(e.message),
  );
  assert.ok(trustedApiClient(http, { insecureHttp: true, logger, fetch: fetchStub }));
  assert.ok(
    trustedApiClient({ ...http, insecure_http: true }, { insecureHttp: false, logger, fetch: fetchStub }),
    'pair --insecure-http is remembered',
  );
  assert.ok(
    trustedApiClient(state({ server: 'http://127.0.0.1:8080' }), { insecureHttp: false, logger, fetch: fetchStub }),
    'loopback',
  );
});
