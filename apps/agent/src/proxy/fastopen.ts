// TCP Fast Open on the device's proxy listeners (the addon sets TCP_FASTOPEN on each front listener):
// the relay's SOCKS5 front (apps/server tunnel/socks5-front.ts) opens its device socket with the
// customer's greeting and credentials in the SYN, so the device answers them without a round trip
// more over the cellular link. The kernel serves that only with the server bit of
// net.ipv4.tcp_fastopen (per network namespace); this sets it, leaving the other bits as they are.
// Only listeners that ask (TCP_FASTOPEN) are affected. Best effort: without root, or on a kernel
// without the file, the listeners just take plain SYNs.
import { readFileSync, writeFileSync } from 'node:fs';

export const TCP_FASTOPEN_SYSCTL = '/proc/sys/net/ipv4/tcp_fastopen';
const SERVER_ENABLE = 0x2;

/** 'on' (already or now), or why not. */
export function enableFastOpenServer(path = TCP_FASTOPEN_SYSCTL): 'on' | string {
  try {
    const v = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    if (!Number.isInteger(v) || v < 0) return `unreadable value in ${path}`;
    if ((v & SERVER_ENABLE) !== 0) return 'on';
    writeFileSync(path, String(v | SERVER_ENABLE));
    return 'on';
  } catch (err) {
    return (err as Error).message;
  }
}
