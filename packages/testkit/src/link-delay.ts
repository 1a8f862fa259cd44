// A carrier's delay on a device's tunnel, for the lab (this kernel has no sch_netem): udp-delay.c in the
// device's carrier NAT holds every tunnel datagram D ms each way. Used by the benches' delayed runs and by
// http-front-auto.lab.test.ts (a far device).
import { join } from 'node:path';
import type { Lab } from './lab.js';
import { CGN_LAN } from './plan.js';

const DELAY_PORT = 39_901;
/** The relay's tunnel port (POCKETPROXY_TUNNEL_PORT's default, which the lab keeps). */
const TUNNEL_PORT = 1194;
const DELAY_SRC = new URL('../bench/udp-delay.c', import.meta.url).pathname;

/**
 * `ms` each way on device 1's tunnel: udp-delay in its carrier NAT, the device's datagrams to the
 * relay's tunnel port redirected to it; the flow's conntrack entry is dropped so the next datagram takes
 * the redirect, and the relay takes the device's new source port as it would a carrier's rebinding.
 */
export async function carrierDelay(lab: Lab, work: string, ms: number): Promise<{ stop(): Promise<void> }> {
  const cgn = lab.device(1).cgnNs;
  const bin = join(work, 'udp-delay');
  await lab.exec(cgn, 'cc', ['-O2', '-o', bin, DELAY_SRC], { check: true, timeoutMs: 60_000 });
  const p = lab.spawn(cgn, bin, [String(DELAY_PORT), lab.relay.ip, String(TUNNEL_PORT), String(ms)]);
  await p.waitForLine(/listening/, 10_000);
  const script = [
    'table ip pp_delay {',
    '  chain redir { type nat hook prerouting priority dstnat - 5; policy accept;',
    `    iifname "${CGN_LAN}" ip daddr ${lab.relay.ip} udp dport ${TUNNEL_PORT} redirect to :${DELAY_PORT}`,
    '  }',
    '}',
  ].join('\n');
  await lab.exec(cgn, 'nft', ['-f', '-'], { check: true, input: script });
  await lab.exec(cgn, 'conntrack', ['-D', '-p', 'udp', '--orig-port-dst', String(TUNNEL_PORT)]);
  return {
    async stop() {
      await lab.exec(cgn, 'nft', ['delete', 'table', 'ip', 'pp_delay']).catch(() => undefined);
      await lab
        .exec(cgn, 'conntrack', ['-D', '-p', 'udp', '--orig-port-dst', String(TUNNEL_PORT)])
        .catch(() => undefined);
      await p.stop(2000).catch(() => undefined);
    },
  };
}

const TUN_DELAY_SRC = new URL('../bench/tun-delay.c', import.meta.url).pathname;
const TARGET_DELAY_IF = 'ppdly0';
const TARGET_DELAY_TABLE = '7601';

/**
 * `ms` one way on what the lab's servers (203.0.113.0/24 in the inet namespace) send to the carriers'
 * addresses (198.18.0.0/16): a far target, so a device's connect to it and each of its answers take `ms`
 * longer, as a target across the internet would for a phone. tun-delay.c holds those packets on a TUN
 * interface (the servers' source addresses route into it) and gives them back on the same interface,
 * routed on by the main table; the relay's and customers' traffic through inet is not delayed.
 */
export async function targetDelay(lab: Lab, work: string, ms: number): Promise<{ stop(): Promise<void> }> {
  const bin = join(work, 'tun-delay');
  await lab.exec('inet', 'cc', ['-O2', '-o', bin, TUN_DELAY_SRC], { check: true, timeoutMs: 60_000 });
  const p = lab.spawn('inet', bin, [TARGET_DELAY_IF, String(ms)]);
  await p.waitForLine(/listening/, 10_000);
  const sh = (script: string) => lab.exec('inet', 'sh', ['-c', script], { check: true });
  const undo = [
    `ip rule del pref 101 from 203.0.113.0/24 lookup ${TARGET_DELAY_TABLE}`,
    `ip rule del pref 100 iif ${TARGET_DELAY_IF} lookup main`,
    `ip route flush table ${TARGET_DELAY_TABLE}`,
  ];
  try {
    // What comes back out of the interface carries a local source address: accepted there (accept_local),
    // without the reverse-path check.
    await sh(
      [
        `ip link set ${TARGET_DELAY_IF} up`,
        `sysctl -qw net.ipv4.conf.${TARGET_DELAY_IF}.rp_filter=0 net.ipv4.conf.${TARGET_DELAY_IF}.accept_local=1`,
        `ip route add 198.18.0.0/16 dev ${TARGET_DELAY_IF} table ${TARGET_DELAY_TABLE}`,
        `ip rule add pref 100 iif ${TARGET_DELAY_IF} lookup main`,
        `ip rule add pref 101 from 203.0.113.0/24 lookup ${TARGET_DELAY_TABLE}`,
      ].join(' && '),
    );
  } catch (e) {
    for (const u of undo) await sh(u).catch(() => undefined);
    await p.stop(2000).catch(() => undefined);
    throw e;
  }
  return {
    async stop() {
      for (const u of undo) await sh(u).catch(() => undefined);
      await p.stop(2000).catch(() => undefined);
      // A full queue drops packets (retransmissions then lengthen the figures measured through it).
      const dropped = Number(/dropped (\d+)/.exec(p.lines.join('\n'))?.[1] ?? 0);
      if (dropped > 0) console.error(`targetDelay: tun-delay dropped ${dropped} packets (its queue was full)`);
    },
  };
}
