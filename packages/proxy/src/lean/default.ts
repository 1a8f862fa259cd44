// Which socket kind the servers and the default dialer use when their options do not say:
// node:net's (false, the default) or LeanSocket. The agent passes `lean` explicitly; this switch
// lets a whole process (the package's test matrix, a bench A/B) flip every server at once.
// Likewise the handoff relay() offers a pair to when its options name none (none by default), and
// the native front (front/connection.ts) an HTTP or SOCKS5 proxy takes when its options name none, with the fd
// opener a policy dialer without openSocket / openFd then prepares with.
import type { FrontEngine } from '../front/connection.js';
import type { RelayHandoff } from './handoff.js';

let lean = false;
let handoff: RelayHandoff | undefined;

export function useHandoff(h: RelayHandoff | undefined): void {
  handoff = h;
}

export function handoffByDefault(): RelayHandoff | undefined {
  return handoff;
}

export function useLeanSockets(on: boolean): void {
  lean = on;
}

export function leanByDefault(): boolean {
  return lean;
}

export interface DefaultFront {
  readonly engine: FrontEngine;
  readonly openFd: (family: 4 | 6, localAddress: string | undefined) => number;
}

let front: DefaultFront | undefined;

export function useFront(f: DefaultFront | undefined): void {
  front = f;
}

export function frontByDefault(): DefaultFront | undefined {
  return front;
}
