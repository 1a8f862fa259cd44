// `npm run demo` (as root): the whole product in a lab on this machine. Builds a lab with three
// devices behind their own carrier NATs, starts `pocketproxy up` in the relay namespace, pairs three
// `pocketproxy-agent`s, creates an HTTP and a SOCKS5 connection per device, and prints curl commands
// to paste into another terminal (as root, no sudo), and the dashboard's address on this machine's
// loopback (127.0.0.1:8080, or PP_DEMO_PORT; forwarded into the lab's relay namespace, never bound to
// another address). Ctrl-C, or SIGTERM / SIGINT / SIGHUP to its pid, tears everything down
// (namespaces, processes, files) and exits.
//
//   ip netns exec <prefix>-cust curl -x http://user:pass@198.51.100.1:40000 http://echo.test/ip
//   -> 198.18.1.2 (device 1's carrier address)
import { createServer, connect, type Server } from 'node:net';
import { join } from 'node:path';
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
const PORT = Number(process.env.PP_DEMO_PORT ?? 8080);

/**
 * The dashboard for the host's browser: a listener on 127.0.0.1 (loopback only) whose connections are
 * piped to the API's Unix socket, which the lab bridges to the API inside the relay namespace (HTTP and
 * the /ws WebSocket alike). `port` taken: any free port.
 */
async function forwardDashboard(socketPath: string, port: number): Promise<{ server: Server; port: number }> {
  const server = createServer((c) => {
    const u = connect(socketPath);
    c.pipe(u).pipe(c);
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
  });
  const listen = (p: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: p, host: '127.0.0.1', exclusive: true }, () => {
        server.off('error', reject);
        resolve((server.address() as { port: number }).port);
      });
    });
  try {
    return { server, port: await listen(port) };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    return { server, port: await listen(0) };
  }
}

async function main(): Promise<void> {
  if (!canRunLab()) {
    console.error(
      'npm run demo needs root (it creates network namespaces, a TUN device and nftables rules): run it as root',
    );
    process.exit(2);
  }
  let lab: Lab | undefined;
  let dashboard: Server | undefined;
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log('\nStopping: dashboard forward, agents, relay, namespaces…');
    dashboard?.close();
    await lab?.teardown(4_000);
    console.log('Stopped; the lab is gone.');
    process.exit(code);
  };
  // `npm run demo` execs node (package.json), so a signal to npm's pid or to this one lands here.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void stop(0));
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

    const fwd = await forwardDashboard(join(relay.dataDir, 'api.sock'), PORT);
    dashboard = fwd.server;
    const url = `http://127.0.0.1:${fwd.port}/`;

    const cust = lab.ns('cust');
    const lines = [
      '',
      `PocketProxy is running in lab ${lab.prefix}.`,
      '',
      `Dashboard: ${url}  (sign in as ${ADMIN_EMAIL} / ${ADMIN_PASSWORD})`,
      `  on this machine's loopback only; from your own computer: ssh -L ${fwd.port}:127.0.0.1:${fwd.port} root@<this host>, then open ${url}`,
      '',
      'Paste these into another terminal (as root):',
      '',
      ...rows.flatMap((r) => [
        `# device ${r.n} (${r.deviceId}), carrier address ${r.carrier}`,
        `ip netns exec ${cust} curl -x ${r.http} http://echo.test/ip`,
        `ip netns exec ${cust} curl -x ${r.socks} http://echo.test/ip`,
        '',
      ]),
      '# HTTPS through CONNECT (the lab server echoes the SNI it saw):',
      `ip netns exec ${cust} curl -k -x ${rows[0]!.http} https://sni.test/`,
      '',
      "# rotate device 1's carrier address, then ask again:",
      lab.rotateCommandLine(1),
      `ip netns exec ${cust} curl -x ${rows[0]!.http} http://echo.test/ip`,
      '',
      `# the API (admin ${ADMIN_EMAIL} / ${ADMIN_PASSWORD}), through the same forward:`,
      `curl -s -X POST -H 'content-type: application/json' -d '{"email":"${ADMIN_EMAIL}","password":"${ADMIN_PASSWORD}"}' ${url}api/auth/login`,
      '',
      `# the relay's firewall table:  ip netns exec ${lab.ns('relay')} nft list table ip pocketproxy`,
      '',
      `Stop: Ctrl-C, or kill ${process.pid} (SIGTERM / SIGINT): the lab, its processes and namespaces are removed.`,
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
