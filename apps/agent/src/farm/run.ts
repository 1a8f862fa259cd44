// `pocketproxy-agent farm`, wired from the real parts: adb and mmcli (DRIVERS' modules), the
// kernel TUN, `ip` for routes. The devices' agents run on this event loop, or with `--threads N`
// (N > 1) on N worker threads (threads.ts; worker.ts builds the same parts there).
import type { Logger } from 'pino';
import type { FarmCli } from '../cli.js';
import { inProcessTunnel, kernelTun } from '../tunnel/host.js';
import { createAdb, type Adb } from './adb.js';
import { adbMetrics, adbRotationDriver, modemMetrics, modemRotationDriver } from './drivers.js';
import { createMmcli, type Mmcli } from './mmcli.js';
import { createFarm, type Farm, type FarmDrivers } from './supervisor.js';
import { farmThreads, type FarmPartsOptions, type FarmWorkerData } from './threads.js';

/** The adb and mmcli clients and the devices' drivers, from the farm's options (main thread or worker). */
export function farmParts(o: FarmPartsOptions, logger: Logger): { adb: Adb; mmcli: Mmcli; drivers: FarmDrivers } {
  const adb = createAdb(o.adb ? { path: o.adb } : {});
  const mmcli = createMmcli(o.mmcli ? { path: o.mmcli } : {});
  return {
    adb,
    mmcli,
    drivers: {
      phone: (serial) =>
        adbRotationDriver(adb, serial, {
          method: o.rotateMethod,
          offSeconds: o.airplaneSeconds,
          log: (m) => logger.warn({ device: `phone:${serial}` }, m),
        }),
      modem: (id) => modemRotationDriver(mmcli, id),
      phoneMetrics: (serial) => adbMetrics(adb, serial),
      modemMetrics: (id) => modemMetrics(mmcli, id),
    },
  };
}

/** `entry`: the agent's entry point, which a farm worker thread runs (`--threads` > 1). */
export function buildFarm(o: FarmCli, logger: Logger, entry: string): Farm {
  const parts: FarmPartsOptions = {
    ...(o.adb ? { adb: o.adb } : {}),
    ...(o.mmcli ? { mmcli: o.mmcli } : {}),
    rotateMethod: o.rotateMethod,
    airplaneSeconds: o.airplaneSeconds,
    insecureHttp: o.insecureHttp,
  };
  const { adb, mmcli, drivers } = farmParts(parts, logger);
  const data: FarmWorkerData = { ppRole: 'farm', logLevel: logger.level, parts };
  return createFarm(
    {
      stateDir: o.stateDir,
      server: o.server,
      enrollToken: o.enrollToken,
      fingerprint: o.fingerprint,
      insecureHttp: o.insecureHttp,
      sysfsRoot: o.sysfsRoot,
      scanIntervalMs: o.scanIntervalMs,
      name: o.name,
      airplaneSeconds: o.airplaneSeconds,
      ipEchoUrl: o.ipEchoUrl,
      offload: process.env.POCKETPROXY_OFFLOAD === '1',
      nativeSeal: process.env.POCKETPROXY_NATIVE_SEAL !== '0',
      splice: process.env.POCKETPROXY_SPLICE !== '0',
      front: process.env.POCKETPROXY_NATIVE_FRONT !== '0',
    },
    {
      logger,
      adb,
      mmcli,
      startTunnel: inProcessTunnel(kernelTun),
      drivers,
      ...(o.threads > 1
        ? {
            remote: farmThreads(o.threads, entry, data, (e) => {
              logger.fatal({ err: e }, 'a farm worker thread failed');
              process.exit(1);
            }),
          }
        : {}),
    },
  );
}
