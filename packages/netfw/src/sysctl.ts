// Kernel settings the rules depend on, as data: the app applies them through the runner
// (`firewall.applySysctls()`), a deployment may prefer /etc/sysctl.d; either way they are listed here.
// route_localnet is NOT needed: we REDIRECT (to the incoming interface's address), never DNAT
// to 127.0.0.1. https://docs.kernel.org/networking/ip-sysctl.html
import type { ValidState } from './state.js';

export interface Sysctl {
  readonly key: string;
  readonly value: string;
  readonly why: string;
}

export function requiredSysctls(_state?: ValidState): Sysctl[] {
  return [{ key: 'net.ipv4.ip_forward', value: '1', why: 'DNAT to devices forwards packets between interfaces' }];
}

/** argv for `sysctl -w key=value`. */
export function sysctlArgs(s: Sysctl): string[] {
  return ['-w', `${s.key}=${s.value}`];
}
