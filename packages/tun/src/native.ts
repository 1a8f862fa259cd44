// Loads build/Release/pp_tun.node (built from ../native by node-gyp) and types what it exports.
// Only this package's modules import it; other packages use the wrappers in index.ts.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fail, reasonOf } from './errors.js';

export interface NativeTunStats {
  rxPackets: number;
  rxBytes: number;
  rxBatches: number;
  rxErrors: number;
  txPackets: number;
  txBytes: number;
  txDrops: number;
  txErrors: number;
  /** Offload mode: reads that were TCP super-packets, reads with an unusable vnet header, GSO writes, write() calls. */
  rxGso: number;
  rxBadGso: number;
  txGso: number;
  txWrites: number;
  /** The native seal path: packets sealed and handed to the socket in C++, not sent, not sealed; routes installed. */
  sealNative: number;
  sealUnsent: number;
  sealErrors: number;
  sealRoutes: number;
  /** SYN stamps (setStampSubnet): OpenVPN customers' SYNs stamped, dropped for want of a stamp, others' stamps removed. */
  stamped: number;
  stampDropped: number;
  unstamped: number;
  /** Carried flows whose customer MSS was kept (setStampSubnet's maxSeg), and writes the kernel cut at one. */
  carryMssFlows: number;
  carryResized: number;
  /** Pure ACKs left out because a later one in the same read covered them (setAckThinning). */
  acksThinned: number;
}

export interface NativeTunQueue {
  readonly name: string;
  readonly fd: number;
  readonly offload: { vnetHdr: boolean; checksum: boolean; tso: boolean };
  /** mode 0: onBatch(data, offsets, count); mode 1: onBatch(packets). */
  start(
    onBatch: (data: Buffer, offsets: Uint32Array, count: number) => void,
    onError: (err: Error) => void,
    batch: number,
    maxPacket: number,
    mode: 0,
  ): void;
  start(
    onBatch: (packets: Buffer[]) => void,
    onError: (err: Error) => void,
    batch: number,
    maxPacket: number,
    mode: 1,
  ): void;
  pause(): void;
  write(packet: Uint8Array): boolean;
  writeBatch(packets: readonly Uint8Array[]): number;
  stats(): NativeTunStats;
  ref(): void;
  unref(): void;
  close(): void;
  setSealSocket(udp: NativeUdpBatch | null): void;
  /** dst: an IPv4 address (u32), or 'default' for every IPv4 packet no address route matches. */
  setSealRoute(
    dst: number | 'default',
    key: NativeAead,
    receiver: number,
    counter: Float64Array,
    limit: number,
    expiresAt: number,
    address: string,
    port: number,
    slot?: number,
    count?: number,
  ): void;
  /** -1: every route, the default one included; `slot`: that lane slot's route of dst only. */
  deleteSealRoute(dst: number | 'default', slot?: number): boolean;
  /** native/tun_queue.h StampSyns: on for SYNs from address/prefix (maxSeg: carry_mss.h), off with null. */
  setStampSubnet(address: string, prefix: number, maxSeg?: number): void;
  setStampSubnet(off: null): void;
  /** native/ack_filter.h on each read; off by default. */
  setAckThinning(on: boolean): void;
}

export interface NativeUdpStats {
  rxPackets: number;
  rxBytes: number;
  rxBatches: number;
  rxTruncated: number;
  rxErrors: number;
  txPackets: number;
  txBytes: number;
  txDrops: number;
  txErrors: number;
  txSyscalls: number;
  /** Offload: received messages that held several datagrams, GSO sends, times GSO was turned off, and whether each is on. */
  rxGro: number;
  txGso: number;
  txGsoOff: number;
  gso: boolean;
  gro: boolean;
  /** The native open path: frames opened and written to the TUN in C++; datagrams handed to JS while routes were set; routes. */
  openNative: number;
  openToJs: number;
  openRoutes: number;
}

export interface NativeUdpBatch {
  localAddress(): { address: string; port: number; family: 'IPv4' | 'IPv6' };
  start(
    onBatch: (data: Buffer, meta: Uint32Array, addresses: string[], count: number) => void,
    onError: (err: Error) => void,
    batch: number,
    maxDatagram: number,
  ): void;
  pause(): void;
  send(data: Uint8Array, address: string, port: number): boolean;
  sendBatch(datagrams: readonly { data: Uint8Array; address: string; port: number }[]): number;
  stats(): NativeUdpStats;
  setOpenTun(tun: NativeTunQueue | null): void;
  /** innerSrc: the IPv4 source (u32) every opened packet must carry, or -1 for any. */
  setOpenRoute(
    index: number,
    key: NativeAead,
    bits: Uint32Array,
    cell: Float64Array,
    limit: number,
    expiresAt: number,
    address: string,
    port: number,
    innerSrc: number,
  ): void;
  /** -1: every route. */
  deleteOpenRoute(index: number): boolean;
  ref(): void;
  unref(): void;
  close(): void;
}

/**
 * How an Aead goes through OpenSSL (native/aead.h): `direct` (its ChaCha20 and Poly1305 routines; the
 * default where the node binary exports them and they agree with the EVP cipher) or `evp` (the EVP cipher;
 * everywhere else, and with POCKETPROXY_AEAD=evp). The same bytes either way.
 */
export type AeadBackend = 'direct' | 'evp';

/** ChaCha20-Poly1305 under one key (native/aead.h). Counters: integer numbers 0..2^53 or bigints. */
export interface NativeAead {
  readonly backend: AeadBackend;
  /** Writes ciphertext || tag at dst[dstOffset]; returns src.length + 16. dst may alias src exactly. */
  seal(counter: number | bigint, src: Uint8Array, dst: Uint8Array, dstOffset: number): number;
  /** Plaintext length, or -1 when the tag does not verify (dst range wiped). dst may alias sealed exactly. */
  open(counter: number | bigint, sealed: Uint8Array, dst: Uint8Array, dstOffset: number): number;
  /**
   * Packet i (src[srcOffsets[i], srcOffsets[i+1])) sealed with counter0 + i at dstOffsets[i] + headroom;
   * sets dstOffsets[i+1]; returns packets sealed (stops when dst is full).
   */
  sealBatch(
    counter0: number | bigint,
    src: Uint8Array,
    srcOffsets: Uint32Array,
    count: number,
    dst: Uint8Array,
    dstOffsets: Uint32Array,
    headroom: number,
  ): number;
  /**
   * Item i's sealed part src[offsets[i] + skip, offsets[i+1]) opened with counters[i] (NaN/negative: skipped,
   * lengths[i] = -2) into the same offset of dst; lengths[i] = plaintext length or -1; returns how many
   * authenticated.
   */
  openBatch(
    counters: Float64Array,
    src: Uint8Array,
    offsets: Uint32Array,
    count: number,
    skip: number,
    dst: Uint8Array,
    lengths: Int32Array,
  ): number;
  /** Frees the OpenSSL contexts (wiping the key) now; later calls throw. */
  destroy(): void;
}

export interface NativeAddon {
  /** `backend` where a test or a comparison needs one way (default: see AeadBackend). */
  Aead: new (
    key: Uint8Array,
    backend?: AeadBackend,
  ) => NativeAead;
  /** `blocking` is for the fs.read comparison bench only: such a queue cannot start(). */
  TunQueue: new (
    name: string,
    multiQueue: boolean,
    blocking?: boolean,
    offload?: boolean,
  ) => NativeTunQueue;
  UdpBatch: new (
    family: 4 | 6,
    address: string,
    port: number,
    opts: {
      reusePort?: boolean;
      recvBufferSize?: number;
      sendBufferSize?: number;
      ipv6Only?: boolean;
      offload?: boolean;
    },
  ) => NativeUdpBatch;
  getOriginalDst(fd: number): { address: string; port: number; family: 'IPv4' | 'IPv6' };
  setTcpFlag(fd: number, flag: 'quickack' | 'cork' | 'defer_accept' | 'nodelay', on: boolean): void;
  openTcpSocket(family: 4 | 6, bindAddress: string | null, quietAck: boolean, device?: string | null): number;
  /** PR_SET_NAME for the calling thread (1-15 bytes); false when the kernel refused. */
  setThreadName(name: string): boolean;
  /** SO_BINDTODEVICE on an fd; throws a system error with syscall 'setsockopt(SO_BINDTODEVICE)'. */
  bindToDevice(fd: number, ifname: string): void;
  /** native/offload.h Segment: a vnet header + packet as read from an offload TUN -> wire packets (null: header does not fit). */
  offloadSegment(vnetPacket: Uint8Array): Buffer[] | null;
  /** native/offload.h Coalescer: packets -> what writeBatch would write (10-byte vnet header + packet each). */
  offloadCoalesce(
    packets: readonly Uint8Array[],
    carry?: { maxSeg: number; flows: readonly (readonly [number, number, number, number, number])[] },
  ): Buffer[];
  /** native/syn_stamp.h StampSyn: the stamped packet, or a negative StampResult. */
  synStamp(packet: Uint8Array, addr: string, port: number): Buffer | number;
  /** native/syn_stamp.h UnstampSyn: the packet without its stamp, 0 when it had none, or a negative StampResult. */
  synUnstamp(packet: Uint8Array): Buffer | number;
  /** native/syn_stamp.h ReadStamp: the stamp of a saved SYN, or null. */
  synReadStamp(savedSyn: Uint8Array): [string, number] | null;
  /** native/ack_filter.h MarkRedundantAcks over one read's packets: 1 where a later ACK covers the packet. */
  ackMarkRedundant(packets: readonly Uint8Array[]): Uint8Array;
  /** native/lanes.cc: the TUN steers each packet to queue flowLane(packet, lanes) (0: by its flow table). */
  tunSteerByFlow(fd: number, lanes: number): void;
}

/** A system error thrown by the addon (same shape as Node's). */
export interface NativeSystemError extends Error {
  code?: string;
  errno?: number;
  syscall?: string;
}

export const ADDON_PATH = fileURLToPath(new URL('../build/Release/pp_tun.node', import.meta.url));

let cached: NativeAddon | undefined;

/** The addon, loaded once. Throws PP_ERR_TUN_ADDON_MISSING when it has not been built. */
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  if (!existsSync(ADDON_PATH)) throw fail('PP_ERR_TUN_ADDON_MISSING', { path: ADDON_PATH });
  try {
    cached = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
  } catch (e) {
    throw fail('PP_ERR_TUN_ADDON_MISSING', { path: `${ADDON_PATH} (${reasonOf(e)})` }, { cause: e });
  }
  return cached;
}

/** True when the addon is built and loads; for tests and feature checks. */
export function addonAvailable(): boolean {
  try {
    loadAddon();
    return true;
  } catch {
    return false;
  }
}
