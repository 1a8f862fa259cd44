// Customer credentials, checked on the device: the server sends usernames with password
// verifiers, never passwords (DESIGN §6).
//   verifier = "v1$" + salt + "$" + base64url(HMAC-SHA256(key = salt as UTF-8, message = password))
// The principal of an authenticated customer is the connection id; its relay port is kept so the
// SOCKS5 UDP ASSOCIATE reply can name the port the customer must send datagrams to.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { CredentialItem } from './api-client.js';

export function makeVerifier(password: string, salt: string): string {
  return `v1$${salt}$${createHmac('sha256', Buffer.from(salt, 'utf8')).update(password, 'utf8').digest('base64url')}`;
}

/** Constant-time check of a password against a verifier. Unknown formats never match. */
export function checkVerifier(password: string, verifier: string): boolean {
  const parts = verifier.split('$');
  if (parts.length !== 3 || parts[0] !== 'v1' || !parts[1]) return false;
  const want = Buffer.from(parts[2]!, 'base64url');
  const got = createHmac('sha256', Buffer.from(parts[1], 'utf8')).update(password, 'utf8').digest();
  return want.length === got.length && timingSafeEqual(want, got);
}

export interface Authenticated {
  principal: string;
  port: number;
  protocol: string;
}

/** Most user/password pairs remembered as verified (the whole memo is dropped when it fills). */
export const VERIFIED_MEMO_MAX = 4096;

export class CredentialStore {
  private byUser = new Map<string, CredentialItem>();
  private byId = new Map<string, CredentialItem>();
  /**
   * Pairs that passed checkVerifier since the last replace(), so a customer opening thousands of
   * connections pays the HMAC once (it was ~3 % of the agent's CPU at 1,800 new connections/s).
   * Keyed by user + NUL + password: the device sees every password in clear in Proxy-Authorization
   * anyway; what it never holds is the password of a customer who did not connect. Cleared
   * whenever the credentials change, so a changed or revoked password is checked afresh.
   */
  private verified = new Map<string, Authenticated>();
  version: string | undefined;

  replace(version: string, items: readonly CredentialItem[]): void {
    this.version = version;
    this.byUser = new Map(items.map((i) => [i.username, i]));
    this.byId = new Map(items.map((i) => [i.connection_id, i]));
    this.verified = new Map();
  }

  /** Pairs currently remembered as verified (tests). */
  get verifiedCount(): number {
    return this.verified.size;
  }

  get size(): number {
    return this.byUser.size;
  }

  authenticate(username: string, password: string): Authenticated | null {
    const key = `${username}\0${password}`;
    const memo = this.verified.get(key);
    if (memo) return memo;
    const item = this.byUser.get(username);
    // Unknown users still cost one HMAC, so timing does not reveal which usernames exist.
    if (!item) {
      checkVerifier(password, 'v1$x$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
      return null;
    }
    if (!checkVerifier(password, item.verifier)) return null;
    const ok = { principal: item.connection_id, port: item.port, protocol: item.protocol };
    if (this.verified.size >= VERIFIED_MEMO_MAX) this.verified.clear();
    this.verified.set(key, ok);
    return ok;
  }

  byConnection(id: string): CredentialItem | undefined {
    return this.byId.get(id);
  }
}
