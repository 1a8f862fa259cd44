// The farm host's identity and the enrollment of its devices.
//
//   <state-dir>/farm.json                       {version, host_key, name}: the host key (a random secret,
//                                               base64url) is how the server recognises this farm host;
//                                               mode 0600, written atomically like state.json
//   <state-dir>/devices/<safe id>/state.json    one ordinary agent state per phone / modem (state.ts)
//
// Enrolling one device is pairing with the enrollment token instead of a pairing code: the device's
// X25519 key pair is made here, only its public half is sent, and the answer goes through the same
// checks as `pair` (acceptPairing: server key fingerprint, relay key endorsement). A device whose
// state exists is never enrolled again: same device id, same ports after a replug or a restart.
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { encodeKey, generateKeyPair } from '@pocketproxy/protocol';
import type { ApiClient } from '../api-client.js';
import { agentError } from '../errors.js';
import { acceptPairing } from '../pair.js';
import { readState, statePath, writeState, type AgentState } from '../state.js';
import { serverUrlProblem } from '../trust.js';
import { AGENT_VERSION } from '../version.js';

export const FARM_FILE = 'farm.json';
export const DEVICES_DIR = 'devices';

export interface FarmIdentity {
  version: 1;
  /** base64url, 43 characters (32 random bytes); the server keeps only its sha256. */
  host_key: string;
  name: string;
  created_at: string;
}

const HOST_KEY = /^[A-Za-z0-9_-]{32,128}$/;

/** Reads <state-dir>/farm.json, or makes one (new host key; `name` or the host name). A given `name` renames. */
export async function loadFarmIdentity(stateDir: string, name?: string): Promise<FarmIdentity> {
  const path = join(stateDir, FARM_FILE);
  let text: string | undefined;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
      throw agentError('PP_ERR_AGENT_STATE_INVALID', { path, reason: (e as Error).message }, { cause: e });
  }
  if (text !== undefined) {
    let f: Partial<FarmIdentity>;
    try {
      f = JSON.parse(text) as Partial<FarmIdentity>;
    } catch {
      throw agentError('PP_ERR_AGENT_STATE_INVALID', { path, reason: 'not JSON' });
    }
    if (typeof f !== 'object' || f === null || typeof f.host_key !== 'string' || !HOST_KEY.test(f.host_key))
      throw agentError('PP_ERR_AGENT_STATE_INVALID', {
        path,
        reason: 'host_key must be 32-128 characters of base64url',
      });
    const id: FarmIdentity = {
      version: 1,
      host_key: f.host_key,
      name: name ?? (typeof f.name === 'string' && f.name ? f.name : hostName()),
      created_at: typeof f.created_at === 'string' ? f.created_at : new Date().toISOString(),
    };
    if (id.name !== f.name) await writeJsonAtomic(path, id);
    return id;
  }
  const id: FarmIdentity = {
    version: 1,
    host_key: randomBytes(32).toString('base64url'),
    name: name ?? hostName(),
    created_at: new Date().toISOString(),
  };
  await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeJsonAtomic(path, id);
  return id;
}

const hostName = () => os.hostname().slice(0, 64) || 'farm';

/** temp file (0600) + rename: a crash never leaves half a file. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await fs.writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  await fs.chmod(tmp, 0o600);
  await fs.rename(tmp, path);
}

/**
 * A directory name for a hardware id (adb serial, IMEI): what is safe in a path kept as is, anything
 * else replaced, and then a short hash of the original so two ids never share a directory.
 * Serials come from the device (USB descriptors): never trusted as a path.
 */
export function safeDeviceId(kind: 'phone' | 'modem', hardwareId: string): string {
  // No '-' in the kept part: a name with a hash tag ('-' + hex) can never equal one without it, so a
  // device cannot pick a serial that lands in another's directory.
  const clean = hardwareId.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 64);
  const changed = clean !== hardwareId || clean.length === 0;
  const tag = changed ? `-${createHash('sha256').update(hardwareId).digest('hex').slice(0, 10)}` : '';
  return `${kind}-${clean}${tag}`;
}

export function deviceStateDir(stateDir: string, kind: 'phone' | 'modem', hardwareId: string): string {
  return join(stateDir, DEVICES_DIR, safeDeviceId(kind, hardwareId));
}

/** The saved state of a device, or undefined when it has none yet (a damaged one throws). */
export async function savedState(dir: string): Promise<AgentState | undefined> {
  try {
    await fs.access(statePath(dir));
  } catch {
    return undefined;
  }
  return readState(dir);
}

export interface EnrollOptions {
  server: string;
  token: string;
  fingerprint?: string;
  insecureHttp?: boolean;
  identity: FarmIdentity;
  device: { hardware_id: string; kind: 'phone' | 'modem'; model?: string };
  dir: string;
  api: ApiClient;
}

/** Enrolls one device and writes its state.json; throws (nothing written) when the server or a check refuses. */
export async function enrollDevice(o: EnrollOptions): Promise<AgentState> {
  if (serverUrlProblem(o.server, o.insecureHttp === true))
    throw agentError('PP_ERR_AGENT_INSECURE_SERVER', { server: o.server });
  if (!o.api.enroll) throw agentError('PP_ERR_AGENT_USAGE', { reason: 'this API client cannot enroll' });
  const keys = generateKeyPair();
  const r = await o.api.enroll({
    token: o.token,
    host: { key: o.identity.host_key, name: o.identity.name },
    device: {
      hardware_id: o.device.hardware_id,
      kind: o.device.kind,
      ...(o.device.model ? { model: o.device.model.slice(0, 100) } : {}),
    },
    public_key: encodeKey(keys.publicKey),
    agent_version: AGENT_VERSION,
  });
  const state = acceptPairing(r, keys, o);
  await writeState(o.dir, state);
  return state;
}
