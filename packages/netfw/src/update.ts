// Element-level updates: ONE `nft -f` transaction that turns the table rendered for `prev` into
// the table for `next` by adding and deleting only the map/set elements and counters that
// differ. A device connecting among 5,000 touches a handful of elements, not the whole table,
// and open connections of other devices are untouched.
//
// Order inside the transaction matters only for the kernel's reference checks:
//   1. delete elements (a counter can only go once no port_counters_in/_out element names it)
//   2. delete counters   3. add counters   4. add elements (may name the new counters)
// A changed map value is a delete plus an add of the same key; both land in the same batch, so
// no packet ever sees the key missing.
import { collectionsOf, formatElement, SET_NAMES, type Collections, type ElementMap } from './elements.js';
import { render, TABLE } from './render.js';
import { ensureValid, type FirewallState, type ValidState } from './state.js';

/** Element statements per line; keeps lines short enough to read in logs and errors. */
const CHUNK = 500;

/**
 * Returns the script that moves the kernel from `prev` to `next`, or '' when they render the
 * same table. When something other than elements changed (interfaces, subnets, MSS, OpenVPN),
 * returns the full render: chains change rarely and a rebuild is still a single transaction.
 */
export function renderUpdate(prevInput: FirewallState, nextInput: FirewallState): string {
  const prev = ensureValid(prevInput);
  const next = ensureValid(nextInput);
  if (!sameSkeleton(prev, next)) return render(next);
  return renderElementDiff(collectionsOf(prev), collectionsOf(next));
}

/** True when only port entries differ, i.e. the chains render identically. */
export function sameSkeleton(a: ValidState, b: ValidState): boolean {
  return (
    a.tunnelInterface === b.tunnelInterface &&
    a.deviceSubnet === b.deviceSubnet &&
    a.tunnelAddress === b.tunnelAddress &&
    a.mssClamp === b.mssClamp &&
    JSON.stringify(a.openvpn ?? null) === JSON.stringify(b.openvpn ?? null) &&
    JSON.stringify(a.socks5Front ?? null) === JSON.stringify(b.socks5Front ?? null)
  );
}

interface Diff {
  readonly removed: string[];
  readonly added: string[];
}

function diff(a: ElementMap, b: ElementMap): Diff {
  const removed: string[] = [];
  const added: string[] = [];
  for (const [k, v] of a) {
    if (!b.has(k)) removed.push(formatElement(k, undefined));
    else if (b.get(k) !== v) removed.push(formatElement(k, undefined));
  }
  for (const [k, v] of b) {
    if (!a.has(k) || a.get(k) !== v) added.push(formatElement(k, v));
  }
  return { removed, added };
}

function chunked(verb: string, name: string, elems: string[]): string[] {
  const lines: string[] = [];
  for (let i = 0; i < elems.length; i += CHUNK)
    lines.push(`${verb} element ${TABLE} ${name} { ${elems.slice(i, i + CHUNK).join(', ')} }`);
  return lines;
}

export function renderElementDiff(a: Collections, b: Collections): string {
  const diffs = SET_NAMES.map((name) => [name, diff(a[name], b[name])] as const);
  const counters = diff(a.counters, b.counters);
  const lines: string[] = [];
  for (const [name, d] of diffs) lines.push(...chunked('delete', name, d.removed));
  for (const c of counters.removed) lines.push(`delete counter ${TABLE} ${c}`);
  for (const c of counters.added) lines.push(`add counter ${TABLE} ${c}`);
  for (const [name, d] of diffs) lines.push(...chunked('add', name, d.added));
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
