// The relay's static X25519 key: `${dataDir}/relay.key`, the raw 32-byte private key in base64,
// mode 0600. The tunnel creates it; the API reads its public half from the same file
// (system.ts localRelayPublicKey), so the format is shared and must not change.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { decodeKey, encodeKey, generateKeyPair, publicKeyFromPrivate } from '@pocketproxy/protocol';

export interface RelayKey {
  readonly privateKey: Buffer;
  readonly publicKey: Buffer;
  readonly created: boolean;
}

export function loadOrCreateRelayKey(path: string): RelayKey {
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (text !== undefined) {
    const privateKey = decodeKey(text, `relay key in ${path}`);
    return { privateKey, publicKey: publicKeyFromPrivate(privateKey), created: false };
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const kp = generateKeyPair();
  try {
    // 'wx': if another process created it in between, use theirs rather than overwrite.
    writeFileSync(path, `${encodeKey(kp.privateKey)}\n`, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateRelayKey(path);
    throw e;
  }
  return { ...kp, created: true };
}
