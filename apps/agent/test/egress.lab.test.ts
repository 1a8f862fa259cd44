// Lab test (root): egress really leaves by the egress interface on a device with two uplinks.
//
//   dev1 ─wlan0 (100.65.1.2, default route metric 100)─ wifi1 [NAT → 198.19.1.2, forwards only its LAN] ─┐
//        └wwan0 (100.64.1.2, default route metric 600)─ cgn1  [NAT → 198.18.1.2] ────────────────────────┴─ inet (echo.test)
//
// In dev1, test/fixtures/egress-probe.ts builds the agent's egress with interface wwan0 (the
// non-default uplink, as on the modem box or a phone on Wi-Fi) and dials the HTTP echo (GET /ip),
// the UDP whoami and fetchPublicIp (http and https). Pinned (SO_BINDTODEVICE + address) every one
// exits from the carrier address; bound to the address only — the bug — the main table sends them
// out of wlan0 with the cellular source, the Wi-Fi router drops them (its counter shows it) and
// nothing arrives. Needs root (namespaces, veth, nftables); skips loudly otherwise.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { canRunLab, createLab, type Lab } from '@pocketproxy/testkit';

const ROOT = canRunLab();
if (!ROOT) console.error('egress.lab.test: SKIPPED — needs root (network namespaces, veth, nftables)');

const PROBE = fileURLToPath(new URL('./fixtures/egress-probe.ts', import.meta.url));
const TIMEOUT_MS = 3000;

interface Probe {
  tcp: { ip?: string; localAddress?: string; error?: string };
  udp: { ip?: string; port?: number; localAddress?: string; error?: string };
  publicIp: { ip?: string; error?: string };
  publicIpHttps: { ip?: string; error?: string };
  warnings: string[];
}

describe('egress on a device with two uplinks (Wi-Fi default route, egress wwan0)', {
  skip: ROOT ? false : 'needs root',
  timeout: 120_000,
}, () => {
  let lab: Lab;
  let carrier: string;
  let wifiPublic: string;

  const probe = async (bindToDevice: boolean): Promise<Probe> => {
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_EXTRA_CA_CERTS: lab.inet.tls.certPath };
    delete env.NODE_OPTIONS; // the runner's `--import tsx` resolves from the cwd; the loader is passed explicitly
    const r = await lab.exec(
      'dev1',
      process.execPath,
      [
        '--import',
        lab.tsxLoader,
        '--conditions=source',
        PROBE,
        JSON.stringify({ iface: 'wwan0', bindToDevice, timeoutMs: TIMEOUT_MS }),
      ],
      { env, timeoutMs: 30_000 },
    );
    assert.equal(r.code, 0, `probe exited ${r.code}: ${r.stderr}`);
    const line = r.stdout.trim().split('\n').pop()!;
    console.error(`probe bindToDevice=${bindToDevice}: ${line}`);
    return JSON.parse(line) as Probe;
  };
  /** Packets the Wi-Fi router dropped because their source was not on its LAN. */
  const wifiDrops = async (): Promise<number> => {
    const r = await lab.exec('wifi1', 'nft', ['list', 'chain', 'ip', 'pplab_nat', 'forward'], { check: true });
    return Number(/saddr != [\d./]+ counter packets (\d+)/.exec(r.stdout)?.[1] ?? NaN);
  };
  const curl = async (args: string[]) =>
    (await lab.exec('dev1', 'curl', ['-sS', '-m', '3', ...args, 'http://echo.test/ip'])).stdout.trim() || 'no answer';

  before(async () => {
    lab = await createLab({ devices: 1, wifi: [1] });
    carrier = lab.device(1).carrierIp;
    wifiPublic = lab.device(1).wifi!.publicIp;
  });
  after(async () => {
    await lab?.teardown();
  });

  it('the lab device has two uplinks: default route via wlan0 (metric 100), wwan0 metric 600; curl shows both exits', async () => {
    const routes = (await lab.exec('dev1', 'ip', ['route', 'show', 'default'], { check: true })).stdout;
    assert.match(routes, /default via 100\.65\.1\.1 dev wlan0 metric 100/);
    assert.match(routes, /default via 100\.64\.1\.1 dev wwan0 metric 600/);
    assert.notEqual(carrier, wifiPublic);
    assert.equal(await curl([]), wifiPublic, 'the default route exits by the Wi-Fi');
    assert.equal(await curl(['--interface', 'wwan0']), carrier, 'curl bound to the device exits by the carrier');
    assert.equal(
      await curl(['--interface', lab.device(1).privateIp]),
      'no answer',
      'curl bound to the cellular address only goes nowhere (the issue)',
    );
  });

  it('pinned (SO_BINDTODEVICE + address): TCP, UDP and fetchPublicIp (http, https) exit from the carrier address', async () => {
    const p = await probe(true);
    assert.deepEqual(p.tcp, { ip: carrier, localAddress: lab.device(1).privateIp });
    assert.equal(p.udp.ip, carrier, JSON.stringify(p.udp));
    assert.equal(p.udp.localAddress, lab.device(1).privateIp);
    assert.deepEqual(p.publicIp, { ip: carrier });
    assert.deepEqual(p.publicIpHttps, { ip: carrier });
    assert.deepEqual(p.warnings, []);
  });

  it('address only (the bug): the same dials leave by the Wi-Fi with the cellular source, are dropped there, and nothing arrives', async () => {
    const before = await wifiDrops();
    const p = await probe(false);
    assert.deepEqual(p.tcp, { error: 'PP_ERR_PROXY_TARGET_TIMEOUT' });
    assert.deepEqual(p.udp, { error: 'TIMEOUT' });
    assert.match(p.publicIp.error ?? '', /PP_ERR_AGENT_API.*timeout/);
    assert.match(p.publicIpHttps.error ?? '', /PP_ERR_AGENT_API.*timeout/);
    const dropped = (await wifiDrops()) - before;
    console.error(`address only: the Wi-Fi router dropped ${dropped} packets from ${lab.device(1).privateIp}`);
    // SYN + retransmissions of two TCP dials, the datagram: all out of wlan0, none out of wwan0.
    assert.ok(dropped >= 4, `the Wi-Fi router dropped ${dropped} packets from the cellular address`);
  });

  it('pinned, with no route through wwan0: the dials fail and nothing leaves by the Wi-Fi', async () => {
    await lab.exec('dev1', 'ip', ['route', 'del', 'default', 'dev', 'wwan0'], { check: true });
    try {
      const before = await wifiDrops();
      const p = await probe(true);
      assert.ok(p.tcp.error, `TCP: ${JSON.stringify(p.tcp)}`);
      assert.ok(p.udp.error, `UDP: ${JSON.stringify(p.udp)}`);
      assert.ok(p.publicIp.error, `fetchPublicIp: ${JSON.stringify(p.publicIp)}`);
      assert.equal((await wifiDrops()) - before, 0);
    } finally {
      await lab.setLinkUp('dev1', 'wwan0'); // restores the metric-600 default route
    }
    const routes = (await lab.exec('dev1', 'ip', ['route', 'show', 'default'], { check: true })).stdout;
    assert.match(routes, /dev wwan0 metric 600/);
  });

  it('teardown removes the lab, the Wi-Fi router namespace included', async () => {
    const prefix = lab.prefix;
    assert.ok(lab.namespaces.includes(`${prefix}-wifi1`));
    await lab.teardown();
    const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter((l) => l.startsWith(`${prefix}-`));
    assert.deepEqual(left, []);
  });
});
