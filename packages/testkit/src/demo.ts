// `npm run demo` (as root): the whole product in a lab on this machine. Builds a lab with three
// devices behind their own carrier NATs, starts `pocketproxy up` in the relay namespace, pairs three
// `pocketproxy-agent`s, creates an HTTP and a SOCKS5 connection per device, and prints curl commands
// to paste into another terminal. Ctrl-C tears everything down (namespaces, processes, files).
//
//   sudo ip netns exec <prefix>-cust curl -x http://user:pass@198.51.100.1:40000 http://echo.test/ip
//   -> 198.18.1.2 (device 1's carrier address)
import {
  createLab,
  canRunLab,
  startRelay,
  startAgent,
  waitDeviceOnline,
  createConnection,
  waitUntil,
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  type Lab,
} from './index.js';

const DEVICES = Number(process.env.PP_DEMO_DEVICES ?? 3);

async function main(): Promise<void> {
  if (!canRunLab()) {
    console.error(
      'npm run demo needs root (it creates network namespaces, a TUN device and nftables rules): sudo npm run demo',
    );
    process.exit(2);
  }
  let lab: Lab | undefined;
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log('\nStopping: agents, relay, namespaces…');
    await lab?.teardown(4_000);
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  try {
    const step = (s: string) => console.log(`• ${s}`);
    step(`building the lab (${DEVICES} devices)…`);
    lab = await createLab({ devices: DEVICES, handleSignals: false });
    step('starting `pocketproxy up` in the relay namespace (database, API, tunnel)…');
    const relay = await startRelay(lab, { env: { POCKETPROXY_HEARTBEAT_INTERVAL_S: '10' } });
    const rows: { n: number; deviceId: string; http: string; socks: string; carrier: string }[] = [];
    for (let n = 1; n <= DEVICES; n++) {
      step(`pairing device ${n} and starting its agent…`);
      const a = await startAgent(lab, relay, n);
      await waitDeviceOnline(relay, a.deviceId, 40_000);
      const h = await createConnection(relay, a.deviceId, 'http');
      const s = await createConnection(relay, a.deviceId, 'socks5');
      rows.push({
        n,
        deviceId: a.deviceId,
        http: h.proxy_url,
        socks: `socks5h://${s.username}:${s.password}@${lab.relay.ip}:${s.port}`,
        carrier: lab.device(n).carrierIp,
      });
    }
    step('waiting until every proxy port answers…');
    await waitUntil(
      async () => {
        for (const r of rows) {
          const out = await lab!.exec('cust', 'curl', ['-s', '--max-time', '3', '-x', r.http, 'http://echo.test/ip']);
          if (out.stdout.trim() !== r.carrier) return false;
        }
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 1_000, what: 'proxy ports answer' },
    );

    const cust = lab.ns('cust');
    const lines = [
      '',
      'PocketProxy is running in a lab. Paste these into another terminal (as root):',
      '',
      ...rows.flatMap((r) => [
        `# device ${r.n} (${r.deviceId}), carrier address ${r.carrier}`,
        `sudo ip netns exec ${cust} curl -x ${r.http} http://echo.test/ip`,
        `sudo ip netns exec ${cust} curl -x ${r.socks} http://echo.test/ip`,
        '',
      ]),
      '# HTTPS through CONNECT (the lab server echoes the SNI it saw):',
      `sudo ip netns exec ${cust} curl -k -x ${rows[0]!.http} https://sni.test/`,
      '',
      "# rotate device 1's carrier address, then ask again:",
      `sudo ${lab.rotateCommandLine(1)}`,
      `sudo ip netns exec ${cust} curl -x ${rows[0]!.http} http://echo.test/ip`,
      '',
      `# the API (admin ${ADMIN_EMAIL} / ${ADMIN_PASSWORD}), from the customer namespace:`,
      `sudo ip netns exec ${cust} curl -s -X POST -H 'content-type: application/json' -d '{"email":"${ADMIN_EMAIL}","password":"${ADMIN_PASSWORD}"}' http://${lab.relay.ip}:${relay.apiPort}/api/auth/login`,
      '',
      `# the relay's firewall table:  sudo ip netns exec ${lab.ns('relay')} nft list table ip pocketproxy`,
      '',
      'Ctrl-C stops everything and removes the lab.',
    ];
    console.log(lines.join('\n'));
    relay.proc.exited.then((s) => {
      if (!stopping) {
        console.error(`pocketproxy up exited (${JSON.stringify(s)}):\n${relay.proc.lines.slice(-20).join('\n')}`);
        void stop(1);
      }
    });
    await new Promise(() => {
      /* until Ctrl-C */
    });
  } catch (err) {
    console.error(`demo failed: ${(err as Error).stack ?? err}`);
    await stop(1);
  }
}

void main();
