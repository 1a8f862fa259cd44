// A farm worker thread (threads.ts): runs the agents of the devices the main thread gives it, each
// built as the supervisor builds one on the main loop (agent.ts createAgent with the device's API
// client, its rotation driver and metrics, the kernel TUN on this thread's loop).
import { parentPort } from 'node:worker_threads';
import { createAgent, type Agent } from '../agent.js';
import { createLogger } from '../log.js';
import { trustedApiClient } from '../trust.js';
import { inProcessTunnel, kernelTun } from '../tunnel/host.js';
import { farmParts } from './run.js';
import type { FarmWorkerData, FromFarmWorker, ToFarmWorker } from './threads.js';

export function runFarmWorker(data: FarmWorkerData): void {
  const port = parentPort;
  if (!port) throw new Error('runFarmWorker: not on a worker thread');
  const logger = createLogger({ level: data.logLevel });
  const { drivers } = farmParts(data.parts, logger);
  const startTunnel = inProcessTunnel(kernelTun);
  const agents = new Map<number, Agent>();
  const modems = new Map<number, string>();
  const answer = (m: FromFarmWorker) => port.postMessage(m);

  port.on('message', (m: ToFarmWorker) => {
    if (m.t === 'modem') {
      modems.set(m.dev, m.modemId);
      return;
    }
    if (m.t === 'stop') {
      const agent = agents.get(m.dev);
      agents.delete(m.dev);
      modems.delete(m.dev);
      if (!agent) return answer({ t: 'done', req: m.req });
      agent.stop().then(
        () => answer({ t: 'done', req: m.req }),
        (e: Error) => answer({ t: 'failed', req: m.req, error: e.message }),
      );
      return;
    }
    const { spec } = m;
    let agent: Agent;
    try {
      const log = logger.child(spec.bindings);
      if (spec.modemId !== undefined) modems.set(m.dev, spec.modemId);
      const modemId = () => modems.get(m.dev) ?? spec.modemId ?? '';
      agent = createAgent(spec.cfg, {
        logger: log,
        api: trustedApiClient(spec.state, { insecureHttp: data.parts.insecureHttp, logger: log }),
        startTunnel,
        driver: spec.kind === 'phone' ? drivers.phone(spec.hardwareId) : drivers.modem(modemId),
        metrics: () =>
          spec.kind === 'phone' ? drivers.phoneMetrics(spec.hardwareId) : drivers.modemMetrics(modemId()),
      });
    } catch (e) {
      return answer({ t: 'failed', req: m.req, error: (e as Error).message });
    }
    agents.set(m.dev, agent);
    agent.start().then(
      () => answer({ t: 'done', req: m.req }),
      (e: Error) => answer({ t: 'failed', req: m.req, error: e.message }),
    );
  });
}
