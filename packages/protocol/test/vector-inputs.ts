// Fixed inputs of the published test vectors (docs/protocol.md §Test vectors).
import { createHash } from 'node:crypto';

const h = (label: string) => createHash('sha256').update(label).digest();

export const VECTOR_INPUTS = {
  relayStaticPrivate: h('pocketproxy vector relay static'),
  deviceStaticPrivate: h('pocketproxy vector device static'),
  psk: h('pocketproxy vector psk'),
  initiatorEphemeralPrivate: h('pocketproxy vector initiator ephemeral'),
  responderEphemeralPrivate: h('pocketproxy vector responder ephemeral'),
  initiatorIndex: 0x01020304,
  responderIndex: 0x0a0b0c0d,
  /** Unix ms 1700000000123 = 2023-11-14T22:13:20.123Z */
  unixMs: 1_700_000_000_123,
  /** A 28-byte IPv4/UDP-shaped packet (192.168.255.2 -> 192.168.255.1:53); checksums are not meaningful. */
  ipPacket: Buffer.from('4500001c000100004011f876c0a8ff02c0a8ff01d43500350008a6a7', 'hex'),
  command: { id: 'cmd_01', type: 'rotate_ip', payload: { reason: 'test' } },
};
