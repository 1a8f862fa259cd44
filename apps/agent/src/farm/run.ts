// `pocketproxy-agent farm`, wired from the real parts: adb and mmcli (DRIVERS' modules), the
// kernel TUN on this event loop (supervisor.ts says why not a worker per device), `ip` for routes.
import type { Logger } from 'pino';
import type { FarmCli } from '../cli.js';
import { inProcessTunnel, kernelTun } from '../tunnel/host.js';
import { createAdb } from './adb.js';
import { adbMetrics, adbRotationDriver, modemMetrics, modemRotationDriver } from './drivers.js';
import { createMmcli } from './mmcli.js';
import { createFarm, type Farm } from './supervisor.js';

export function buildFarm(o: FarmCli, logger: Logger): Farm {
  const adb = createAdb(o.adb ? { path: o.adb } : {});
  const mmcli = createMmcli(o.mmcli ? { path: o.mmcli } : {});
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
    },
  );
}
