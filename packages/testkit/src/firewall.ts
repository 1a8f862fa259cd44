// Lab-made network faults in a namespace, in an nft table of the lab's own (`pplab_block`) so the
// product's tables are never touched: block UDP to/from a port (to test the tunnel's UDP→TCP
// fallback). Stateless: the table is the state, so a second lab handle or the CLI can undo it.
import { BLOCK_TABLE } from './plan.js';
import { inNs, nftScript, run, runChecked } from './run.js';

export interface BlockOptions {
  /** 'drop' (default): silence, like most middleboxes. 'reject': ICMP port unreachable, fails fast. */
  mode?: 'drop' | 'reject';
}

function setName(mode: 'drop' | 'reject') {
  return mode === 'drop' ? 'udp_drop' : 'udp_reject';
}

// Input, output and forward: the same call works on an endpoint (relay, devN) or a router (inet, cgnN).
const TABLE = `table inet ${BLOCK_TABLE} {
  set udp_drop { type inet_service; }
  set udp_reject { type inet_service; }
${['input', 'output', 'forward']
  .map(
    (h) => `  chain ${h} {
    type filter hook ${h} priority filter - 5; policy accept;
    udp dport @udp_drop drop
    udp sport @udp_drop drop
    udp dport @udp_reject reject
    udp sport @udp_reject reject
  }`,
  )
  .join('\n')}
}
`;

async function ensureTable(ns: string) {
  const [c, a] = inNs(ns, 'nft', ['list', 'table', 'inet', BLOCK_TABLE]);
  if ((await run(c, a)).code === 0) return;
  await nftScript(ns, TABLE);
}

export async function blockUdp(ns: string, port: number, opts: BlockOptions = {}): Promise<void> {
  await ensureTable(ns);
  const [c, a] = inNs(ns, 'nft', ['add', 'element', 'inet', BLOCK_TABLE, setName(opts.mode ?? 'drop'), `{ ${port} }`]);
  await runChecked(c, a, { ns });
}

/** Undo blockUdp for `port` (both modes). Unblocking a port that is not blocked is fine. */
export async function unblockUdp(ns: string, port: number): Promise<void> {
  for (const mode of ['drop', 'reject'] as const) {
    const [c, a] = inNs(ns, 'nft', ['delete', 'element', 'inet', BLOCK_TABLE, setName(mode), `{ ${port} }`]);
    await run(c, a);
  }
}
