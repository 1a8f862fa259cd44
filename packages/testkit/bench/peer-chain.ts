// The standard-parts chain an operator could assemble instead of PocketProxy (issue 13), built on
// the data-plane bench's lab, on the same namespaces and links as ours:
//
//   cust --> relay:PORT --nft DNAT (table inet pplab_peer) + masquerade--> tunnel --> carrier NAT --> dev1
//            tunnel: wireguard-go (userspace; dialled by the device) or OpenVPN 2.6 TLS, AES-256-GCM, UDP
//            dev1:   tinyproxy (HTTP, BasicAuth) and danted (SOCKS5, username) on the tunnel address,
//                    egress from the device's carrier interface
//
// Everything it starts is a lab process (killed by pid, group included, at stop or lab teardown);
// its nft table is deleted by stop() and goes with the relay namespace in any case; its config files
// live in the bench's temp dir; the one thing outside the lab — the throwaway system user dante's
// username method checks against (PAM/passwd) — is removed by removeBenchUser(), also from an 'exit'
// hook, and leftovers of a dead run are removed by the next one.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitUntil, type Lab, type LabProcess } from '../src/index.js';

export const PEER_TABLE = 'pplab_peer';
/** Device-side ports of the peer proxies (on the tunnel address). */
export const TINYPROXY_PORT = 8888;
const DANTE_PORT = 1080;

export interface PeerTunnel {
  name: string;
  /** The device's address on the tunnel (the proxies listen on it) and the relay's. */
  devIp: string;
  relayIp: string;
  net: string;
  relayIf: string;
  devIf: string;
  /** One line on the tunnel (e.g. OpenVPN's negotiated data-channel cipher). */
  detail: string;
  procs: LabProcess[];
}

/**
 * wireguard-go on both sides (relay listening, device dialling through its carrier NAT with a
 * keepalive), addresses `${net}.1` / `${net}.2`, MTU 1420. Interface names must be unique on the
 * host: wireguard-go's control socket (/var/run/wireguard/<if>.sock) is not namespaced.
 */
export async function startWireguardGo(
  lab: Lab,
  work: string,
  o: { relayIf: string; devIf: string; net: string; port: number; name?: string },
): Promise<PeerTunnel> {
  const kp = async () => {
    const p = (await lab.exec('relay', 'wg', ['genkey'], { check: true })).stdout.trim();
    const pub = (await lab.exec('relay', 'wg', ['pubkey'], { input: p, check: true })).stdout.trim();
    return { p, pub };
  };
  const a = await kp(),
    b = await kp();
  const keyFile = (side: string, k: string) => {
    const f = join(work, `${o.relayIf}-${side}.key`);
    writeFileSync(f, k, { mode: 0o600 });
    return f;
  };
  const procs: LabProcess[] = [];
  const sides = [
    {
      ns: 'relay',
      wgIf: o.relayIf,
      key: keyFile('a', a.p),
      peer: b.pub,
      ip: `${o.net}.1`,
      extra: ['listen-port', String(o.port)],
    },
    { ns: 'dev1', wgIf: o.devIf, key: keyFile('b', b.p), peer: a.pub, ip: `${o.net}.2`, extra: [] as string[] },
  ];
  for (const s of sides) {
    // Foreground, so the lab owns the process (killed by pid at teardown).
    const wgGo = lab.spawn(s.ns, 'wireguard-go', ['-f', s.wgIf], {
      env: { ...process.env, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1' },
    });
    procs.push(wgGo);
    // Once (2026-12-07) the device's side was not up within 5 s: wait longer, and say why if it ended.
    await waitUntil(
      async () => {
        if (wgGo.exitStatus)
          throw new Error(`it exited (${JSON.stringify(wgGo.exitStatus)}): ${wgGo.output().slice(-300)}`);
        const r = await lab.exec(s.ns, 'wg', ['show', s.wgIf]);
        if (r.code !== 0) throw new Error(`wg show: ${r.stderr.trim().slice(0, 200)}`);
        return true;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: `wireguard-go ${s.wgIf} in ${s.ns}` },
    );
    const peerArgs = s.ns === 'dev1' ? ['endpoint', `${lab.relay.ip}:${o.port}`, 'persistent-keepalive', '5'] : [];
    await lab.exec(
      s.ns,
      'wg',
      ['set', s.wgIf, 'private-key', s.key, ...s.extra, 'peer', s.peer, 'allowed-ips', `${o.net}.0/24`, ...peerArgs],
      { check: true },
    );
    await lab.exec(s.ns, 'ip', ['addr', 'add', `${s.ip}/24`, 'dev', s.wgIf], { check: true });
    await lab.exec(s.ns, 'ip', ['link', 'set', s.wgIf, 'mtu', '1420', 'up'], { check: true });
  }
  // (no ping binary in this image) the device's side reports a completed handshake
  await waitUntil(
    async () => /\t[1-9]\d*$/m.test((await lab.exec('dev1', 'wg', ['show', o.devIf, 'latest-handshakes'])).stdout),
    { timeoutMs: 10_000, intervalMs: 300, what: 'wireguard handshake' },
  );
  return {
    name: o.name ?? 'wireguard-go',
    devIp: `${o.net}.2`,
    relayIp: `${o.net}.1`,
    net: `${o.net}.0/24`,
    relayIf: o.relayIf,
    devIf: o.devIf,
    detail: 'wireguard-go 0.0.20220316, MTU 1420',
    procs,
  };
}

/** A throwaway PKI (EC P-256 CA, server and client certificates with the usual key usages), valid 1 day. */
async function makePki(lab: Lab, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ossl = (args: string[]) => lab.exec('relay', 'openssl', args, { check: true, cwd: dir, timeoutMs: 20_000 });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await ossl([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-subj',
    '/CN=pplab peer CA',
    '-days',
    '1',
  ]);
  for (const [who, eku] of [
    ['server', 'serverAuth'],
    ['client', 'clientAuth'],
  ] as const) {
    writeFileSync(
      join(dir, `${who}.ext`),
      `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=${eku}\n`,
    );
    await ossl(['req', ...ec, '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=pplab-${who}`]);
    await ossl([
      'x509',
      '-req',
      '-in',
      `${who}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${who}.crt`,
      '-days',
      '1',
      '-extfile',
      `${who}.ext`,
    ]);
  }
}

/**
 * OpenVPN 2.6 in TLS mode (point-to-point, `--tls-server` on the relay, `--tls-client` on the device
 * dialling through its carrier NAT), UDP, data channel AES-256-GCM only, real certificates.
 * Userspace (no DCO module in this kernel), OpenVPN's defaults otherwise (tun MTU 1500, mssfix).
 */
export async function startOpenvpnTls(
  lab: Lab,
  work: string,
  o: { dev: string; net: string; port: number },
): Promise<PeerTunnel> {
  const pki = join(work, 'pki');
  await makePki(lab, pki);
  const common = [
    ...['--dev', o.dev, '--dev-type', 'tun', '--proto', 'udp'],
    ...['--ca', join(pki, 'ca.crt'), '--dh', 'none'],
    ...['--data-ciphers', 'AES-256-GCM', '--ping', '5', '--ping-restart', '30', '--verb', '3'],
  ];
  const srv = lab.spawn('relay', 'openvpn', [
    ...common,
    ...['--tls-server', '--cert', join(pki, 'server.crt'), '--key', join(pki, 'server.key')],
    ...['--port', String(o.port), '--ifconfig', `${o.net}.1`, `${o.net}.2`],
  ]);
  const cli = lab.spawn('dev1', 'openvpn', [
    ...common,
    ...[
      '--tls-client',
      '--remote-cert-tls',
      'server',
      '--cert',
      join(pki, 'client.crt'),
      '--key',
      join(pki, 'client.key'),
    ],
    ...['--remote', lab.relay.ip, String(o.port), '--nobind', '--ifconfig', `${o.net}.2`, `${o.net}.1`],
  ]);
  await cli.waitForLine(/Initialization Sequence Completed/, 30_000);
  await srv.waitForLine(/Initialization Sequence Completed/, 10_000);
  // The data-channel line may follow "Initialization Sequence Completed"; either side prints it.
  const dataLine = /Data Channel: (?:using negotiated )?cipher '([^']+)'/;
  const line = await Promise.any([cli.waitForLine(dataLine, 10_000), srv.waitForLine(dataLine, 10_000)]).catch(
    () => '',
  );
  const cipher = dataLine.exec(line)?.[1] ?? '?';
  const ctrl = /Control Channel: (TLSv[\d.]+)/.exec(cli.output())?.[1] ?? '?';
  if (cipher !== 'AES-256-GCM')
    throw new Error(
      `openvpn negotiated data cipher ${cipher}, not AES-256-GCM; client: ${cli.lines.slice(-12).join(' | ')}`,
    );
  return {
    name: 'openvpn',
    devIp: `${o.net}.2`,
    relayIp: `${o.net}.1`,
    net: `${o.net}.0/24`,
    relayIf: o.dev,
    devIf: o.dev,
    detail: `OpenVPN 2.6 TLS (${ctrl}), data channel ${cipher}, UDP`,
    procs: [srv, cli],
  };
}

/** The relay's DNAT of two public ports to the device's proxies over `t`, masqueraded to the relay's tunnel address. */
export function peerNatRules(lab: Lab, chains: { t: PeerTunnel; httpPort: number; socksPort: number }[]): string {
  const lines = [
    `table inet ${PEER_TABLE} {`,
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...chains.flatMap(({ t, httpPort, socksPort }) => [
      `    ip daddr ${lab.relay.ip} tcp dport ${httpPort} dnat ip to ${t.devIp}:${TINYPROXY_PORT}`,
      `    ip daddr ${lab.relay.ip} tcp dport ${socksPort} dnat ip to ${t.devIp}:${DANTE_PORT}`,
    ]),
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    ...chains.map(({ t }) => `    oifname "${t.relayIf}" ip daddr ${t.devIp} masquerade`),
    '  }',
    '}',
    '',
  ];
  return lines.join('\n');
}

export async function addPeerNat(lab: Lab, ruleset: string): Promise<void> {
  await lab.exec('relay', 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1'], { check: true });
  await lab.exec('relay', 'nft', ['-f', '-'], { input: ruleset, check: true });
}

export async function removePeerNat(lab: Lab): Promise<void> {
  if (lab.isTornDown) return;
  await lab.exec('relay', 'nft', ['delete', 'table', 'inet', PEER_TABLE]);
}

/** tinyproxy 1.11 (a thread per connection) on `t`'s device address, BasicAuth, egress bound to `egressIp`. */
export async function startTinyproxy(
  lab: Lab,
  work: string,
  t: PeerTunnel,
  cred: { user: string; pass: string },
  egressIp: string,
): Promise<LabProcess> {
  const conf = join(work, `tinyproxy-${t.name}.conf`);
  writeFileSync(
    conf,
    [
      'User nobody',
      'Group nogroup',
      `Port ${TINYPROXY_PORT}`,
      `Listen ${t.devIp}`,
      `Bind ${egressIp}`,
      'Timeout 60',
      'MaxClients 1024',
      // Logs at error level only (ours runs at warn), to stderr (captured by the lab).
      'LogLevel Error',
      'Syslog Off',
      `Allow ${t.relayIp}`,
      `BasicAuth ${cred.user} ${cred.pass}`,
      'DisableViaHeader Yes',
      '',
    ].join('\n'),
  );
  const p = lab.spawn('dev1', 'tinyproxy', ['-d', '-c', conf]);
  await waitUntil(
    async () => (await lab.exec('dev1', 'ss', ['-Hltn', `sport = :${TINYPROXY_PORT}`])).stdout.includes(t.devIp),
    {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: `tinyproxy listening on ${t.devIp}:${TINYPROXY_PORT} (${p.output().slice(-300)})`,
    },
  );
  return p;
}

/** danted 1.4 (SOCKS5, username method against the system user `user`) on `t`'s device address. */
export async function startDante(lab: Lab, work: string, t: PeerTunnel, egressIface: string): Promise<LabProcess> {
  const conf = join(work, `danted-${t.name}.conf`);
  writeFileSync(
    conf,
    [
      'logoutput: stderr',
      `internal: ${t.devIp} port = ${DANTE_PORT}`,
      `external: ${egressIface}`,
      'clientmethod: none',
      'socksmethod: username',
      // root to read /etc/shadow for the username check; the rest runs as nobody.
      'user.privileged: root',
      'user.unprivileged: nobody',
      // (dante's parser wants a rule's keywords on lines of their own)
      'client pass {',
      `  from: ${t.net} to: 0.0.0.0/0`,
      '  log: error',
      '}',
      'socks pass {',
      `  from: ${t.net} to: 0.0.0.0/0`,
      '  command: connect',
      '  socksmethod: username',
      '  log: error',
      '}',
      'socks block {',
      '  from: 0.0.0.0/0 to: 0.0.0.0/0',
      '  log: error',
      '}',
      '',
    ].join('\n'),
  );
  const p = lab.spawn('dev1', 'danted', ['-f', conf]);
  await waitUntil(
    async () => (await lab.exec('dev1', 'ss', ['-Hltn', `sport = :${DANTE_PORT}`])).stdout.includes(t.devIp),
    {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: `danted listening on ${t.devIp}:${DANTE_PORT} (${p.output().slice(-300)})`,
    },
  );
  return p;
}

// ---- the throwaway system user for dante's username method ---------------------------------------
const USER_TAG = 'pocketproxy bench peer user, owner pid';

/**
 * Creates a system user (no home, no login shell) with a random password. Dante's username method
 * runs crypt() on every connection: the user gets an MD5-crypt hash (~0.2 ms a check here) rather
 * than Debian's default SHA-512 with 5,000 rounds (~2 ms), so the peer is measured at its cheapest.
 */
export function createBenchUser(prefix: string): { user: string; pass: string } {
  removeStaleBenchUsers();
  const user = `ppb${prefix.slice(2)}`;
  const pass = randomBytes(12).toString('hex');
  const add = spawnSync(
    'useradd',
    [
      '--system',
      '--no-create-home',
      '--no-user-group',
      '--shell',
      '/usr/sbin/nologin',
      '--home-dir',
      '/nonexistent',
      '--comment',
      `${USER_TAG} ${process.pid}`,
      user,
    ],
    { encoding: 'utf8', timeout: 10_000 },
  );
  if (add.status !== 0) throw new Error(`useradd ${user}: ${add.stderr}`);
  const pw = spawnSync('chpasswd', ['-c', 'MD5'], { input: `${user}:${pass}\n`, encoding: 'utf8', timeout: 10_000 });
  if (pw.status !== 0) {
    removeBenchUser(user);
    throw new Error(`chpasswd ${user}: ${pw.stderr}`);
  }
  return { user, pass };
}

export function removeBenchUser(user: string): void {
  spawnSync('userdel', [user], { timeout: 10_000 });
}

/** Users of earlier runs whose owner process is gone (a run killed with SIGKILL). */
function removeStaleBenchUsers(): void {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    const m = f[4]?.startsWith(USER_TAG) ? /(\d+)$/.exec(f[4]) : null;
    if (!m || !f[0]) continue;
    let alive = true;
    try {
      process.kill(Number(m[1]), 0);
    } catch (e) {
      alive = (e as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive) removeBenchUser(f[0]);
  }
}
