// @pocketproxy/testkit — the network-namespace lab (docs/design.md §7): builds an "internet", a relay, a
// customer and devices behind carrier NATs out of Linux network namespaces on one machine, runs
// the real binaries inside, and tears it all down. Needs root.
//
// Who may import it: tests, benchmarks and the demo only (`*.lab.test.ts`, `bench/`, `demo.ts`).
// Product code (apps/*, other packages) must never import it. Its src imports packages only (errors,
// protocol), never an app: it runs the apps' binaries by path (docs/design.md §10).
export { createLab, Lab, CLI_PATH } from './lab.js';
export type { CreateLabOptions, DeviceInfo, WifiInfo, InetInfo, LabInfo, ExecOptions } from './lab.js';
export { LabProcess } from './process.js';
export type { SpawnOptions, ExitStatus } from './process.js';
export type { RunResult, RunOptions } from './run.js';
export type { Rotation } from './carrier.js';
export { rotateCarrier, currentCarrierAddress } from './carrier.js';
export { carrierDelay, targetDelay } from './link-delay.js';
export type { BlockOptions } from './firewall.js';
export { cleanupStale } from './cleanup.js';
export {
  INET,
  RELAY,
  CUST,
  DEV_IFACE,
  WIFI_IFACE,
  WIFI_METRIC,
  CELLULAR_METRIC,
  CGN_WAN,
  CGN_LAN,
  MAX_DEVICES,
  devicePlan,
  wifiPlan,
  nextCarrierAddress,
  defaultDnsRecords,
} from './plan.js';
export { LAB_ERRORS } from './errors.js';
export { waitUntil } from './wait.js';
export { NOTSENT_MAX, floodingServer, notSentWhenStalled } from './stalled-download.js';
export type { WaitOptions } from './wait.js';

/** True when lab tests can run here (root). Lab tests skip loudly otherwise. */
export function canRunLab(): boolean {
  return process.getuid?.() === 0;
}

/**
 * For lab tests: returns true when root; otherwise skips the test loudly (stderr + t.skip) and
 * returns false. `if (!requireRootOrSkip(t)) return;`
 */
export function requireRootOrSkip(
  t: { skip(message?: string): void },
  what = 'network namespaces, veth, nftables',
): boolean {
  if (canRunLab()) return true;
  console.error(`SKIPPED lab test (needs root: ${what})`);
  t.skip(`needs root: ${what}`);
  return false;
}
export {
  startRelay,
  startAgent,
  agentLanes,
  waitDeviceOnline,
  createConnection,
  childPid,
  scratchDir,
  LabApi,
  REPO_ROOT,
  SERVER_BIN,
  AGENT_BIN,
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
} from './system.js';
export type { LabRelay, LabAgent, RelayOptions, AgentOptions, Connection, ApiResponse } from './system.js';
export { pairAndMeasure, agentTransport } from './pairing.js';
export type { PairingTiming } from './pairing.js';
/** Lab client scripts (run them with `lab.spawnNode` / `lab.exec(ns, process.execPath, ['--import', lab.tsxLoader, path, ...])`). */
export const CLIENTS = {
  socks5Udp: new URL('./clients/socks5-udp.ts', import.meta.url).pathname,
  proxyProbe: new URL('./clients/proxy-probe.ts', import.meta.url).pathname,
  tunnelHostile: new URL('./clients/tunnel-hostile.ts', import.meta.url).pathname,
  httpLoad: new URL('./clients/http-load.ts', import.meta.url).pathname,
  simDevices: new URL('./clients/sim-devices.ts', import.meta.url).pathname,
  hostile: new URL('./clients/hostile.ts', import.meta.url).pathname,
};
export { buildFarmHost, farmStatus } from './farm.js';
export type { FarmHost, FarmPhone, FarmModem, FarmPhoneSpec, FarmModemSpec, FarmStatusDevice } from './farm.js';
