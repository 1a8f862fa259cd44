// The `rtt` phase of bench:dataplane (issue 13, the tunnel's latency): what one round trip costs over
// our tunnel against a bare OpenVPN 2.6 tunnel (static key, UDP, userspace) on the same carrier-NAT
// links, and against the links themselves. Time to first byte through the proxy crosses the tunnel
// twice (SYN / SYN-ACK, then request / answer), so twice the difference here is what the tunnel adds
// to it.
//
//   underlay:  ping dev1 -> relay (the carrier NAT path both tunnels ride on)
//   ours:      relay -> pp0 -> sealed UDP -> agent -> ppd0 (device's kernel answers)
//   openvpn:   relay -> ovr0 -> openvpn -> UDP -> openvpn -> ovd0
// Each: ping p50/p90 (N echoes, 10 ms apart: every hop wakes an idle process, as sequential requests
// do), TCP connect p50 (SYN / SYN-ACK) and a 1-byte TCP echo p50 on an open connection, against a
// Python echo server on the device (every address).
import { join } from 'node:path';
import type { Lab, LabProcess } from '../src/index.js';

const ECHO_SERVER = `
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', 7777)); s.listen(64); print('listening', flush=True)
def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        d = c.recv(64)
        if not d: break
        c.sendall(d)
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

const TCP_PROBE = `
import socket, time, sys, json
host, n = sys.argv[1], int(sys.argv[2]); conn = []; echo = []
for i in range(n):
    t0 = time.perf_counter(); s = socket.create_connection((host, 7777), timeout=5); conn.append((time.perf_counter() - t0) * 1e3)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for j in range(3):
        t0 = time.perf_counter(); s.sendall(b'x'); s.recv(8); echo.append((time.perf_counter() - t0) * 1e3)
    s.close(); time.sleep(0.005)
print(json.dumps({'conn': conn, 'echo': echo}))
`;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))]! : Number.NaN;
};

export interface RttFigures {
  ping: { p50: number; p90: number; got: number };
  connect?: number;
  echo?: number;
}

export async function rttPhase(o: {
  lab: Lab;
  vpnIp: string;
  work: string;
  record: (what: string, value: string, note?: string) => void;
  n?: number;
}): Promise<void> {
  const { lab, vpnIp, record } = o;
  const n = o.n ?? 300;
  const procs: LabProcess[] = [];
  try {
    const key = join(o.work, 'rtt-ovpn.key');
    await lab.exec('relay', 'openvpn', ['--genkey', 'secret', key], { check: true });
    // The same options as the `openvpn` phase, other interface names and port (both may run in one bench).
    const common = ['--dev-type', 'tun', '--secret', key, '--proto', 'udp', '--cipher', 'AES-256-CBC'];
    const more = ['--auth', 'SHA256', '--ping', '5', '--verb', '3'];
    procs.push(
      lab.spawn('relay', 'openvpn', [
        ...common,
        ...more,
        '--dev',
        'ovr0',
        '--port',
        '1197',
        '--ifconfig',
        '10.79.0.1',
        '10.79.0.2',
      ]),
    );
    const client = lab.spawn('dev1', 'openvpn', [
      ...common,
      ...more,
      '--dev',
      'ovd0',
      '--remote',
      lab.relay.ip,
      '1197',
      '--nobind',
      '--ifconfig',
      '10.79.0.2',
      '10.79.0.1',
    ]);
    procs.push(client);
    await client.waitForLine(/Peer Connection Initiated/, 20_000);
    const echo = lab.spawn('dev1', 'python3', ['-u', '-c', ECHO_SERVER]);
    procs.push(echo);
    await echo.waitForLine(/listening/, 5_000);

    const ping = async (ns: string, dst: string): Promise<RttFigures['ping']> => {
      const r = await lab.exec(ns, 'ping', ['-n', '-c', String(n), '-i', '0.01', '-W', '1', dst], {
        timeoutMs: 60_000,
      });
      const xs = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
      return { p50: pct(xs, 0.5), p90: pct(xs, 0.9), got: xs.length };
    };
    const tcp = async (dst: string) => {
      const r = await lab.exec('relay', 'python3', ['-c', TCP_PROBE, dst, String(Math.ceil(n / 2))], {
        timeoutMs: 90_000,
      });
      const j = JSON.parse(r.stdout) as { conn: number[]; echo: number[] };
      return { connect: pct(j.conn, 0.5), echo: pct(j.echo, 0.5) };
    };
    const fmt = (f: RttFigures) =>
      `ping ${f.ping.p50.toFixed(3)} ms (p90 ${f.ping.p90.toFixed(3)}, ${f.ping.got}/${n})` +
      (f.connect !== undefined ? ` · TCP connect ${f.connect.toFixed(3)} · 1-byte echo ${f.echo!.toFixed(3)} ms` : '');
    // Ours and OpenVPN alternate twice: the host's speed drifts within a minute.
    const figs: Record<'ours' | 'openvpn', RttFigures[]> = { ours: [], openvpn: [] };
    const under = await ping('dev1', lab.relay.ip);
    for (let round = 0; round < 2; round++) {
      figs.ours.push({ ping: await ping('relay', vpnIp), ...(await tcp(vpnIp)) });
      figs.openvpn.push({ ping: await ping('relay', '10.79.0.2'), ...(await tcp('10.79.0.2')) });
    }
    record('round trip, underlay dev1 -> relay (p50, 10 ms apart)', fmt({ ping: under }));
    for (const [name, fs] of Object.entries(figs))
      record(
        `round trip over ${name === 'ours' ? 'our tunnel' : 'OpenVPN 2.6 static key'} (p50, 2 rounds)`,
        fs.map(fmt).join(' ; '),
      );
    const med = (k: 'ours' | 'openvpn', f: (x: RttFigures) => number) => (f(figs[k][0]!) + f(figs[k][1]!)) / 2;
    const diff = (f: (x: RttFigures) => number) => (med('ours', f) - med('openvpn', f)) * 1000;
    record(
      'our tunnel minus OpenVPN, per round trip',
      `ping ${diff((x) => x.ping.p50).toFixed(0)} µs · TCP connect ${diff((x) => x.connect!).toFixed(0)} µs · echo ${diff((x) => x.echo!).toFixed(0)} µs`,
      "mean of the two rounds' p50s; time to first byte crosses the tunnel twice",
    );
  } finally {
    for (const p of procs) await p.stop(1_000).catch(() => undefined);
  }
}
