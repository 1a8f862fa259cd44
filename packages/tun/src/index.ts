// @pocketproxy/tun — the operating-system data path that Node lacks, behind a small native addon:
// TUN device queues with batched reads (openTun), SO_ORIGINAL_DST for the transparent proxy
// (getOriginalDst), a recvmmsg/sendmmsg UDP socket (BatchUdpSocket), and a native ChaCha20-Poly1305
// provider for the tunnel's transport sessions (nativeAead); plus FakeTun for tests.
//
// Who may import it: apps/server (tunnel, tproxy), apps/agent, packages/testkit, and any package's
// tests (FakeTun, packet builders). It imports only @pocketproxy/errors.
// The addon is built from native/ by `npm run build -w @pocketproxy/tun`.
export { ERRORS as TUN_ERRORS, type TunErrorCode } from './errors.js';
export { addonAvailable, ADDON_PATH } from './native.js';
export { nativeAead, tryNativeAead, type NativeAead, type NativeAeadProvider } from './aead.js';
export {
  type TunDevice,
  type TunOffload,
  type TunStats,
  type PacketBatch,
  type SealPath,
  type SealLane,
  type SealState,
  packetsOf,
  batchOf,
} from './tun-device.js';
export { openTun, type OpenTunOptions, type KernelTunDevice } from './tun.js';
export { FakeTun, type FakeTunOptions, type FakeSealSocket } from './tun.fake.js';
export { configureTun, renderTunCommands, type TunConfig } from './configure.js';
export { type CommandRunner, execRunner, RecordingRunner } from './runner.js';
export { getOriginalDst, socketFd, type OriginalDst, type FdOwner } from './original-dst.js';
export { setTcpFlag, openTcpSocket, openTcpFd, type TcpFlag, type OpenTcpSocketOptions } from './tcp-flags.js';
export { setThreadName } from './thread-name.js';
export {
  SpliceEngine,
  type SpliceEnd,
  type SplicePairEvents,
  type SplicePairStart,
  type SpliceLend,
  type SpliceStats,
  type TransparentHooks,
  type TransparentListenOptions,
  type TransparentListenStats,
  type FrontRoute,
  type Socks5FrontStep,
  type FrontAnswered,
  type FrontHandler,
  type FrontHeadEnd,
  type FrontOptions,
  type FrontPairEvents,
  type FrontStats,
} from './splice.js';
export { bindToDevice, validateInterfaceName, IFNAMSIZ } from './bind-device.js';
export {
  BatchUdpSocket,
  createBatchUdpSocket,
  type BatchUdpOptions,
  type Datagram,
  type OutDatagram,
  type OpenPath,
  type OpenState,
  type RawUdpBatchHandler,
  type UdpStats,
} from './udp.js';
export {
  stampSyn,
  unstampSyn,
  readStamp,
  STAMP_KIND,
  STAMP_EXID,
  STAMP_NOT_SYN,
  STAMP_MALFORMED,
  STAMP_NO_ROOM,
  type Stamp,
  type StampFailure,
} from './syn-stamp.js';
export { markRedundantAcks } from './ack-filter.js';
export { buildIPv4Udp, parseIPv4Udp, internetChecksum, type UdpPacketSpec, type ParsedUdpPacket } from './packet.js';
