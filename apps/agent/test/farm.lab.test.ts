// The farm host with the real binaries: `pocketproxy up` in the relay namespace, ONE
// `pocketproxy-agent farm` in a farm host namespace with three "phones" (each a veth into its own
// carrier NAT, driven by the fake adb, whose airplane toggle rotates that carrier's address) and
// one "modem" (fake mmcli, its own carrier), one enrollment token, curl as the customer.
//
//   one token -> four devices enrolled, online, each a different exit address (its carrier's); the
//   phone whose USB tethering was off has it switched on by the farm (its interface appears then)
//   rotate one phone (API rotate_ip -> adb airplane on/off -> hook)  -> only its address changes
//   rotate the modem (API rotate_ip -> mmcli disconnect/connect -> hook) -> only its address changes
//   unplug one phone (adb no longer lists it + its link down)          -> only it goes offline
//   plug it back                                                      -> same device id, same port, answering
//   the modem's reconnect also renumbers its interface (a bearer's new address): the farm restarts
//   that device                                  -> same device id, same port, the new exit address
//
// All of it twice: with every agent on the farm's own loop, and with `--threads 2` (two devices on
// each worker thread, as farm-status.json says).
//
// Needs root (namespaces, TUN); skips loudly otherwise. Run under `flock /tmp/pp-lab.lock`.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  REPO_ROOT,
  buildFarmHost,
  canRunLab,
  createConnection,
  createLab,
  startRelay,
  waitUntil,
  type Connection,
  type FarmHost,
  type Lab,
  type LabProcess,
  type LabRelay,
} from '@pocketproxy/testkit';

const ROOT = canRunLab();
if (!ROOT) console.error('farm.lab.test: SKIPPED — needs root (network namespaces, TUN, nftables)');

const FAKE_ADB = join(REPO_ROOT, 'apps/agent/test/fakes/adb');
const FAKE_MMCLI = join(REPO_ROOT, 'apps/agent/test/fakes/mmcli');

type Json = any;

// Once with every agent on the farm's own loop, once with them spread over two worker threads (--threads 2).
for (const threads of [1, 2])
  describe(`farm host: one process, three phones and a modem (lab, --threads ${threads})`, {
    skip: ROOT ? false : 'needs root',
    timeout: 420_000,
  }, () => {
    let lab: Lab;
    let relay: LabRelay;
    let host: FarmHost;
    let farm: LabProcess;
    let stateDir: string;
    /** hardware id -> device id, connection */
    const devices = new Map<string, { id: string; conn?: Connection; carrier: number }>();

    const proxyGet = async (c: Connection): Promise<string | null> => {
      const r = await lab.exec('cust', 'curl', ['-sS', '--max-time', '4', '-x', c.proxy_url, 'http://echo.test/ip'], {
        timeoutMs: 8_000,
      });
      return r.code === 0 ? r.stdout.trim() : null;
    };
    const device = async (id: string): Promise<Json> => (await relay.api.call('GET', `/api/devices/${id}`)).body;
    const farmOutput = () => farm?.lines.slice(-60).join('\n') ?? '';
    const farmStatus = (): Json => JSON.parse(readFileSync(join(stateDir, 'farm-status.json'), 'utf8'));
    /** Every device's exit address now, by hardware id. */
    const exitsNow = async () => {
      const m = new Map<string, string | null>();
      for (const [hw, d] of devices) m.set(hw, await proxyGet(d.conn!));
      return m;
    };
    /** rotate_ip through the API; resolves with the command's final status and result. */
    const rotate = async (id: string): Promise<{ state: string; result: Json }> => {
      const post = await relay.api.call('POST', `/api/devices/${id}/commands`, { type: 'rotate_ip' });
      assert.ok(post.status < 300, `rotate accepted: ${post.status} ${post.text}`);
      let state = '';
      let result: Json;
      await waitUntil(
        async () => {
          const list = (await relay.api.ok('GET', `/api/devices/${id}/commands`)).items ?? [];
          const c = list.find((x: Json) => x.id === post.body.id);
          state = c?.status ?? '';
          result = c?.result ?? c?.error;
          return ['succeeded', 'failed', 'expired'].includes(state);
        },
        { timeoutMs: 90_000, intervalMs: 500, what: 'rotate_ip finished' },
      ).catch((e) => {
        throw new Error(`${(e as Error).message} (last status ${state})\n${farmOutput()}`);
      });
      return { state, result };
    };

    before(async () => {
      // dev1 is the farm host (its wwan0 the host's own uplink); carriers 2-4 the phones', 5 the modem's.
      lab = await createLab({ devices: 5 });
      relay = await startRelay(lab, {
        env: { POCKETPROXY_HEARTBEAT_INTERVAL_S: '5', POCKETPROXY_STALE_AFTER_S: '20' },
      });
      host = await buildFarmHost(lab, {
        host: 1,
        phones: [
          { carrier: 2, serial: 'R58M12ABCDE', model: 'SM_A505F', profile: 'android-10' },
          // Tethering off: the farm must switch it on (svc usb setFunctions) before its interface appears.
          { carrier: 3, serial: '9B211FFAZ004LM', model: 'Pixel_7', profile: 'android-14', tethering: false },
          { carrier: 4, serial: 'ZY22CLMN8Q', model: 'moto_g_8', profile: 'android-8' },
        ],
        modems: [{ carrier: 5, imei: '359072066123456', model: 'EC25' }],
      });
      stateDir = mkdtempSync(join(tmpdir(), 'pp-farm-state-'));
    });

    after(async () => {
      if (process.env.PP_FARM_DEBUG) console.error(farm?.output().slice(-30_000));
      await farm?.stop(8_000).catch(() => {});
      await relay?.stop().catch(() => {});
      await lab?.teardown(4_000);
      host?.cleanup();
      if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    });

    it('one enrollment token enrolls the three phones and the modem; each answers with its own carrier address', async () => {
      assert.ok(existsSync(FAKE_ADB) && existsSync(FAKE_MMCLI), 'the fake adb and mmcli exist');
      const tok = await relay.api.ok('POST', '/api/enrollment-tokens', { name: 'lab farm', max_devices: 10 });
      assert.ok(typeof tok.token === 'string' && tok.token.length >= 16, 'a token');
      const fp = /--fingerprint\s+(\S+)/.exec(tok.enroll_command)?.[1];
      assert.ok(fp, `the enroll command names the fingerprint: ${tok.enroll_command}`);
      farm = host.startFarm({
        relay,
        token: tok.token,
        fingerprint: fp,
        stateDir,
        extra: ['--name', 'lab-farm', '--airplane-seconds', '1', '--threads', String(threads)],
        echo: process.env.PP_FARM_ECHO ? (l) => console.error(l) : undefined,
      });

      // Four devices of one farm host, all online with their tunnel.
      let items: Json[] = [];
      await waitUntil(
        async () => {
          if (farm.exitStatus) throw new Error(`farm exited:\n${farmOutput()}`);
          items = (await relay.api.ok('GET', '/api/devices')).items ?? [];
          const ours = items.filter((d: Json) => d.farm_host_id);
          return ours.length === 4 && ours.every((d: Json) => d.status === 'online' && d.tunnel_connected === true);
        },
        { timeoutMs: 90_000, intervalMs: 500, what: `four farm devices online\n${farmOutput()}` },
      ).catch((e) => {
        throw new Error(`${(e as Error).message}\n${farmOutput()}`);
      });
      const ours = items.filter((d: Json) => d.farm_host_id);
      assert.equal(new Set(ours.map((d: Json) => d.farm_host_id)).size, 1, 'one farm host');
      const byHw = new Map(ours.map((d: Json) => [d.hardware_id, d]));
      for (const p of host.phones) {
        const d = byHw.get(p.serial);
        assert.ok(d, `phone ${p.serial} enrolled`);
        assert.equal(d.kind, 'phone');
        devices.set(p.serial, { id: d.id, carrier: p.carrier });
      }
      const m = byHw.get(host.modems[0]!.imei);
      assert.ok(m, 'modem enrolled');
      assert.equal(m.kind, 'modem');
      devices.set(host.modems[0]!.imei, { id: m.id, carrier: host.modems[0]!.carrier });
      const hostRow = (await relay.api.ok('GET', `/api/farm-hosts/${ours[0].farm_host_id}`)) as Json;
      assert.equal(hostRow.name, 'lab-farm');

      // A connection each; every one exits by its own carrier.
      const exits = new Set<string>();
      for (const [hw, d] of devices) {
        d.conn = await createConnection(relay, d.id, 'http');
        const want = await lab.carrierAddress(d.carrier);
        let got: string | null = null;
        await waitUntil(
          async () => {
            got = await proxyGet(d.conn!);
            return got === want;
          },
          {
            timeoutMs: 30_000,
            intervalMs: 500,
            what: `${hw} answers with ${want}`,
          },
        ).catch((e) => {
          throw new Error(`${(e as Error).message} (last answer ${got})\n${farmOutput()}`);
        });
        exits.add(got!);
      }
      assert.equal(exits.size, 4, 'four different exit addresses');

      // The Pixel's tethering was off: the farm switched it on through adb (argv, no shell string).
      const calls = readFileSync(join(host.adbDir, 'calls.log'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as string[]);
      assert.ok(
        calls.some((c) => c.join(' ') === '-s 9B211FFAZ004LM shell svc usb setFunctions rndis'),
        'tethering switched on with svc usb setFunctions rndis',
      );
      assert.ok(!calls.some((c) => c.includes('-c')), 'no shell string');

      // The state on disk: one state.json per device, 0600, and the farm's host key.
      const farmFile = JSON.parse(readFileSync(join(stateDir, 'farm.json'), 'utf8'));
      assert.match(farmFile.host_key, /^[A-Za-z0-9_-]{43}$/);
      const status = JSON.parse(readFileSync(join(stateDir, 'farm-status.json'), 'utf8'));
      const running = status.devices.filter((x: Json) => x.status === 'running');
      assert.equal(running.length, 4, 'status file: 4 running');
      // Where each agent runs: the farm's loop, or two devices on each of the two workers.
      const perThread = new Map<number | null, number>();
      for (const x of running) perThread.set(x.thread, (perThread.get(x.thread) ?? 0) + 1);
      if (threads === 1) assert.deepEqual([...perThread], [[null, 4]], "every agent on the farm's own loop");
      else
        assert.deepEqual(
          [...perThread].sort(),
          [
            [0, 2],
            [1, 2],
          ],
          'two agents on each worker thread',
        );
    });

    it('rotating one phone (airplane mode by adb) changes only its exit address', async () => {
      const [serial, a] = [...devices][0]!;
      const before = await exitsNow();
      const { state, result } = await rotate(a.id);
      assert.equal(state, 'succeeded', `rotation: ${JSON.stringify(result)}\n${farmOutput()}`);
      const fresh = await lab.carrierAddress(a.carrier);
      assert.notEqual(fresh, before.get(serial), 'the carrier moved');
      await waitUntil(async () => (await proxyGet(a.conn!)) === fresh, {
        timeoutMs: 15_000,
        intervalMs: 300,
        what: `${serial} exits from ${fresh}`,
      });
      const calls = readFileSync(join(host.adbDir, 'calls.log'), 'utf8');
      assert.match(calls, new RegExp(`${serial}.*airplane`), 'the farm drove airplane mode through adb');
      for (const [hw, d] of devices) {
        if (hw === serial) continue;
        assert.equal(await proxyGet(d.conn!), before.get(hw), `${hw} kept its address`);
      }
    });

    it('rotating the modem (bearer reconnect by mmcli) changes only its exit address', async () => {
      const modem = host.modems[0]!;
      const m = devices.get(modem.imei)!;
      const before = await exitsNow();
      assert.equal(before.get(modem.imei), await lab.carrierAddress(m.carrier), 'the modem answers before');
      const { state, result } = await rotate(m.id);
      assert.equal(state, 'succeeded', `rotation: ${JSON.stringify(result)}\n${farmOutput()}`);
      const fresh = await lab.carrierAddress(m.carrier);
      assert.notEqual(fresh, before.get(modem.imei), 'the carrier moved');
      assert.equal(result.new_ip, fresh, 'the agent reports the new address');
      assert.equal(result.old_ip, before.get(modem.imei), 'and the old one');
      await waitUntil(async () => (await proxyGet(m.conn!)) === fresh, {
        timeoutMs: 15_000,
        intervalMs: 300,
        what: `the modem exits from ${fresh}`,
      });
      // ModemManager drove it: disconnect, then connect, as argv (modem index 0).
      const calls = readFileSync(join(host.mmcliDir, 'calls.log'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as string[]);
      const disc = calls.findIndex((c) => c.join(' ') === '-m 0 --simple-disconnect');
      const conn = calls.findIndex(
        (c, k) => k > disc && c[0] === '-m' && c[1] === '0' && c.some((a) => a.startsWith('--simple-connect=')),
      );
      assert.ok(disc >= 0 && conn > disc, `mmcli disconnect then connect: ${JSON.stringify(calls.slice(-8))}`);
      // The bearer kept its address: the farm did not restart the device.
      const st = farmStatus().devices.find((x: Json) => x.hardware_id === modem.imei);
      assert.equal(st?.status, 'running');
      assert.equal(st?.address, modem.ip, 'the modem interface kept its address');
      for (const [hw, d] of devices) {
        if (hw === modem.imei) continue;
        assert.equal(await proxyGet(d.conn!), before.get(hw), `${hw} kept its address`);
      }
    });

    it('unplugging one phone makes only it offline; plugging it back restores the same device and port', async () => {
      const [serial, b] = [...devices][1]!;
      await host.unplug(serial);
      await waitUntil(
        async () => {
          const d = await device(b.id);
          return d.status !== 'online' || d.tunnel_connected === false;
        },
        { timeoutMs: 90_000, intervalMs: 500, what: `${serial} offline after unplugging` },
      );
      const st = JSON.parse(readFileSync(join(stateDir, 'farm-status.json'), 'utf8'));
      assert.equal(st.devices.find((x: Json) => x.hardware_id === serial)?.status, 'gone', 'status file says gone');
      for (const [hw, d] of devices) {
        if (hw === serial) continue;
        const row = await device(d.id);
        assert.equal(row.status, 'online', `${hw} still online`);
        assert.equal(await proxyGet(d.conn!), await lab.carrierAddress(d.carrier), `${hw} still answers`);
      }
      assert.equal(await proxyGet(b.conn!), null, 'the unplugged phone does not answer');

      const countBefore = ((await relay.api.ok('GET', '/api/devices')).items ?? []).length;
      await host.plug(serial);
      const want = await lab.carrierAddress(b.carrier);
      await waitUntil(async () => (await proxyGet(b.conn!)) === want, {
        timeoutMs: 60_000,
        intervalMs: 500,
        what: `${serial} answers again on port ${b.conn!.port}`,
      }).catch((e) => {
        throw new Error(`${(e as Error).message}\n${farmOutput()}`);
      });
      const row = await device(b.id);
      assert.equal(row.hardware_id, serial, 'the same device id');
      const items = (await relay.api.ok('GET', '/api/devices')).items ?? [];
      assert.equal(items.length, countBefore, 'no new device enrolled');
      const conn = await relay.api.ok('GET', `/api/connections/${b.conn!.id}`);
      assert.equal(conn.port, b.conn!.port, 'the same port');
      await waitUntil(async () => (await device(b.id)).status === 'online', {
        timeoutMs: 30_000,
        intervalMs: 500,
        what: `${serial} online again`,
      });
    });

    it('a modem reconnect that renumbers its interface: the farm restarts that device, same id and port, the new exit address', async () => {
      const modem = host.modems[0]!;
      const m = devices.get(modem.imei)!;
      const [, renumbered] = host.renumberOnReconnect(modem.imei);
      const stBefore = farmStatus().devices.find((x: Json) => x.hardware_id === modem.imei);
      assert.equal(stBefore?.address, modem.ip, 'the modem starts on its first address');
      const before = await exitsNow();
      const countBefore = ((await relay.api.ok('GET', '/api/devices')).items ?? []).length;
      const outcome = rotate(m.id);
      // The interface moves under the running agent; the scan sees it and restarts the device.
      await waitUntil(
        async () => {
          const st = farmStatus().devices.find((x: Json) => x.hardware_id === modem.imei);
          return st?.address === renumbered && st?.status === 'running';
        },
        { timeoutMs: 60_000, intervalMs: 500, what: `the modem running again on ${renumbered}` },
      ).catch((e) => {
        throw new Error(`${(e as Error).message}\n${farmOutput()}`);
      });
      assert.match(
        farmOutput(),
        /interface address changed; restarting the device/,
        'the farm says why it restarted it',
      );
      const fresh = await lab.carrierAddress(m.carrier);
      assert.notEqual(fresh, before.get(modem.imei), 'the carrier moved');
      let got: string | null = null;
      await waitUntil(
        async () => {
          got = await proxyGet(m.conn!);
          return got === fresh;
        },
        { timeoutMs: 60_000, intervalMs: 500, what: `the modem exits from ${fresh} on port ${m.conn!.port}` },
      ).catch((e) => {
        throw new Error(`${(e as Error).message} (last answer ${got})\n${farmOutput()}`);
      });
      const st = farmStatus().devices.find((x: Json) => x.hardware_id === modem.imei);
      assert.equal(st.device_id, m.id, 'the same device id');
      // Its egress source rule moved with it: one for the new address, none left for the old one
      // (a stale rule would send whoever gets that address next out of this modem's table).
      const rules = (await lab.exec(host.role, 'ip', ['-4', 'rule', 'show'], { timeoutMs: 5_000 })).stdout;
      const egress = rules.split('\n').filter((l) => /lookup 56\d\d\b/.test(l));
      assert.equal(
        egress.filter((l) => l.includes(`from ${renumbered} `)).length,
        1,
        `a rule for ${renumbered}:\n${rules}`,
      );
      assert.ok(!egress.some((l) => l.includes(`from ${modem.ip} `)), `no rule left for ${modem.ip}:\n${rules}`);
      assert.equal(egress.length, 4, `one egress rule per device:\n${rules}`);
      assert.equal(((await relay.api.ok('GET', '/api/devices')).items ?? []).length, countBefore, 'no new device');
      assert.equal((await relay.api.ok('GET', `/api/connections/${m.conn!.id}`)).port, m.conn!.port, 'the same port');
      await waitUntil(
        async () => {
          const d = await device(m.id);
          return d.status === 'online' && d.tunnel_connected === true;
        },
        { timeoutMs: 30_000, intervalMs: 500, what: 'the modem online with its tunnel' },
      );
      // The command outlives the agent that ran it: its result goes by the host's own uplink, and the
      // address check reads the interface's address at each try (the new one).
      const { state, result } = await outcome;
      assert.equal(state, 'succeeded', `rotation across the renumbering: ${JSON.stringify(result)}`);
      assert.equal(result.new_ip, fresh, 'it reports the new exit address');
      for (const [hw, d] of devices) {
        if (hw === modem.imei) continue;
        assert.equal(await proxyGet(d.conn!), before.get(hw), `${hw} kept its address`);
      }
    });

    it('SIGTERM stops every device (its TUN gone) and the farm exits 0, its worker threads with it', async () => {
      const links = async () =>
        (await lab.exec(host.role, 'ip', ['-o', 'link', 'show'], { timeoutMs: 5_000 })).stdout
          .split('\n')
          .filter((l) => /: ppf\d+[:@]/.test(l));
      assert.equal((await links()).length, 4, 'a TUN per device while running');
      const exit = await farm.stop(15_000);
      assert.deepEqual([exit.code, exit.signal], [0, null], `a clean exit:\n${farmOutput()}`);
      assert.ok(
        !/worker thread (failed|exited)/.test(farm.output()),
        `no worker failure on the way out:\n${farmOutput()}`,
      );
      assert.deepEqual(await links(), [], 'no TUN left');
    });
  });
