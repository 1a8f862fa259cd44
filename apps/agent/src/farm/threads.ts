// `farm --threads N|auto` (default auto: one per core, at most 8; cli.ts autoThreads): the farm's devices
// spread over N worker threads, started as devices need them. Each device's whole agent (its
// tunnel and TUN, its listeners and native front engine, heartbeat, rotation driver and metrics) runs on
// one worker, chosen as the one with the fewest devices; the supervisor (scans, enrollment, routes,
// farm-status.json) stays on the main thread and sees a device's agent only as start() and stop().
//
// Why: an agent's per-connection work (the packet path, the front engine, the JS that decides) is one
// thread's, and on the main loop every device of the host shares that one thread. In the lab two agents
// on two threads carried 20-31 % more new connections/s than one agent with the same load, on the same two
// cores (docs/benchmarks.md "what keeps our chain from filling the two cores, revisited"), and four phones
// of one farm carried 12-26 % more on two workers than on one thread in four runs of five (`npm run
// bench:farm-traffic`); a farm host with 4-8 cores and tens of phones would otherwise use one core for all
// its customers.
//
// What crosses the thread boundary is data only: the device's RunConfig, its saved state (the API client
// is built on the worker from it, as `run` builds it), which phone or modem it is (the worker builds its
// rotation driver and metrics with its own adb / mmcli clients) and the logger's bindings. A worker that
// dies takes the farm process with it (onFatal), as the agent's tunnel worker does: the service manager
// restarts the farm, and every device comes back from its saved state.
import { Worker } from 'node:worker_threads';
import type { Agent, RunConfig } from '../agent.js';
import type { AgentState } from '../state.js';

/** What a worker needs to run one device's agent (structured-cloned to it). */
export interface DeviceSpec {
  readonly cfg: RunConfig;
  readonly state: AgentState;
  readonly kind: 'phone' | 'modem';
  readonly hardwareId: string;
  /** ModemManager's index of a modem (the supervisor sends a new one when a rescan finds it changed). */
  readonly modemId?: string;
  /** The device's logger bindings (device key, device id). */
  readonly bindings: Readonly<Record<string, string>>;
}

/** The farm's options a worker builds its devices' parts from (farm/run.ts builds the same on the main thread). */
export interface FarmPartsOptions {
  readonly adb?: string;
  readonly mmcli?: string;
  readonly rotateMethod: 'airplane' | 'data';
  readonly airplaneSeconds: number;
  readonly insecureHttp: boolean;
}

/** workerData of a farm worker: the agent's entry point hands over to worker.ts's runFarmWorker on it. */
export interface FarmWorkerData {
  readonly ppRole: 'farm';
  readonly logLevel: string;
  readonly parts: FarmPartsOptions;
}

/** main thread -> worker: `dev` names the device's agent on the worker, `req` the request its answer settles. */
export type ToFarmWorker =
  | { t: 'start'; dev: number; req: number; spec: DeviceSpec }
  | { t: 'stop'; dev: number; req: number }
  | { t: 'modem'; dev: number; modemId: string };
/** worker -> main thread: the answer to a start or a stop */
export type FromFarmWorker = { t: 'done'; req: number } | { t: 'failed'; req: number; error: string };

/** A device's agent on a worker, as the supervisor uses an agent. */
export interface RemoteAgent extends Pick<Agent, 'start' | 'stop'> {
  /** Which worker runs it (counted from 0). */
  readonly thread: number;
  /** A rescan found the modem under another ModemManager index. */
  modemChanged(modemId: string): void;
}

/** Makes the remote agents of the farm's devices (farm/supervisor.ts FarmDeps.remote). */
export interface RemoteAgents {
  create(spec: DeviceSpec): RemoteAgent;
  /** Devices per worker, in worker order (tests, the bench). */
  load(): number[];
}

interface Slot {
  worker: Worker | undefined;
  devices: number;
}

/**
 * N workers, started when a device first needs one. `entry` is the agent's own entry point (one bundle,
 * as for the tunnel worker); `spawn` is for tests.
 */
export function farmThreads(
  threads: number,
  entry: string,
  data: FarmWorkerData,
  onFatal: (e: unknown) => void,
  spawn: (entry: string, data: FarmWorkerData) => Worker = (e, d) => new Worker(e, { workerData: d, argv: [] }),
): RemoteAgents {
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a positive integer: ${threads}`);
  const slots: Slot[] = Array.from({ length: threads }, () => ({ worker: undefined, devices: 0 }));
  const waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  let nextDev = 1;
  let nextReq = 1;

  const workerOf = (slot: Slot): Worker => {
    if (slot.worker) return slot.worker;
    const w = spawn(entry, data);
    w.on('message', (m: FromFarmWorker) => {
      const p = waiting.get(m.req);
      if (!p) return;
      waiting.delete(m.req);
      if (m.t === 'failed') p.reject(new Error(m.error));
      else p.resolve();
    });
    w.once('error', (e) => onFatal(e));
    w.once('exit', (code) => onFatal(new Error(`a farm worker thread exited (code ${code})`)));
    slot.worker = w;
    return w;
  };

  const ask = (w: Worker, m: Extract<ToFarmWorker, { req: number }>): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      waiting.set(m.req, { resolve, reject });
      try {
        w.postMessage(m);
      } catch (e) {
        // A spec that cannot be cloned to the worker: nothing will answer this request.
        waiting.delete(m.req);
        reject(e);
      }
    });

  return {
    create(spec) {
      const slot = slots.reduce((a, b) => (b.devices < a.devices ? b : a));
      const thread = slots.indexOf(slot);
      // The worker first: a worker that cannot start leaves no device counted on it.
      const w = workerOf(slot);
      slot.devices++;
      const dev = nextDev++;
      let started = false;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        slot.devices--;
      };
      return {
        thread,
        start: () => {
          if (started) return Promise.reject(new Error('already started'));
          started = true;
          return ask(w, { t: 'start', dev, req: nextReq++, spec });
        },
        // May come while the start is still under way (the supervisor does not wait for a start).
        stop: async () => {
          if (released) return;
          if (!started) return release();
          try {
            await ask(w, { t: 'stop', dev, req: nextReq++ });
          } finally {
            release();
          }
        },
        modemChanged: (modemId) => w.postMessage({ t: 'modem', dev, modemId } satisfies ToFarmWorker),
      };
    },
    load: () => slots.map((s) => s.devices),
  };
}
