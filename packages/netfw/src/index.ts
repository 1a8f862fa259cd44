// @pocketproxy/netfw — the relay's nftables firewall: one table (`table ip pocketproxy`) that the
// platform owns, rendered from a declarative state, rebuilt atomically at start and updated
// per device with element-level transactions. Other tables are never touched.
// Who may import it: the tunnel process (apps/server tunnel/) and its wiring module, and lab
// tooling (packages/testkit). It imports only @pocketproxy/errors and node built-ins: no
// database, no server app, no process.env.
export { ERRORS } from './errors.js';
export type { NetfwErrorCode } from './errors.js';
export { validateState, checkPort, frontTakes, frontServes } from './state.js';
export type { FirewallState, PortForward, OpenVpnState, Proto, Socks5FrontState, ValidState } from './state.js';
export { render, renderTeardown, TABLE, TABLE_FAMILY, TABLE_NAME } from './render.js';
export { renderUpdate, sameSkeleton } from './update.js';
export { collectionsOf, counterName } from './elements.js';
export type { Collections, Direction } from './elements.js';
export { parseCounters } from './counters.js';
export type { CounterValue, PortCounter } from './counters.js';
export { createFirewall } from './firewall.js';
export type { Firewall, FirewallDeps, ApplyResult, Logger, RunFn } from './firewall.js';
export { createRunner } from './runner.js';
export type { CommandRunner, CommandResult, RunnerOptions } from './runner.js';
export { createFakeRunner } from './runner.fake.js';
export type { FakeRunner, RecordedCall, Responder } from './runner.fake.js';
export { requiredSysctls, sysctlArgs } from './sysctl.js';
export type { Sysctl } from './sysctl.js';
