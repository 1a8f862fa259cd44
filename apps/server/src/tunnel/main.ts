// Placeholder until the data-plane issue lands: the tunnel process. It refuses to start rather than
// pretend to forward packets.
import type { Config } from '../config.js';

export async function runTunnel(_config: Config): Promise<() => Promise<void>> {
  process.stderr.write('pocketproxy tunnel: the device tunnel is not built yet in this version (see issue "Data plane")\n');
  process.exit(3);
}
