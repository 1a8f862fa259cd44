// The SOCKS5 UDP request header (RFC 1928 §7): RSV(2) FRAG(1) ATYP DST.ADDR DST.PORT DATA.
import { proxyError } from '../errors.js';
import { encodeAddress, readAddress, type SocksAddress } from '../socks5/wire.js';

export interface UdpHeader extends SocksAddress {
  readonly frag: number;
  /** Offset of DATA inside the datagram. */
  readonly dataOffset: number;
}

export function parseUdpHeader(msg: Buffer): UdpHeader {
  if (msg.length < 4) throw proxyError('PP_ERR_PROXY_UDP_MALFORMED', { reason: 'short header' });
  if (msg[0] !== 0 || msg[1] !== 0) throw proxyError('PP_ERR_PROXY_UDP_MALFORMED', { reason: 'RSV not zero' });
  let r: ReturnType<typeof readAddress>;
  try {
    r = readAddress(msg, 3);
  } catch (e) {
    throw proxyError('PP_ERR_PROXY_UDP_MALFORMED', { reason: (e as Error).message }, { cause: e });
  }
  if (!r) throw proxyError('PP_ERR_PROXY_UDP_MALFORMED', { reason: 'truncated address' });
  return { frag: msg[2]!, ...r.addr, dataOffset: r.next };
}

/** Header for a datagram going back to the client: the source it came from. */
export function encodeUdpHeader(host: string, port: number): Buffer {
  const addr = encodeAddress(host, port);
  const out = Buffer.allocUnsafe(3 + addr.length);
  out[0] = 0;
  out[1] = 0;
  out[2] = 0;
  addr.copy(out, 3);
  return out;
}
