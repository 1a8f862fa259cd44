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

export class CredentialStore {
  private byUser = new Map<string, CredentialItem>();
  private byId = new Map<string, CredentialItem>();
  version: string | undefined;

  replace(version: string, items: readonly CredentialItem[]): void {
    this.version = version;
    this.byUser = new Map(items.map((i) => [i.username, i]));
    this.byId = new Map(items.map((i) => [i.connection_id, i]));
  }

  get size(): number {
    return this.byUser.size;
  }

  authenticate(username: string, password: string): Authenticated | null {
    const item = this.byUser.get(username);
    // Unknown users still cost one HMAC, so timing does not reveal which usernames exist.
    if (!item) {
      checkVerifier(password, 'v1$x$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
      return null;
    }
    return checkVerifier(password, item.verifier) ? { principal: item.connection_id, port: item.port, protocol: item.protocol } : null;
  }

  byConnection(id: string): CredentialItem | undefined {
    return this.byId.get(id);
  }
}
