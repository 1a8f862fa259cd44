// The connections this device serves, as the API last described them, and the password check.
// The server sends usernames with password verifiers, never passwords (docs/security.md):
//   verifier = "v1$" + salt + "$" + base64url(HMAC-SHA256(key = salt as UTF-8, message = password))
// Each connection has a listener of its own (proxy/listeners.ts), and a credential is checked only
// against the connection of the port it arrived on: the username and password of one connection
// open nothing on another.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { parseCredentialItem, type CredentialItem } from './api-client.js';

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

/** Most user/password pairs remembered as verified (the whole memo is dropped when it fills). */
export const VERIFIED_MEMO_MAX = 4096;

/** An address list as node:net's BlockList (IPv4 and IPv6, CIDRs and single addresses). */
export function addressList(cidrs: readonly string[]): BlockList | null {
  if (cidrs.length === 0) return null;
  const list = new BlockList();
  for (const c of cidrs) {
    const [addr, bits] = c.split('/');
    const fam = isIP(addr ?? '');
    if (fam === 0) continue;
    const type = fam === 6 ? 'ipv6' : 'ipv4';
    try {
      if (bits === undefined) list.addAddress(addr!, type);
      else list.addSubnet(addr!, Number(bits), type);
    } catch {
      // A bad prefix adds nothing: the list stays closed to what it cannot read.
    }
  }
  return list;
}

export class CredentialStore {
  private byId = new Map<string, CredentialItem>();
  private lists = new Map<string, BlockList | null>();
  /**
   * connection + user + password triples that passed checkVerifier since the last replace(), so a
   * customer opening thousands of connections pays the HMAC once (it was ~3 % of the agent's CPU at
   * 1,800 new connections/s). The device sees every password in clear in Proxy-Authorization
   * anyway; what it never holds is the password of a customer who did not connect. Cleared
   * whenever the credentials change, so a changed or revoked password is checked afresh.
   */
  private verified = new Set<string>();
  version: string | undefined;

  /** Replaces the whole set; returns the items left out and why (malformed from the API). */
  replace(version: string, raw: readonly unknown[]): { id: string; reason: string }[] {
    const bad: { id: string; reason: string }[] = [];
    const byId = new Map<string, CredentialItem>();
    for (const r of raw) {
      const item = parseCredentialItem(r);
      if (typeof item === 'string')
        bad.push({ id: String((r as { connection_id?: unknown })?.connection_id ?? '?'), reason: item });
      else byId.set(item.connection_id, item);
    }
    this.version = version;
    this.byId = byId;
    this.lists = new Map();
    this.verified = new Set();
    return bad;
  }

  get size(): number {
    return this.byId.size;
  }

  /** Pairs currently remembered as verified (tests). */
  get verifiedCount(): number {
    return this.verified.size;
  }

  items(): IterableIterator<CredentialItem> {
    return this.byId.values();
  }

  get(connectionId: string): CredentialItem | undefined {
    return this.byId.get(connectionId);
  }

  /** True when user/password are this connection's. Wrong users still cost one HMAC (no timing oracle). */
  check(item: CredentialItem, username: string, password: string): boolean {
    const key = `${item.connection_id}\0${username}\0${password}`;
    if (this.verified.has(key)) return true;
    const ok = checkVerifier(password, item.verifier) && username === item.username;
    if (!ok) return false;
    if (this.verified.size >= VERIFIED_MEMO_MAX) this.verified.clear();
    this.verified.add(key);
    return true;
  }

  /** The connection's allow-list check; true when it has none. */
  allowed(item: CredentialItem, address: string): boolean {
    let list = this.lists.get(item.connection_id);
    if (list === undefined) {
      list = addressList(item.allow_from);
      this.lists.set(item.connection_id, list);
    }
    if (list === null) return true;
    const fam = isIP(address);
    return fam !== 0 && list.check(address, fam === 6 ? 'ipv6' : 'ipv4');
  }
}
