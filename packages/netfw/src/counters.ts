// Parses per-port usage from `nft -j list counters table ip pocketproxy`.
// Each port has two named counters, bumped in the forward chain by the forwarded packets of its
// DNAT'ed connections (bytes are IP packet lengths):
//   port_<n>_in   conntrack ORIGINAL direction: customer -> target (the platform's bytes_in)
//   port_<n>_out  conntrack REPLY direction: target -> customer (the platform's bytes_out)
// Counters start at zero when the table is rebuilt (process start), so readers must treat a
// smaller reading as a reset. Both counters of a port are added and deleted in the same nft
// transaction; should a listing ever hold only one of them, the other reads as zero.
// JSON schema: https://manpages.debian.org/bookworm/nftables/libnftables-json.5.en.html
import type { Direction } from './elements.js';
import { fail } from './errors.js';

export interface CounterValue {
  readonly packets: number;
  readonly bytes: number;
}

/** One port's counters: `in` = customer -> target, `out` = target -> customer. */
export interface PortCounter {
  readonly in: CounterValue;
  readonly out: CounterValue;
}

const NAME = /^port_([1-9][0-9]{0,4})_(in|out)$/;
const ZERO: CounterValue = Object.freeze({ packets: 0, bytes: 0 });

export function parseCounters(json: string, table: string): Map<number, PortCounter> {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    throw fail('PP_ERR_NETFW_COUNTERS_UNPARSABLE', { reason: 'not JSON' }, { cause: e });
  }
  const items = doc !== null && typeof doc === 'object' ? (doc as { nftables?: unknown }).nftables : undefined;
  if (!Array.isArray(items)) throw fail('PP_ERR_NETFW_COUNTERS_UNPARSABLE', { reason: 'no "nftables" array' });
  const out = new Map<number, PortCounter>();
  for (const item of items) {
    const c =
      item !== null && typeof item === 'object' ? (item as { counter?: Record<string, unknown> }).counter : undefined;
    if (!c || typeof c !== 'object' || c.table !== table) continue;
    const m = NAME.exec(String(c.name));
    if (!m) continue;
    const { packets, bytes } = c;
    if (typeof packets !== 'number' || typeof bytes !== 'number') {
      throw fail('PP_ERR_NETFW_COUNTERS_UNPARSABLE', {
        reason: `counter ${String(c.name)} lacks numeric packets/bytes`,
      });
    }
    const port = Number(m[1]);
    const dir = m[2] as Direction;
    const prev = out.get(port) ?? { in: ZERO, out: ZERO };
    out.set(port, { ...prev, [dir]: { packets, bytes } });
  }
  return out;
}
