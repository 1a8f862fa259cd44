// IP rotation: a driver makes the carrier hand out a new address, then we poll the IP echo URL
// until the address differs from the old one (bounded), and report {old_ip, new_ip}.
//
//   command      --rotate-command via /bin/sh -c (the lab's `testkit rotate`, a USB modem script...)
//   android-root airplane mode on, wait, off (`cmd connectivity airplane-mode enable|disable`)
//   modemmanager the first modem ModemManager lists: its bearer reconnected (farm/mmcli.ts `reconnect`:
//                --simple-disconnect, then --simple-connect=apn=…,ip-type=… with the bearer's own settings)
//   adb          the farm's phones: airplane mode or mobile data off/on over adb (farm/drivers.ts)
//
// A driver that ran but left the address as it was (a carrier that gave the same address back) is run
// once more; the same address again -> PP_ERR_AGENT_ROTATE_FAILED.
import { execFile } from 'node:child_process';
import { agentError } from '../errors.js';
import { createMmcli, MMCLI_TIMEOUT_MS } from '../farm/mmcli.js';

export type DriverName = 'command' | 'android-root' | 'modemmanager' | 'adb';

/** Runs a program (no shell unless the caller asks for /bin/sh -c). */
export type Exec = (
  file: string,
  args: readonly string[],
  timeoutMs: number,
) => Promise<{ stdout: string; stderr: string }>;

export const realExec: Exec = (file, args, timeoutMs) =>
  new Promise((resolve, reject) => {
    execFile(file, [...args], { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err)
        reject(
          agentError(
            'PP_ERR_AGENT_COMMAND_FAILED',
            { command: [file, ...args].join(' '), reason: `${err.message} ${String(stderr).trim()}`.trim() },
            { cause: err },
          ),
        );
      else resolve({ stdout: String(stdout), stderr: String(stderr) });
    });
  });

export interface RotationDriver {
  readonly name: DriverName;
  rotate(): Promise<void>;
  /** wifi_toggle / airplane_mode; undefined when the driver cannot. */
  airplaneMode?(): Promise<void>;
  wifiToggle?(): Promise<void>;
  /** Reboots the device the driver drives (a farm's phone over adb), not the host the agent runs on. */
  reboot?(): Promise<void>;
}

/**
 * The command types an agent can run with this driver (none: undefined) — what its heartbeat reports as
 * `capabilities`, so the server offers and accepts only these: rotate_ip with any driver, airplane_mode
 * and wifi_toggle when the driver has them, reboot when started with --allow-reboot or when the driver reboots
 * its own device (a farm's phone), config_update always.
 */
export function commandCapabilities(driver: RotationDriver | undefined, allowReboot: boolean): string[] {
  return [
    ...(driver ? ['rotate_ip'] : []),
    ...(driver?.wifiToggle ? ['wifi_toggle'] : []),
    ...(driver?.airplaneMode ? ['airplane_mode'] : []),
    ...(allowReboot || driver?.reboot ? ['reboot'] : []),
    'config_update',
  ];
}

export interface DriverOptions {
  driver: DriverName;
  rotateCommand?: string;
  airplaneSeconds?: number;
  commandTimeoutMs?: number;
  exec?: Exec;
  sleep?: (ms: number) => Promise<void>;
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function createRotationDriver(o: DriverOptions): RotationDriver {
  const exec = o.exec ?? realExec;
  const sleep = o.sleep ?? realSleep;
  const timeout = o.commandTimeoutMs ?? 60_000;
  switch (o.driver) {
    case 'command': {
      const cmd = o.rotateCommand;
      if (!cmd) throw agentError('PP_ERR_AGENT_USAGE', { reason: '--rotate-driver command needs --rotate-command' });
      return { name: 'command', rotate: async () => void (await exec('/bin/sh', ['-c', cmd], timeout)) };
    }
    case 'android-root': {
      const wait = (o.airplaneSeconds ?? 5) * 1000;
      const airplane = async () => {
        await exec('cmd', ['connectivity', 'airplane-mode', 'enable'], timeout);
        await sleep(wait);
        await exec('cmd', ['connectivity', 'airplane-mode', 'disable'], timeout);
      };
      return {
        name: 'android-root',
        rotate: airplane,
        airplaneMode: airplane,
        wifiToggle: async () => {
          await exec('svc', ['wifi', 'disable'], timeout);
          await sleep(wait);
          await exec('svc', ['wifi', 'enable'], timeout);
        },
      };
    }
    case 'modemmanager': {
      // mmcli's --simple-connect takes a value (a bare one is refused), so the reconnect reads the
      // bearer's APN and IP type first: the same code the farm host runs per modem.
      const mm = createMmcli({ exec, timeoutMs: Math.min(timeout, MMCLI_TIMEOUT_MS) });
      return {
        name: 'modemmanager',
        rotate: async () => {
          const [id] = await mm.list();
          if (id === undefined)
            throw agentError('PP_ERR_AGENT_ROTATE_FAILED', { reason: 'ModemManager lists no modem' });
          await mm.reconnect(id);
        },
      };
    }
    default:
      throw agentError('PP_ERR_AGENT_USAGE', { reason: `unknown rotation driver ${String(o.driver)}` });
  }
}

export interface RotateDeps {
  driver: RotationDriver;
  /** Current public address (the IP echo URL). */
  publicIp: () => Promise<string>;
  /** Called after the driver ran: drop customer sockets so keep-alives cannot hold the old IP. */
  closeCustomerSockets?: () => void;
  waitTimeoutMs?: number;
  pollMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Last address known from heartbeats, used when the echo cannot be reached before rotating. */
  lastKnownIp?: () => string | null;
}

export async function rotateIp(d: RotateDeps): Promise<{ old_ip: string | null; new_ip: string }> {
  const now = d.now ?? Date.now;
  const sleep = d.sleep ?? realSleep;
  let oldIp: string | null;
  try {
    oldIp = await d.publicIp();
  } catch {
    oldIp = d.lastKnownIp?.() ?? null;
  }
  const waitMs = d.waitTimeoutMs ?? 60_000;
  // Runs the driver, then polls until the address differs from oldIp or the deadline passes.
  const attempt = async (): Promise<{ changed: true; ip: string } | { changed: false; last: string | undefined }> => {
    await d.driver.rotate();
    d.closeCustomerSockets?.();
    const deadline = now() + waitMs;
    let last: string | undefined;
    for (;;) {
      try {
        last = await d.publicIp();
        if (last !== oldIp) return { changed: true, ip: last };
      } catch {
        // The link is often down for a while during rotation: keep polling until the deadline.
      }
      if (now() >= deadline) return { changed: false, last };
      await sleep(d.pollMs ?? 1_000);
    }
  };
  let r = await attempt();
  // The echo answered with the old address until the deadline: the carrier gave it back. Once more.
  if (!r.changed && r.last !== undefined) r = await attempt();
  if (r.changed) return { old_ip: oldIp, new_ip: r.ip };
  const last = r.last;
  throw agentError('PP_ERR_AGENT_ROTATE_FAILED', {
    reason:
      last === undefined
        ? 'public address unknown after rotation'
        : `address still ${last} after two tries of ${waitMs} ms`,
  });
}
