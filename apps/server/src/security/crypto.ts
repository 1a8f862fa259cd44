// Secrets handling: admin password hashes (scrypt), device-token and link-token hashes (SHA-256 of
// 256-bit random tokens: no stretching needed), proxy-password sealing (AES-256-GCM under the server
// key, so the operator can copy a proxy URL again) and the verifier a device checks passwords with
// (the device never receives a plaintext password).
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  randomBytes,
  scrypt as scryptCb,
  timingSafeEqual,
} from 'node:crypto';
import { promisify } from 'node:util';

const scrypt = promisify(scryptCb) as (
  pw: string,
  salt: Buffer,
  len: number,
  opts: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, 32, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, salt, key] = stored.split('$');
  if (alg !== 'scrypt' || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64');
  const got = await scrypt(password, Buffer.from(salt, 'base64'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem: SCRYPT.maxmem,
  });
  return timingSafeEqual(got, expected);
}

/** A random token, URL-safe. 32 bytes = 256 bits. */
export const randomToken = (bytes = 32): string => randomBytes(bytes).toString('base64url');

export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

const ID_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
/** Prefixed ids (dev_…, con_…): 16 base62 characters ≈ 95 bits. */
export function newId(prefix: string): string {
  const b = randomBytes(16);
  let s = '';
  for (const x of b) s += ID_ALPHABET[x % 62];
  return `${prefix}_${s}`;
}

/** Seals small secrets at rest: v1.<iv>.<tag>.<ciphertext>, AES-256-GCM, base64url parts. */
export class SecretBox {
  readonly #key: Buffer;
  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error('secret key must be 32 bytes');
    this.#key = key;
  }
  seal(plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.#key, iv);
    const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return `v1.${iv.toString('base64url')}.${c.getAuthTag().toString('base64url')}.${ct.toString('base64url')}`;
  }
  open(sealed: string): string {
    const [v, iv, tag, ct] = sealed.split('.');
    if (v !== 'v1' || !iv || !tag || ct === undefined) throw new Error('not a sealed value');
    const d = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64url'));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]).toString('utf8');
  }
}

/**
 * What a device gets instead of a proxy password: `v1$<salt>$<hmac-sha256(salt, password)>`.
 * The device recomputes the HMAC over the password a customer presents and compares.
 */
export function passwordVerifier(password: string, salt = randomBytes(16).toString('base64url')): string {
  return `v1$${salt}$${createHmac('sha256', salt).update(password).digest('base64url')}`;
}

export function checkVerifier(password: string, verifier: string): boolean {
  const [v, salt, mac] = verifier.split('$');
  if (v !== 'v1' || !salt || !mac) return false;
  const a = Buffer.from(createHmac('sha256', salt).update(password).digest('base64url'));
  const b = Buffer.from(mac);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function timingSafeEqualStr(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}
