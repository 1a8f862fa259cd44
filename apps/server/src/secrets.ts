// Server secrets: the sealing key (proxy passwords, PSKs, webhook secrets at rest; JWT key derived
// from it) and the internal token. From the environment when given — required to be the same on every
// instance that shares a database — otherwise generated once into the data dir (mode 0600).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hkdfSync, randomBytes } from 'node:crypto';
import type { Config } from './config.js';

function fileSecret(dir: string, name: string, make: () => string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const p = join(dir, name);
  if (existsSync(p)) return readFileSync(p, 'utf8').trim();
  const v = make();
  writeFileSync(p, `${v}\n`, { mode: 0o600, flag: 'wx' });
  return v;
}

export interface Secrets {
  secretKey: Buffer;
  internalToken: string;
  jwtKey: Uint8Array;
  /** Seed of the server key (Ed25519) that endorses relay keys; its fingerprint is in every pairing code. */
  serverKeySeed: Buffer;
}

export function loadSecrets(config: Config): Secrets {
  const secretKey = Buffer.from(
    config.secretKey ?? fileSecret(config.dataDir, 'secret.key', () => randomBytes(32).toString('base64')),
    'base64',
  );
  const internalToken =
    config.internalToken ?? fileSecret(config.dataDir, 'internal.token', () => randomBytes(32).toString('base64url'));
  const jwtKey = new Uint8Array(hkdfSync('sha256', secretKey, Buffer.alloc(0), 'pocketproxy jwt v1', 32));
  const serverKeySeed = Buffer.from(hkdfSync('sha256', secretKey, Buffer.alloc(0), 'pocketproxy server key v1', 32));
  return { secretKey, internalToken, jwtKey, serverKeySeed };
}

/** The local relay's static X25519 key (tunnel handshake). The tunnel process owns it; the API only reads its public half. */
export const relayKeyPath = (config: Config) => join(config.dataDir, 'relay.key');
