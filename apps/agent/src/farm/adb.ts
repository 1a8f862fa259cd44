// The phones of a farm, through the `adb` client: what is plugged in (`adb devices -l`), what each one
// is (getprop), USB tethering on, Wi-Fi off, reboot. No root on the phone: only what the `shell` user
// (uid 2000) may do; docs/farm.md says what that is per Android version.
//
// What a phone says is not trusted: a USB device can claim any serial and print anything. So
//   - every call is an argv (execFile), never a shell string, and nothing the device printed is ever
//     put into a command line except a serial that passed SERIAL (checked again on every call);
//   - state directories are named by safeSerial(), an injective escape of the serial;
//   - every call has a deadline (SIGKILL at the end): a phone that stops answering is reported
//     (PP_ERR_AGENT_TOOL_TIMEOUT), never waited for;
//   - parsers take anything and return what they understood, never throw.
import { execFile } from 'node:child_process';
import { isPPError, type PPError } from '@pocketproxy/errors';
import { agentError } from '../errors.js';
import type { Exec } from '../ops/rotation.js';

/** Default deadline of one adb call. */
export const ADB_TIMEOUT_MS = 10_000;
/** Output above this is cut by the child's kill (dumpsys connectivity is the biggest: ~200 KB). */
const MAX_OUTPUT = 4 << 20;

/**
 * Serials we talk to: USB serials (letters, digits), `emulator-5554`, `192.168.1.5:5555` (adb over
 * TCP). Not starting with '-' (it would read as an option), at most 64 characters.
 */
export const SERIAL = /^[A-Za-z0-9._:][A-Za-z0-9._:-]{0,63}$/;

export function isValidSerial(s: string): boolean {
  return SERIAL.test(s) && s !== '.' && s !== '..';
}

/**
 * A file-name-safe, injective form of a hardware id (adb serial or IMEI), for state directory names:
 * letters, digits and '-' stay, every other byte becomes `_xx` (hex). 'a:b' -> 'a_3ab', 'a_b' -> 'a_5fb'.
 * Throws PP_ERR_AGENT_ADB_BAD_SERIAL for an id that does not pass SERIAL.
 */
export function safeSerial(serial: string): string {
  if (!isValidSerial(serial)) throw badSerial(serial);
  return serial.replace(/[^A-Za-z0-9-]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** A device's text for a message: printable ASCII only, at most 80 characters, quoted. */
export function shown(s: string): string {
  return JSON.stringify(s.slice(0, 80).replace(/[^\x20-\x7e]/g, '?'));
}

function badSerial(serial: string): PPError {
  return agentError('PP_ERR_AGENT_ADB_BAD_SERIAL', { serial: shown(String(serial)) });
}

/**
 * The farm's Exec: execFile with a deadline (SIGKILL: an adb client stuck on a USB transfer may not
 * end on SIGTERM) and a cap on output. Rejects with PP_ERR_AGENT_TOOL_TIMEOUT at the deadline,
 * PP_ERR_AGENT_TOOL_FAILED otherwise (exit status, stderr's last line).
 */
export const boundedExec: Exec = (file, args, timeoutMs) =>
  new Promise((resolve, reject) => {
    execFile(
      file,
      [...args],
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr });
        // The answer of a failing command stays readable (failureOutput): adb and mmcli explain there.
        const e = Object.assign(err, { stdout, stderr }) as NodeJS.ErrnoException & {
          killed?: boolean;
          code?: unknown;
          signal?: string | null;
        };
        const command = commandText(file, args);
        if (e.killed && e.signal === 'SIGKILL' && e.code !== 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER')
          return reject(agentError('PP_ERR_AGENT_TOOL_TIMEOUT', { command, ms: timeoutMs }, { cause: e }));
        const status = typeof e.code === 'number' ? `exit ${e.code}` : String(e.code ?? e.signal ?? 'error');
        const reason = e.code === 'ENOENT' ? `${file} not found` : `${status}: ${lastLine(stderr || stdout)}`;
        reject(agentError('PP_ERR_AGENT_TOOL_FAILED', { command, reason }, { cause: e }));
      },
    );
  });

/** The text of a failed command's output (stdout and stderr), when the error came from boundedExec. */
export function failureOutput(e: unknown): string {
  const c = (e as { cause?: { stdout?: unknown; stderr?: unknown } } | undefined)?.cause;
  return `${typeof c?.stdout === 'string' ? c.stdout : ''}\n${typeof c?.stderr === 'string' ? c.stderr : ''}`;
}

function commandText(file: string, args: readonly string[]): string {
  return [file, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : shown(a))).join(' ');
}

function lastLine(s: string): string {
  const lines = String(s)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return (lines[lines.length - 1] ?? '').slice(0, 200).replace(/[^\x20-\x7e]/g, '?');
}

export interface AdbDevice {
  serial: string;
  /** 'device' | 'unauthorized' | 'offline' | 'no permissions' | 'recovery' | 'sideload' | 'bootloader' | 'authorizing' | 'connecting' | 'host' | 'rescue' | ... */
  state: string;
  /** USB path, e.g. '1-1.2' from "usb:1-1.2". */
  usb?: string;
  model?: string;
  product?: string;
  device?: string;
  transportId?: string;
}

/** Every state `adb devices` prints (adb's connection_state_name; 'no permissions' has its own words after it). */
const STATES = [
  'no permissions',
  'device',
  'unauthorized',
  'offline',
  'recovery',
  'sideload',
  'bootloader',
  'authorizing',
  'connecting',
  'host',
  'rescue',
  'unknown',
  'detached',
  'fastbootd',
];

/**
 * Parses `adb devices -l`:
 *
 *   List of devices attached
 *   R58M12ABCDE            device usb:1-1.2 product:beyond1lteeea model:SM_G973F device:beyond1 transport_id:3
 *   0123456789ABCDEF       unauthorized usb:1-1.3 transport_id:4
 *   ZY22ABCDEF             no permissions (missing udev rules? user is in the plugdev group); see [http://developer.android.com/tools/device.html] usb:1-1.4 transport_id:5
 *   emulator-5554          offline transport_id:1
 *
 * Lines it does not understand (daemon start-up chatter, '* daemon started successfully') are skipped;
 * a serial that does not pass SERIAL is kept with state 'invalid-serial' only when it is printable
 * (so the farm can report it), its fields dropped.
 */
export function parseAdbDevices(text: string): AdbDevice[] {
  const out: AdbDevice[] = [];
  const seen = new Set<string>();
  for (const raw of String(text).split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (!line.trim() || line.startsWith('*') || /^List of devices/.test(line) || /^adb (server|E|W|I) /.test(line))
      continue;
    // adb separates the serial from the rest with a tab (`adb devices`) or pads with spaces (`-l`).
    const m = /^(\S+)[\t ]+(.*)$/.exec(line);
    if (!m) continue;
    const serial = m[1]!;
    let rest = m[2]!.trim();
    const state = STATES.find((s) => rest === s || rest.startsWith(`${s} `));
    if (!state) continue;
    rest = rest.slice(state.length);
    if (!isValidSerial(serial)) {
      if (/^[\x21-\x7e]{1,128}$/.test(serial) && !seen.has(serial)) {
        seen.add(serial);
        out.push({ serial, state: 'invalid-serial' });
      }
      continue;
    }
    if (seen.has(serial)) continue;
    seen.add(serial);
    const d: AdbDevice = { serial, state };
    for (const tok of rest.split(/\s+/)) {
      const i = tok.indexOf(':');
      if (i <= 0) continue;
      const k = tok.slice(0, i);
      const v = tok.slice(i + 1);
      if (!/^[A-Za-z0-9._:+-]{1,64}$/.test(v)) continue;
      if (k === 'usb' && /^\d+-\d+(\.\d+)*$/.test(v)) d.usb = v;
      else if (k === 'product') d.product = v;
      else if (k === 'model') d.model = v;
      else if (k === 'device') d.device = v;
      else if (k === 'transport_id' && /^\d{1,10}$/.test(v)) d.transportId = v;
    }
    out.push(d);
  }
  return out;
}

/** Parses `getprop` (`[ro.product.model]: [Pixel 6]` lines; a value may span lines). */
export function parseGetprop(text: string): Map<string, string> {
  const props = new Map<string, string>();
  const re = /^\[([A-Za-z0-9_.\-:@]{1,256})\]: \[([\s\S]*?)\]$/gm;
  for (const m of String(text).matchAll(re)) props.set(m[1]!, m[2]!);
  return props;
}

export interface PhoneInfo {
  model: string | null;
  manufacturer: string | null;
  android: string | null;
  sdk: number | null;
}

/**
 * A device's own words for a name: printable, trimmed, at most `max` characters; null when empty.
 * Control and format characters go (bidi overrides, zero-width marks: a carrier name shown in the
 * dashboard must not reorder or hide the text around it), and so do astral characters.
 */
export function cleanText(s: string | undefined | null, max = 64): string | null {
  if (s === undefined || s === null) return null;
  const t = String(s)
    .replace(/[^\x20-\x7e\u00a0-\uffff]/g, '')
    .replace(/[\ud800-\udfff]/g, '')
    .replace(/[\p{Cf}\p{Cc}\p{Co}\p{Cn}]/gu, '')
    .trim()
    .slice(0, max)
    .trim();
  return t ? t : null;
}

export function phoneInfoFromProps(props: Map<string, string>): PhoneInfo {
  const sdkText = props.get('ro.build.version.sdk') ?? '';
  const sdk = /^\d{1,3}$/.test(sdkText) ? Number(sdkText) : null;
  return {
    model: cleanText(props.get('ro.product.model')),
    manufacturer: cleanText(props.get('ro.product.manufacturer')),
    android: cleanText(props.get('ro.build.version.release'), 16),
    sdk: sdk !== null && sdk >= 1 && sdk <= 100 ? sdk : null,
  };
}

/** What a phone prints when it will not run a command for the shell user (or does not have it). */
const REFUSED = /usage:|unknown command|inaccessible or not found|permission denial|securityexception|not allowed/i;

/** The USB functions on now, from `getprop sys.usb.state` / `svc usb getFunctions` (e.g. 'rndis,adb'). */
export function tetheringOn(functions: string): boolean {
  return /(^|[,\s])(rndis|ncm)([,\s]|$)/.test(functions.trim());
}

export interface Adb {
  /** `adb devices -l`, parsed. */
  devices(): Promise<AdbDevice[]>;
  /** `adb -s <serial> shell <args...>`: stdout; argv, never a shell string from device output. */
  shell(serial: string, args: readonly string[], timeoutMs?: number): Promise<string>;
  info(serial: string): Promise<PhoneInfo>;
  /** Checks that USB tethering (RNDIS/NCM) is on; switches it on when it is not (no root on Android 9+). */
  ensureTethering(serial: string): Promise<{ ok: true } | { ok: false; reason: string }>;
  wifiOff(serial: string): Promise<void>;
  reboot(serial: string): Promise<void>;
}

export interface AdbOptions {
  /** The adb binary (default 'adb' on PATH). */
  path?: string;
  /** Deadline of each call (default ADB_TIMEOUT_MS). */
  timeoutMs?: number;
  exec?: Exec;
  sleep?: (ms: number) => Promise<void>;
  /** How long ensureTethering waits for the phone to come back with tethering on (default 15 s). */
  tetherWaitMs?: number;
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function createAdb(o: AdbOptions = {}): Adb {
  const bin = o.path ?? 'adb';
  const exec = o.exec ?? boundedExec;
  const timeout = o.timeoutMs ?? ADB_TIMEOUT_MS;
  const sleep = o.sleep ?? realSleep;

  // adb's own messages for a phone that is gone or not usable, mapped to one error with the reason.
  const run = async (serial: string | null, args: readonly string[], ms = timeout) => {
    if (serial !== null && !isValidSerial(serial)) throw badSerial(serial);
    const argv = serial === null ? [...args] : ['-s', serial, ...args];
    try {
      return await exec(bin, argv, ms);
    } catch (e) {
      throw deviceError(serial, e);
    }
  };

  const shell = async (serial: string, args: readonly string[], ms?: number): Promise<string> => {
    // `adb shell` joins its arguments with spaces into the phone's /system/bin/sh command line, so an
    // argument with a shell character would be run by the phone's shell: only plain words pass.
    for (const a of args)
      if (!/^[A-Za-z0-9_@%+=:,./-]*$/.test(a) || a === '')
        throw agentError('PP_ERR_AGENT_USAGE', { reason: `adb shell argument ${shown(a)} is not a plain word` });
    const r = await run(serial, ['shell', ...args], ms);
    return r.stdout;
  };

  const info = async (serial: string): Promise<PhoneInfo> =>
    phoneInfoFromProps(parseGetprop(await shell(serial, ['getprop'])));

  const usbFunctions = async (serial: string): Promise<string> => {
    const state = (await shell(serial, ['getprop', 'sys.usb.state'])).trim();
    if (state) return state;
    // Some builds leave sys.usb.state empty; svc prints the functions (on stderr before Android 11).
    try {
      const r = await run(serial, ['shell', 'svc', 'usb', 'getFunctions']);
      return `${r.stdout} ${r.stderr}`.trim();
    } catch {
      return '';
    }
  };

  return {
    async devices() {
      const r = await run(null, ['devices', '-l']);
      return parseAdbDevices(r.stdout);
    },
    shell,
    info,
    async ensureTethering(serial) {
      let functions: string;
      try {
        functions = await usbFunctions(serial);
      } catch (e) {
        return { ok: false, reason: reasonOf(e) };
      }
      if (tetheringOn(functions)) return { ok: true };
      let sdk: number | null = null;
      try {
        sdk = (await info(serial)).sdk;
      } catch (e) {
        return { ok: false, reason: reasonOf(e) };
      }
      // Android 9+ (API 28): `svc usb setFunctions rndis` as the shell user (adb is kept on while USB
      // debugging is enabled); Android 11+ phones whose gadget has no RNDIS (Pixels on 13+ tether
      // over NCM): `setFunctions ncm`. Android 8: `svc usb setFunction rndis` (singular) where the
      // build has it; `setprop sys.usb.config rndis,adb` needs root. The phone re-enumerates on USB,
      // so adb may drop the connection during the call: that is expected, we poll instead.
      const attempts =
        sdk !== null && sdk < 28
          ? [['svc', 'usb', 'setFunction', 'rndis']]
          : sdk !== null && sdk >= 30
            ? [
                ['svc', 'usb', 'setFunctions', 'rndis'],
                ['svc', 'usb', 'setFunctions', 'ncm'],
              ]
            : [['svc', 'usb', 'setFunctions', 'rndis']];
      const refused: string[] = [];
      for (const attempt of attempts) {
        let said = '';
        try {
          const r = await run(serial, ['shell', ...attempt]);
          said = `${r.stdout} ${r.stderr}`;
        } catch (e) {
          // adb's own errors (the phone went away while switching, a deadline) are not the phone's answer.
          said = isPPError(e) && e.code === 'PP_ERR_AGENT_TOOL_FAILED' ? failureOutput(e) : '';
        }
        if (REFUSED.test(said)) {
          refused.push(attempt.join(' '));
          continue;
        }
        const deadline = Date.now() + (o.tetherWaitMs ?? 15_000);
        for (let i = 0; i < 30; i++) {
          try {
            if (tetheringOn(await usbFunctions(serial))) return { ok: true };
          } catch {
            // The phone is re-enumerating: adb says 'device not found' for a moment.
          }
          if (Date.now() >= deadline) break;
          await sleep(500);
        }
        return {
          ok: false,
          reason: `USB tethering did not come on after \`${attempt.join(' ')}\` (functions were: ${shown(functions)})`,
        };
      }
      return {
        ok: false,
        reason:
          `USB tethering is off and this phone (Android ${sdk ?? '?'}) refuses \`${refused.join('` and `')}\` without root: ` +
          'switch it on in Settings > Network > Hotspot & tethering > USB tethering (docs/farm.md)',
      };
    },
    async wifiOff(serial) {
      try {
        await shell(serial, ['svc', 'wifi', 'disable']);
      } catch (e) {
        // Android 11+ also has `cmd wifi`; `svc wifi` became a wrapper of it on some builds.
        if (isPPError(e) && e.code === 'PP_ERR_AGENT_TOOL_TIMEOUT') throw e;
        await shell(serial, ['cmd', 'wifi', 'set-wifi-enabled', 'disabled']);
      }
    },
    async reboot(serial) {
      await run(serial, ['reboot']);
    },
  };
}

function reasonOf(e: unknown): string {
  return isPPError(e) ? e.message : String(e);
}

/** adb's words for a phone that cannot be used, as a clear error (the state and what to do). */
function deviceError(serial: string | null, e: unknown): unknown {
  if (!isPPError(e) || serial === null) return e;
  if (e.code !== 'PP_ERR_AGENT_TOOL_FAILED') return e;
  // Only adb's own words count ("adb: ..." / "error: ..." lines, adb 1.0.32-1.0.41), never what a
  // command on the phone printed: a dumpsys that mentions 'offline' is not an offline phone.
  const said = failureOutput(e)
    .split('\n')
    .filter((l) => /^\s*(adb|error): /.test(l))
    .join('\n');
  const hint = (state: string, what: string) =>
    agentError('PP_ERR_AGENT_ADB_DEVICE_STATE', { serial: shown(serial), state, hint: what }, { cause: e });
  if (/device unauthorized|unauthorized/i.test(said))
    return hint(
      'unauthorized',
      'accept the "Allow USB debugging?" prompt on the phone (tick "Always allow from this computer")',
    );
  if (/device offline|device '.*' offline/i.test(said))
    return hint('offline', 'replug the cable or restart adb (`adb kill-server`); a hub port short of power does this');
  if (/no permissions|insufficient permissions/i.test(said))
    return hint('no permissions', 'install the udev rules for Android devices or run the farm as root');
  if (/device '.*' not found|device not found|no devices\/emulators found/i.test(said))
    return hint('gone', 'the phone is no longer attached');
  return e;
}
