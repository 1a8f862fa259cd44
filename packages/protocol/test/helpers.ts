// Shared fixtures: a relay, a device, a PSK, and both state machines wired with a fake clock.
import { createHash } from 'node:crypto';
import {
  createInitiator,
  createResponder,
  generateKeyPair,
  generatePsk,
  type InitiatorEvent,
  type ResponderEvent,
  type TunnelTimers,
} from '../src/index.js';

/** Deterministic bytes from a seed (SHA-256 counter mode): reproducible indices and ephemerals. */
export function seededRandom(seed: string) {
  let n = 0;
  return (len: number): Buffer => {
    const out = Buffer.alloc(len);
    for (let o = 0; o < len; o += 32) createHash('sha256').update(`${seed}/${n++}`).digest().copy(out, o);
    return out;
  };
}

export function pair(opts: { timers?: Partial<TunnelTimers>; psk?: Buffer; devicePsk?: Buffer } = {}) {
  const relay = generateKeyPair();
  const device = generateKeyPair();
  const psk = opts.psk ?? generatePsk();
  const rEvents: ResponderEvent<string>[] = [];
  const iEvents: InitiatorEvent[] = [];
  const responder = createResponder<string>({
    privateKey: relay.privateKey,
    lookupPeer: (k) => (k.equals(device.publicKey) ? { deviceId: 'dev_1', psk } : undefined),
    timers: opts.timers,
    onEvent: (e) => rEvents.push(e),
  });
  const initiator = createInitiator({
    privateKey: device.privateKey,
    responderPublicKey: relay.publicKey,
    psk: opts.devicePsk ?? psk,
    timers: opts.timers,
    onEvent: (e) => iEvents.push(e),
  });
  return { relay, device, psk, responder, initiator, rEvents, iEvents };
}

/** Runs the handshake at `now`; returns the confirming frame already delivered to the responder. */
export function connect(p: ReturnType<typeof pair>, now: number, endpoint = '198.51.100.7:40000') {
  const [init] = p.initiator.tick(now);
  if (!init) throw new Error('initiator sent nothing');
  const rep = p.responder.receive(init, endpoint, now);
  if (rep.kind !== 'reply') throw new Error(`responder: ${JSON.stringify(rep)}`);
  const est = p.initiator.receive(rep.frame, now);
  if (est.kind !== 'established') throw new Error(`initiator: ${JSON.stringify(est)}`);
  for (const f of est.send) p.responder.receive(f, endpoint, now);
  return est;
}

export function ipv4(len = 60, fill = 0): Buffer {
  const b = Buffer.alloc(len, fill);
  b[0] = 0x45;
  return b;
}
