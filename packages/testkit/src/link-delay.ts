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
