import { accessSync, constants } from 'node:fs';
import type { Config } from './config.js';

/** null when the tunnel can run here; otherwise the plain reason it cannot. */
export function tunnelAvailability(config: Config): string | null {
  if (config.tunnel === 'off') return 'POCKETPROXY_TUNNEL=off';
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    return 'not running as root (the tunnel needs CAP_NET_ADMIN for TUN and nftables)';
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    return '/dev/net/tun is missing or not accessible';
  }
  return null;
}
