// The relay's device table: who may handshake (static key -> device id + PSK, for the responder's
// synchronous lookupPeer), which vpn_ip belongs to whom (the packet path's routing table and
// anti-spoofing check), and each device's connection state as the tunnel reports it to the API.
import type { PeerLookup } from '@pocketproxy/protocol';
import type { PortForward } from '@pocketproxy/netfw';
import type { DeviceForwarding, TunnelPeer } from './api-client.js';
import { ipv4ToNumber, type Subnet } from './ipv4.js';
import type { Endpoint } from './transport.js';

export interface DeviceEntry {
  readonly id: string;
  publicKey: Buffer;
  psk: Buffer;
  vpnIp: string;
  vpnNum: number;
  /** Has a confirmed session (between the responder's peer_up and peer_down). */
  up: boolean;
  endpoint: Endpoint | undefined;
  /** vpn/connected answered for the current up period, so its ports are forwarded. */
  reported: boolean;
  reporting: boolean;
  reportFailures: number;
  nextReportAt: number;
  /** Bumped on every up/down so an answer that arrives late for an old period is ignored. */
  gen: number;
  forwarding: DeviceForwarding | undefined;
  /** Checked ports (see forwarding.ts) while reported; empty otherwise. */
  ports: PortForward[];
  /** Sequence number of the API answer `forwarding` came from (firewall-sync.ts). */
  fwdSeq: number;
  /**
   * Until when its ports stay forwarded although it has no session (0 = not warm): after the relay
   * restarts, devices reconnect within seconds; their customers' open flows must survive that.
   */
  warmUntil: number;
  /** API calls about this device run one after another (connected never overtakes disconnected). */
  chain: Promise<void>;
  /**
   * With POCKETPROXY_HTTP_FRONT=auto: its link is far (handshake round trip), so its HTTP ports go through
   * the relay's front (firewall-sync.ts noteRtt); and when that last changed in this up period.
   */
  far: boolean;
  farChangedAt: number | undefined;
  /**
   * Its agent said, after this session's `config`, that it reads SYN stamps (`features`): OpenVPN customers of
   * its connections are carried to it (docs/design.md §2.4) instead of through the transparent proxy.
   */
  synStamps: boolean;
}

export interface Skipped {
  readonly deviceId: string;
  readonly reason: string;
}

export class DeviceTable {
  readonly byId = new Map<string, DeviceEntry>();
  private byKey = new Map<string, PeerLookup>();
  private byVpn = new Map<number, DeviceEntry>();
  private loaded = false;

  constructor(private readonly subnet: Subnet) {}

  get ready(): boolean {
    return this.loaded;
  }

  /** For the responder: synchronous, undefined for unknown keys. */
  lookup(publicKey: Buffer): PeerLookup | undefined {
    return this.byKey.get(publicKey.toString('base64'));
  }

  /** The device at this VPN address that reads SYN stamps (DeviceEntry.synStamps), if it has a session. */
  readsStamps(vpnIp: string): boolean {
    const n = ipv4ToNumber(vpnIp);
    const e = n === undefined ? undefined : this.byAddress(n);
    return e?.up === true && e.synStamps;
  }

  byAddress(vpnNum: number): DeviceEntry | undefined {
    return this.byVpn.get(vpnNum);
  }

  /** The username and verifier of the `protocol` connection a device serves on `port`, as the API last said (the front's). */
  frontCredentials(
    vpnIp: string,
    port: number,
    protocol: 'socks5' | 'http',
  ): { username: string; verifier: string; earlyReply: boolean } | undefined {
    const n = ipv4ToNumber(vpnIp);
    const e = n === undefined ? undefined : this.byVpn.get(n);
    const c = e?.forwarding?.connections.find((x) => x.port === port && x.protocol === protocol && x.enabled);
    return c?.username !== undefined && c.verifier !== undefined
      ? { username: c.username, verifier: c.verifier, earlyReply: c.early_reply === true }
      : undefined;
  }

  /** Devices that replacing the list with `peers` drops or re-keys (their sessions must go); call before `replace`. */
  diff(peers: readonly TunnelPeer[]): string[] {
    const next = new Map(peers.map((p) => [p.deviceId, p]));
    const drop: string[] = [];
    for (const [id, e] of this.byId) {
      const p = next.get(id);
      if (!p?.publicKey.equals(e.publicKey)) drop.push(id);
    }
    return drop;
  }

  /** Replaces the peer list; connection state of devices that stay is kept. */
  replace(peers: readonly TunnelPeer[]): Skipped[] {
    const skipped: Skipped[] = [];
    const byKey = new Map<string, PeerLookup>();
    const byVpn = new Map<number, DeviceEntry>();
    const keep = new Set<string>();
    for (const p of peers) {
      const vpnNum = ipv4ToNumber(p.vpnIp);
      if (vpnNum === undefined || !this.subnet.contains(vpnNum)) {
        skipped.push({ deviceId: p.deviceId, reason: `vpn_ip ${p.vpnIp} is not in ${this.subnet.cidr}` });
        continue;
      }
      if (byVpn.has(vpnNum)) {
        skipped.push({ deviceId: p.deviceId, reason: `vpn_ip ${p.vpnIp} is also ${byVpn.get(vpnNum)!.id}'s` });
        continue;
      }
      let e = this.byId.get(p.deviceId);
      if (!e) {
        e = newEntry(p, vpnNum);
        this.byId.set(p.deviceId, e);
      } else {
        e.publicKey = p.publicKey;
        e.psk = p.psk;
        e.vpnIp = p.vpnIp;
        e.vpnNum = vpnNum;
      }
      keep.add(p.deviceId);
      byKey.set(p.publicKey.toString('base64'), { deviceId: p.deviceId, psk: p.psk });
      byVpn.set(vpnNum, e);
    }
    for (const id of this.byId.keys()) if (!keep.has(id)) this.byId.delete(id);
    this.byKey = byKey;
    this.byVpn = byVpn;
    this.loaded = true;
    return skipped;
  }

  /** The API answered another vpn_ip than the peer list had (re-addressed): follow the API. */
  readdress(e: DeviceEntry, vpnIp: string): boolean {
    const n = ipv4ToNumber(vpnIp);
    if (n === undefined || !this.subnet.contains(n)) return false;
    const other = this.byVpn.get(n);
    if (other && other !== e) return false;
    if (this.byVpn.get(e.vpnNum) === e) this.byVpn.delete(e.vpnNum);
    e.vpnIp = vpnIp;
    e.vpnNum = n;
    this.byVpn.set(n, e);
    return true;
  }

  connected(): DeviceEntry[] {
    return [...this.byId.values()].filter((e) => e.up);
  }
}

function newEntry(p: TunnelPeer, vpnNum: number): DeviceEntry {
  return {
    id: p.deviceId,
    publicKey: p.publicKey,
    psk: p.psk,
    vpnIp: p.vpnIp,
    vpnNum,
    up: false,
    endpoint: undefined,
    reported: false,
    reporting: false,
    reportFailures: 0,
    nextReportAt: 0,
    gen: 0,
    forwarding: undefined,
    ports: [],
    fwdSeq: 0,
    warmUntil: 0,
    chain: Promise.resolve(),
    far: false,
    farChangedAt: undefined,
    synStamps: false,
  };
}
