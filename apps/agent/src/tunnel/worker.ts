// The tunnel worker thread (see host.ts): opens and configures the TUN, runs the tunnel client and
// the whole packet path, and talks to the main thread in JSON messages and state snapshots only.
import { parentPort } from 'node:worker_threads';
import { once } from 'node:events';
import { setThreadName } from '@pocketproxy/tun';
import { createLogger } from '../log.js';
import { kernelTun, runTunnel, type FromWorker, type ToWorker, type WorkerData } from './host.js';

/** How often the main thread's copy of the tunnel stats is refreshed (events refresh it at once). */
const STATE_EVERY_MS = 1_000;

export async function runTunnelWorker(data: WorkerData): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('runTunnelWorker: not on a worker thread');
  // `top -H` and the data-plane bench tell this thread from V8's helpers by its name.
  setThreadName('pp-tunnel');
  const post = (m: FromWorker) => port.postMessage(m);
  const logger = createLogger({ level: data.logLevel });
  // Started ahead of time (host.ts workerTunnel): loaded, now wait for the spec.
  let spec = data.spec;
  while (!spec) {
    const [m] = (await once(port, 'message')) as [ToWorker];
    if (m.t === 'start') spec = m.spec;
    else if (m.t === 'stop') {
      post({ t: 'stopped' });
      port.close();
      return;
    }
  }
  const tunSpec = spec;
  let ran: Awaited<ReturnType<typeof runTunnel>>;
  try {
    ran = await runTunnel(tunSpec, kernelTun, (message) => post({ t: 'message', message }), logger);
  } catch (e) {
    post({ t: 'failed', error: (e as Error)?.message ?? String(e) });
    return;
  }
  const { tun, client } = ran;
  const state = () => post({ t: 'state', stats: client.stats() });
  for (const ev of ['established', 'down', 'transport'] as const) client.on(ev, state);
  const timer = setInterval(state, STATE_EVERY_MS);
  port.on('message', (m: ToWorker) => {
    if (m.t === 'send') client.sendMessage(m.message);
    else if (m.t === 'stop') {
      clearInterval(timer);
      void client.stop().finally(async () => {
        tun.close();
        await kernelTun.unconfigureTun?.(tunSpec.tun).catch(() => {});
        post({ t: 'stopped' });
        port.close();
      });
    }
  });
  post({ t: 'started', tunName: tun.name, stats: client.stats() });
}
