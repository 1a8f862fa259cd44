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
}

export interface NativeTunQueue {
  readonly name: string;
  readonly fd: number;
  /** mode 0: onBatch(data, offsets, count); mode 1: onBatch(packets). */
  start(onBatch: (...args: any[]) => void, onError: (err: Error) => void, batch: number, maxPacket: number, mode: 0 | 1): void;
  pause(): void;
  write(packet: Uint8Array): boolean;
  writeBatch(packets: readonly Uint8Array[]): number;
  stats(): NativeTunStats;
  ref(): void;
  unref(): void;
  close(): void;
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
  ref(): void;
  unref(): void;
  close(): void;
}

export interface NativeAddon {
  /** `blocking` is for the fs.read comparison bench only: such a queue cannot start(). */
  TunQueue: new (name: string, multiQueue: boolean, blocking?: boolean) => NativeTunQueue;
  UdpBatch: new (
    family: 4 | 6,
    address: string,
    port: number,
    opts: { reusePort?: boolean; recvBufferSize?: number; sendBufferSize?: number; ipv6Only?: boolean },
  ) => NativeUdpBatch;
  getOriginalDst(fd: number): { address: string; port: number; family: 'IPv4' | 'IPv6' };
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
