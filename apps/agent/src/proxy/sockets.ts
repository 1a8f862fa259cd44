// Which sockets the proxies use: LeanSockets (@pocketproxy/proxy lean/: Node's TCP handle without
// the stream machinery, ~100 µs of CPU less per short proxied request on the lab's VM; see
// docs/benchmarks.md "LeanSocket") unless POCKETPROXY_AGENT_SOCKETS=node asks for node:net's (an
// A/B in the bench, or a way back should a Node release change the binding), or this Node lacks
// the binding. The choice covers the customer side (the listeners) and the target side (egress).
import { leanBinding } from '@pocketproxy/proxy';

export function useLeanSockets(setting: string | undefined = process.env.POCKETPROXY_AGENT_SOCKETS): boolean {
  if (setting === 'node') return false;
  return leanBinding() !== null;
}
