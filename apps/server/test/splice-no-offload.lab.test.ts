// Spliced pairs whose source is a TUN without offloads (a farm host's agents by default, any agent or
// relay with POCKETPROXY_OFFLOAD=0 or on a kernel without TUN offloads): every packet is its own socket buffer there, and a pipe's
// 16 slots take one each, so a pipe fills at ~22 KB, short of the engine's 64 KiB. The engine took
// that EAGAIN for "the source is empty" and waited for the source's next edge, which never came once
// the sender had sent its last bytes: downloads through the relay's SOCKS5 front stopped short of
// their end (100 KB: 57-92 KB arrived, then nothing until curl's limit), and uploads through the
// agent's front never reached their end (no answer). The relay and the agent run here with
// POCKETPROXY_OFFLOAD=0.
// Needs root (namespaces, TUN, nftables); skips loudly otherwise.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createLab,
  startRelay,
  startAgent,
  waitDeviceOnline,
  createConnection,
  waitUntil,
  canRunLab,
  type Lab,
  type LabRelay,
  type Connection,
} from '@pocketproxy/testkit';

const ROOT = canRunLab();
if (!ROOT) console.error('splice-no-offload.lab.test: SKIPPED — needs root (network namespaces, TUN, nftables)');

describe('spliced pairs fed by a TUN without offloads (relay and agent with POCKETPROXY_OFFLOAD=0)', {
  skip: ROOT ? false : 'needs root',
  timeout: 180_000,
}, () => {
  let lab: Lab;
  let relay: LabRelay;
  let http: Connection;
  let socks: Connection;
  const saved = process.env.POCKETPROXY_OFFLOAD;

  const curl = (args: string[], timeoutS = 5) =>
    lab.exec('cust', 'curl', ['-sS', '--max-time', String(timeoutS), ...args], { timeoutMs: (timeoutS + 5) * 1000 });

  before(async () => {
    process.env.POCKETPROXY_OFFLOAD = '0'; // read by startRelay and startAgent
    lab = await createLab({ devices: 1 });
    relay = await startRelay(lab);
    const agent = await startAgent(lab, relay, 1);
    await waitDeviceOnline(relay, agent.deviceId, 30_000);
    http = await createConnection(relay, agent.deviceId, 'http');
    socks = await createConnection(relay, agent.deviceId, 'socks5');
    await waitUntil(async () => (await curl(['-x', http.proxy_url, 'http://echo.test/ip'], 3)).code === 0, {
      timeoutMs: 30_000,
      intervalMs: 500,
      what: 'the HTTP port answers',
    });
    // The relay really runs without TUN offloads (its status says what its TUN was opened with).
    const st = await relay.tunnelStatus();
    assert.ok(st?.offload, `the tunnel's status: ${JSON.stringify(st)?.slice(0, 300)}`);
    assert.ok(st.offload.tun === null || st.offload.tun.tso === false, JSON.stringify(st.offload));
  });

  after(async () => {
    if (saved === undefined) delete process.env.POCKETPROXY_OFFLOAD;
    else process.env.POCKETPROXY_OFFLOAD = saved;
    await lab?.teardown(4_000);
  });

  it("downloads through the relay's SOCKS5 front arrive whole, at once (30 KB to 5 MB)", async () => {
    const url = `socks5h://${socks.username}:${socks.password}@${lab.relay.ip}:${socks.port}`;
    for (const n of [30_000, 100_000, 1_000_000, 5_000_000])
      for (let i = 0; i < 3; i++) {
        const r = await curl([
          '-o',
          '/dev/null',
          '-w',
          '%{size_download} %{time_total}',
          '-x',
          url,
          `http://echo.test/bytes?n=${n}`,
        ]);
        const [size, secs] = r.stdout.trim().split(' ').map(Number) as [number, number];
        assert.equal(
          size,
          n,
          `${n} bytes asked, ${size} arrived in ${secs} s (curl exit ${r.code}: ${r.stderr.trim()})`,
        );
        assert.equal(r.code, 0, r.stderr);
      }
  });

  it("uploads through the agent's front (CONNECT, then a POST over it) arrive whole (100 KB to 5 MB)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pp-upload-'));
    try {
      for (const n of [100_000, 1_000_000, 5_000_000]) {
        const file = join(dir, `${n}.bin`);
        writeFileSync(file, Buffer.alloc(n, 'u'));
        const r = await curl(['-p', '-x', http.proxy_url, '--data-binary', `@${file}`, 'http://echo.test/upload']);
        assert.equal(r.code, 0, `${n} bytes up: curl exit ${r.code}: ${r.stderr.trim()}`);
        assert.equal(JSON.parse(r.stdout).bytes, n);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
