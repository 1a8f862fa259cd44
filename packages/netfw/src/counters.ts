// Parses per-port usage from `nft -j list counters table ip pocketproxy`.
// Each port has one named counter `port_<n>` bumped by every forwarded packet of its DNAT'ed
// connections in both directions (bytes are IP packet lengths). Counters start at zero when
// the table is rebuilt (process start), so readers must treat a smaller reading as a reset.
// JSON schema: https://manpages.debian.org/bookworm/nftables/libnftables-json.5.en.html
import { fail } from './errors.js';

export interface PortCounter {
  readonly packets: number;
  readonly bytes: number;
}

const NAME = /^port_([1-9][0-9]{0,4})$/;

export function parseCounters(json: string, table: string): Map<number, PortCounter> {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    throw fail('PP_ERR_NETFW_COUNTERS_UNPARSABLE', { reason: 'not JSON' }, { cause: e });
  }
  const items = (doc as { nftables?: unknown }).nftables;
  if (!Array.isArray(items)) throw fail('PP_ERR_NETFW_COUNTERS_UNPARSABLE', { reason: 'no "nftables" array' });
  const out = new Map<number, PortCounter>();
  for (const item of items) {
    const c = (item as { counter?: Record<string, unknown> }).counter;
    if (!c || c.table !== table) continue;
    const m = NAME.exec(String(c.name));
    if (!m) continue;
    const { packets, bytes } = c;
    if (typeof packets !== 'number' || typeof bytes !== 'number') {
      throw fail('PP_ERR_NETFW_COUNTERS_UNPARSABLE', { reason: `counter ${String(c.name)} lacks numeric packets/bytes` });
    }
    out.set(Number(m[1]), { packets, bytes });
  }
  return out;
}
