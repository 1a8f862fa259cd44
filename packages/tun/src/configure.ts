// Gives a TUN interface its MTU, address and link state with `ip`, through an injected runner.
// Idempotent: `ip addr replace` rather than `add`, so running it twice changes nothing.
import { isIP } from 'node:net';
import { fail } from './errors.js';
import type { CommandRunner } from './runner.js';

export interface TunConfig {
  name: string;
  /** The interface's own address, e.g. "10.254.0.1" (IPv4 or IPv6). */
  address: string;
  prefixLength: number;
  mtu: number;
  /** Bring the link up (default true). */
  up?: boolean;
}

/** The `ip` commands, as argument vectors, that configureTun runs, in order. */
export function renderTunCommands(cfg: TunConfig): string[][] {
  const family = isIP(cfg.address);
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(cfg.name))
    throw fail('PP_ERR_TUN_INVALID_CONFIG', { field: 'name', reason: `"${cfg.name}" is not an interface name` });
  if (family === 0)
    throw fail('PP_ERR_TUN_INVALID_CONFIG', { field: 'address', reason: `"${cfg.address}" is not an IP address` });
  const maxPrefix = family === 4 ? 32 : 128;
  if (!Number.isInteger(cfg.prefixLength) || cfg.prefixLength < 0 || cfg.prefixLength > maxPrefix) {
    throw fail('PP_ERR_TUN_INVALID_CONFIG', { field: 'prefixLength', reason: `must be an integer 0-${maxPrefix}` });
  }
  // 68 is IPv4's minimum MTU (RFC 791), 1280 IPv6's (RFC 8200).
  const minMtu = family === 4 ? 68 : 1280;
  if (!Number.isInteger(cfg.mtu) || cfg.mtu < minMtu || cfg.mtu > 65535) {
    throw fail('PP_ERR_TUN_INVALID_CONFIG', { field: 'mtu', reason: `must be an integer ${minMtu}-65535` });
  }
  const cmds = [
    ['link', 'set', 'dev', cfg.name, 'mtu', String(cfg.mtu)],
    ['addr', 'replace', `${cfg.address}/${cfg.prefixLength}`, 'dev', cfg.name],
  ];
  if (cfg.up !== false) cmds.push(['link', 'set', 'dev', cfg.name, 'up']);
  return cmds.map((args) => (family === 6 ? ['-6', ...args] : args));
}

export async function configureTun(cfg: TunConfig, runner: CommandRunner): Promise<void> {
  for (const args of renderTunCommands(cfg)) await runner.run('ip', args);
}
