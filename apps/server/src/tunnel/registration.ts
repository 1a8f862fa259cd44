// The relay's standing with the API: registration (retried with back-off until it succeeds; the
// answer's relay_id is what vpn/connected and the peer list need) and the peer list, refreshed
// every peersMs and, at most every peersMinGapMs, when an unknown key initiates.
import type { Responder } from '@pocketproxy/protocol';
import type { InternalApi, RegisterInput } from './api-client.js';
import { sleep, type TunnelLogs } from './context.js';
import type { DeviceTable } from './devices.js';
import type { Endpoint } from './transport.js';

export interface RegistrationContext extends TunnelLogs {
  readonly api: Pick<InternalApi, 'register' | 'peers'>;
  /** What the relay registers as (name, public host and key, tunnel port, push URL). */
  readonly relay: RegisterInput;
  readonly devices: DeviceTable;
  readonly responder: Pick<Responder<Endpoint>, 'removePeer'>;
  readonly intervals: { readonly peersMinGapMs: number; readonly retryMaxMs: number };
  readonly isStopped: () => boolean;
}

export interface Registration {
  /** Undefined until registered. */
  relayId(): string | undefined;
  /** Resolves once registered, or when the tunnel stops. */
  register(): Promise<void>;
  /** refreshPeers for a reason (an unknown key), unless the last fetch was under peersMinGapMs ago. */
  requestPeers(why: string): Promise<void>;
  /** Fetches the peer list (one fetch at a time); rejects when the fetch failed. */
  refreshPeers(): Promise<void>;
}

export function createRegistration(c: RegistrationContext): Registration {
  const { now, log, devLog, logLimit, devices } = c;
  let relayId: string | undefined;
  let lastPeersFetch = -Infinity;
  let peersInFlight: Promise<void> | undefined;

  async function register(): Promise<void> {
    for (let attempt = 1; !c.isStopped(); attempt++) {
      try {
        const r = await c.api.register(c.relay);
        relayId = r.relay_id;
        log.info({ relayId, attempt }, 'relay registered');
        return;
      } catch (err) {
        const wait = Math.min(c.intervals.retryMaxMs, 250 * 2 ** Math.min(attempt, 10));
        if (attempt === 1 || logLimit.allow('register', now()) !== undefined) log.warn({ err: String(err), attempt, retryMs: wait }, 'relay registration failed; retrying');
        await sleep(wait);
      }
    }
  }

  function requestPeers(why: string): Promise<void> {
    if (peersInFlight) return peersInFlight;
    if (now() - lastPeersFetch < c.intervals.peersMinGapMs) return Promise.resolve();
    log.debug({ why }, 'refreshing peer list');
    return refreshPeers();
  }

  function refreshPeers(): Promise<void> {
    if (!relayId) return Promise.resolve();
    if (peersInFlight) return peersInFlight;
    lastPeersFetch = now();
    const rid = relayId;
    peersInFlight = (async () => {
      try {
        const peers = await c.api.peers(rid);
        // Sessions of devices that left the list or got a new key go first (peer_down is reported).
        for (const id of devices.diff(peers)) c.responder.removePeer(id, now());
        for (const sk of devices.replace(peers)) if (logLimit.allow(`skip:${sk.deviceId}`, now()) !== undefined) devLog(sk.deviceId).warn({ reason: sk.reason }, 'device left out of the tunnel');
        log.debug({ peers: peers.length }, 'peer list loaded');
      } catch (err) {
        if (logLimit.allow('peers', now()) !== undefined) log.warn({ err: String(err) }, 'peer list fetch failed');
        throw err;
      } finally {
        peersInFlight = undefined;
      }
    })();
    return peersInFlight;
  }

  return { relayId: () => relayId, register, requestPeers, refreshPeers };
}
