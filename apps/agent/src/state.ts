// The device's persistent identity, written by `pair` and read by `run`:
// <state-dir>/state.json, mode 0600 in a 0700 directory (it holds the device token and keys).
// Written atomically (temp file + rename) so a crash never leaves half a file.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { serverKeyFingerprint } from '@pocketproxy/protocol';
import { agentError } from './errors.js';

export const DEFAULT_STATE_DIR = '/var/lib/pocketproxy-agent';
export const STATE_FILE = 'state.json';

export interface AgentState {
  version: 1;
  server: string;
  device_id: string;
  auth_token: string;
  /** base64 X25519 private key of this device (never leaves it). */
  private_key: string;
  public_key: string;
  /** base64 pre-shared key from pairing. */
  psk: string;
  relay: { id: string; host: string; port: number; public_key: string | null };
  vpn_ip: string | null;
  mtu: number;
  subnet: string;
  paired_at: string;
  /**
   * The server key (Ed25519) that must endorse every relay key this device uses; pinned at pairing, from
   * the pairing code's fingerprint (`from: 'fingerprint'`) or, without one, from the pairing answer itself
   * (`'first-use'`). Absent in state files written before the pin existed: then nothing is checked.
   */
  server_key?: { public_key: string; fingerprint: string; from: 'fingerprint' | 'first-use' };
  /** `pair --insecure-http`: `run` accepts this plain-http, non-loopback server too. */
  insecure_http?: boolean;
}

export function statePath(dir: string): string {
  return join(dir, STATE_FILE);
}

export async function writeState(dir: string, state: AgentState): Promise<string> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const path = statePath(dir);
  const tmp = `${path}.${process.pid}.tmp`;
  await fs.writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await fs.chmod(tmp, 0o600); // writeFile's mode is subject to umask and ignored for existing files
  await fs.rename(tmp, path);
  return path;
}

export async function readState(dir: string): Promise<AgentState> {
  const path = statePath(dir);
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw agentError('PP_ERR_AGENT_STATE_MISSING', { path });
    throw agentError('PP_ERR_AGENT_STATE_INVALID', { path, reason: (e as Error).message }, { cause: e });
  }
  let s: unknown;
  try {
    s = JSON.parse(text);
  } catch {
    throw agentError('PP_ERR_AGENT_STATE_INVALID', { path, reason: 'not JSON' });
  }
  const problems = checkState(s);
  if (problems.length) throw agentError('PP_ERR_AGENT_STATE_INVALID', { path, reason: problems.join('; ') });
  return s as AgentState;
}

function checkState(s: unknown): string[] {
  if (typeof s !== 'object' || s === null) return ['not an object'];
  const o = s as Record<string, unknown>;
  const p: string[] = [];
  for (const k of ['server', 'device_id', 'auth_token', 'private_key', 'psk', 'subnet'] as const) {
    if (typeof o[k] !== 'string' || (o[k] as string).length === 0) p.push(`${k} must be a non-empty string`);
  }
  const r = o.relay as Record<string, unknown> | undefined;
  if (typeof r !== 'object' || r === null || typeof r.host !== 'string' || typeof r.port !== 'number')
    p.push('relay must be {host, port}');
  if (typeof o.mtu !== 'number') p.push('mtu must be a number');
  if (o.server_key !== undefined) {
    const k = o.server_key as Record<string, unknown> | null;
    let fp: string | undefined;
    try {
      fp = typeof k?.public_key === 'string' ? serverKeyFingerprint(k.public_key) : undefined;
    } catch {
      /* reported below */
    }
    if (!fp || k?.fingerprint !== fp || (k.from !== 'fingerprint' && k.from !== 'first-use'))
      p.push('server_key must be {public_key, fingerprint (of that key), from}');
  }
  if (o.insecure_http !== undefined && typeof o.insecure_http !== 'boolean')
    p.push('insecure_http must be true or false');
  return p;
}
