// The customer OpenVPN server (docs/design.md §2.4), supervised by the tunnel process:
//
//   customer openvpn client --UDP :1195--> openvpn (tun1, 10.9.0.0/24, config generated here)
//     logins -> management socket -> management.ts (in the tunnel process) -> API internal routes
//            -> the customer's address and the transparent proxy's client map
//     TCP  -> nft REDIRECT -> transparent proxy :12345 -> CONNECT via the device
//     DNS  -> nft REDIRECT -> DNS forwarder :5353 -> DNS over TCP via the device (dns.ts)
//     UDP 443 -> icmp port-unreachable; other UDP -> admin-prohibited (netfw)
//
// Files in `${dataDir}/openvpn/` (0700): pki/ (pki.ts), server.conf (rewritten at every start),
// management.sock (openvpn's management interface, root only), status.log.
import { accessSync, chmodSync, constants, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { OpenvpnApi, OpenvpnRoute } from '../tunnel/api-client.js';
import { createDnsForwarder, type DnsForwarder, type DnsRoute } from './dns.js';
import { startManagement, type Management, type ManagementOptions } from './management.js';
import { ensurePki, readPem } from './pki.js';
import { OPENVPN_INTERFACE, OPENVPN_TUN_MTU, parseOvpnSubnet, renderProfile, renderServerConfig } from './render.js';
import { superviseProcess, type Supervisor } from './supervisor.js';

export { OPENVPN_INTERFACE, OPENVPN_TUN_MTU };

export const openvpnDir = (config: Pick<Config, 'dataDir'>) => join(config.dataDir, 'openvpn');

/** Absolute path of the `openvpn` binary, or null. */
export function findOpenvpnBinary(path = process.env.PATH ?? ''): string | null {
  for (const dir of [...path.split(delimiter), '/usr/sbin', '/sbin', '/usr/local/sbin']) {
    if (!dir) continue;
    const p = join(dir, 'openvpn');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

export interface OpenvpnDecision {
  readonly enabled: boolean;
  readonly reason: string;
  readonly binary: string | null;
}

/** POCKETPROXY_OPENVPN: off; on (must work, else the tunnel refuses to start); auto = on if openvpn exists and we are root. */
export function openvpnDecision(
  config: Pick<Config, 'openvpn'>,
  probe: { binary?: string | null; root?: boolean } = {},
): OpenvpnDecision {
  const binary = probe.binary !== undefined ? probe.binary : findOpenvpnBinary();
  const root = probe.root ?? process.getuid?.() === 0;
  if (config.openvpn === 'off') return { enabled: false, reason: 'POCKETPROXY_OPENVPN=off', binary };
  const missing = !binary
    ? 'the openvpn binary was not found (apt install openvpn)'
    : !root
      ? 'not running as root'
      : null;
  if (missing === null) return { enabled: true, reason: `POCKETPROXY_OPENVPN=${config.openvpn}`, binary };
  if (config.openvpn === 'on') throw new Error(`POCKETPROXY_OPENVPN=on but ${missing}`);
  return { enabled: false, reason: `POCKETPROXY_OPENVPN=auto: ${missing}`, binary };
}

export interface StartOpenvpnOptions {
  readonly config: Config;
  readonly logger: Logger;
  /** Customer address -> its connection's proxy on the device (the transparent proxy's client map). */
  readonly clients: Map<string, OpenvpnRoute>;
  /** The API's OpenVPN routes, asked at each login. */
  readonly api: OpenvpnApi;
  /** Customers of devices that read stamps: their TCP carried to the device (./carry.ts). */
  readonly carry?: ManagementOptions['carry'];
  readonly binary: string;
}

export interface OpenvpnServer {
  readonly supervisor: Supervisor;
  readonly dns: DnsForwarder;
  readonly management: Management;
  readonly configPath: string;
  stop(): Promise<void>;
}

/** PKI, server.conf, DNS forwarder, then `openvpn` under supervision and its management client. */
export async function startOpenvpn(o: StartOpenvpnOptions): Promise<OpenvpnServer> {
  const log = o.logger.child({ subsys: 'openvpn' });
  const dir = openvpnDir(o.config);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const pki = ensurePki(dir);
  if (pki.created) log.info({ dir: pki.dir }, 'OpenVPN PKI created');
  // What older versions left: the hook script, its token file and openvpn's credential files.
  for (const old of ['tmp', 'hook.mjs', 'hook.json']) rmSync(join(dir, old), { recursive: true, force: true });
  const managementSocket = join(dir, 'management.sock');
  rmSync(managementSocket, { force: true });
  const subnet = parseOvpnSubnet(o.config.openvpnSubnet);
  const configPath = join(dir, 'server.conf');
  const text = renderServerConfig({
    port: o.config.openvpnPort,
    subnet: o.config.openvpnSubnet,
    iface: OPENVPN_INTERFACE,
    pki,
    managementSocket,
    statusFile: join(dir, 'status.log'),
    dns: subnet.serverAddress,
  });
  writeFileSync(configPath, text, { mode: 0o600 });
  const dns = createDnsForwarder({
    host: '0.0.0.0',
    port: o.config.openvpnDnsPort,
    upstream: o.config.openvpnDns,
    lookup: (ip): DnsRoute | undefined => o.clients.get(ip),
    logger: o.logger,
  });
  await dns.start();
  const pidFile = join(dir, 'openvpn.pid');
  const stale = await stopStaleOpenvpn(pidFile, configPath);
  if (stale) log.warn({ pid: stale }, 'stopped an openvpn left running by a previous tunnel process');
  const supervisor = superviseProcess({
    binary: o.binary,
    args: ['--config', configPath, '--writepid', pidFile],
    logger: o.logger,
  });
  supervisor.start();
  const management = startManagement({
    socketPath: managementSocket,
    subnet,
    api: o.api,
    clients: o.clients,
    ...(o.carry ? { carry: o.carry } : {}),
    logger: o.logger,
  });
  log.info(
    {
      port: o.config.openvpnPort,
      subnet: o.config.openvpnSubnet,
      iface: OPENVPN_INTERFACE,
      dnsUpstream: o.config.openvpnDns,
    },
    'customer OpenVPN server supervised',
  );
  return {
    supervisor,
    dns,
    management,
    configPath,
    async stop() {
      await management.close();
      await supervisor.stop();
      await dns.close();
    },
  };
}

/**
 * A tunnel process that died without stopping (SIGKILL, crash) leaves its openvpn running, holding
 * the port. Its pid file names it; it is stopped only if /proc shows that very pid running openvpn
 * with our config path (never another process that reused the pid). Answers the pid stopped.
 */
export async function stopStaleOpenvpn(pidFile: string, configPath: string): Promise<number | undefined> {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return undefined;
  }
  rmSync(pidFile, { force: true });
  const ours = () => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return /openvpn$/.test(argv[0] ?? '') && argv.includes(configPath);
    } catch {
      return false;
    }
  };
  if (!Number.isInteger(pid) || pid <= 1 || !ours()) return undefined;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && ours(); i++) await new Promise((r) => setTimeout(r, 100));
  if (ours()) process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 20 && ours(); i++) await new Promise((r) => setTimeout(r, 100));
  return pid;
}

/** For the API: the .ovpn profile of a connection (the PKI is created on first use if the tunnel has not yet). */
export function ovpnProfileProvider(
  config: Config,
  usernameOf?: (connectionId: string) => Promise<string | undefined>,
): ((connectionId: string) => Promise<string | null>) | undefined {
  let decision: OpenvpnDecision;
  try {
    decision = openvpnDecision(config);
  } catch {
    decision = { enabled: true, reason: 'on', binary: null }; // "on": the tunnel reports the problem; profiles still work
  }
  if (!decision.enabled) return undefined;
  return async (connectionId) => {
    const dir = openvpnDir(config);
    const pki = ensurePki(dir);
    return renderProfile({
      host: config.publicHost,
      port: config.openvpnPort,
      caCert: readPem(pki.caCert),
      tlsCrypt: readFileSync(pki.tlsCrypt, 'utf8'),
      connectionId,
      username: usernameOf ? await usernameOf(connectionId) : undefined,
    });
  };
}
