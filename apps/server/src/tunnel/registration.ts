// The relay's standing with the API: registration (retried with back-off until it succeeds; the
// answer's relay_id is what vpn/connected and the peer list need) and the peer list, refreshed
// every peersMs; when an unknown key initiates, at most every peersMinGapMs (a request inside the
// gap is served at its end); and at once when the API pushes a device the list has wrong
// (`syncPeer`: paired, registered, deleted, moved, re-keyed). After each load the datapath answers
// the initiations it kept from keys that are known now (onPeersLoaded).
import type { Responder } from '@pocketproxy/protocol';
import type { InternalApi, RegisterInput } from './api-client.js';
import { sleep, type TunnelLogs } from './context.js';
import type { DeviceTable } from './devices.js';
import type { Endpoint } from './transport.js';

export interface RegistrationContext extends TunnelLogs {
  readonly api: Pick<InternalApi, 'register' | 'peers'>;
  /** After each successful load of the list (the datapath replays kept initiations). */
  readonly onPeersLoaded?: () => void;
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
  /** refreshPeers for a reason (an unknown key); inside peersMinGapMs of the last fetch, once at the gap's end. */
  requestPeers(why: string): Promise<void>;
  /**
   * Fetches the peer list (one fetch at a time); rejects when the fetch failed. `fresh`: the caller
   * knows of a change newer than a fetch already under way, so one more fetch follows it (shared).
   */
  refreshPeers(opts?: { fresh?: boolean }): Promise<void>;
  /**
   * The API pushed a change of this device: asks the API for its peer entry and, when the list has it
   * wrong (unknown, another key, PSK or vpn_ip, or deleted / moved away), refreshes the list at once
   * (fresh, bypassing the gap). Never rejects; true when the list was refreshed.
   */
  syncPeer(deviceId: string): Promise<boolean>;
}

export function createRegistration(c: RegistrationContext): Registration {
  const { now, log, devLog, logLimit, devices } = c;
  let relayId: string | undefined;
  let lastPeersFetch = -Infinity;
  let peersInFlight: Promise<void> | undefined;
  let followUp: Promise<void> | undefined;
  let deferred: NodeJS.Timeout | undefined;

  async function register(): Promise<void> {
    for (let attempt = 1; !c.isStopped(); attempt++) {
      try {
        const r = await c.api.register(c.relay);
        relayId = r.relay_id;
        log.info({ relayId, attempt }, 'relay registered');
        return;
      } catch (err) {
        const wait = Math.min(c.intervals.retryMaxMs, 250 * 2 ** Math.min(attempt, 10));
        if (attempt === 1 || logLimit.allow('register', now()) !== undefined)
          log.warn({ err: String(err), attempt, retryMs: wait }, 'relay registration failed; retrying');
        await sleep(wait);
      }
    }
  }

  function requestPeers(why: string): Promise<void> {
    if (peersInFlight) return peersInFlight;
    const wait = lastPeersFetch + c.intervals.peersMinGapMs - now();
    if (wait > 0) {
      // Not now, but not never: the initiation that asked is kept for a few seconds (datapath).
      deferred ??= setTimeout(() => {
        deferred = undefined;
        if (!c.isStopped()) void requestPeers(why).catch(() => {});
      }, wait);
      deferred.unref?.();
      return Promise.resolve();
    }
    log.debug({ why }, 'refreshing peer list');
    return refreshPeers();
  }

  function refreshPeers(opts: { fresh?: boolean } = {}): Promise<void> {
    if (!relayId) return Promise.resolve();
    if (peersInFlight) {
      if (!opts.fresh) return peersInFlight;
      // The answer under way may predate the change we were told of: one more fetch after it, for all who ask meanwhile.
      followUp ??= peersInFlight
        .catch(() => {})
        .then(() => {
          followUp = undefined;
          return refreshPeers();
        });
      return followUp;
    }
    lastPeersFetch = now();
    const rid = relayId;
    peersInFlight = (async () => {
      try {
        const peers = await c.api.peers(rid);
        // Sessions of devices that left the list or got a new key go first (peer_down is reported).
        for (const id of devices.diff(peers)) c.responder.removePeer(id, now());
        for (const sk of devices.replace(peers))
          if (logLimit.allow(`skip:${sk.deviceId}`, now()) !== undefined)
            devLog(sk.deviceId).warn({ reason: sk.reason }, 'device left out of the tunnel');
        log.debug({ peers: peers.length }, 'peer list loaded');
        c.onPeersLoaded?.();
      } catch (err) {
        if (logLimit.allow('peers', now()) !== undefined) log.warn({ err: String(err) }, 'peer list fetch failed');
        throw err;
      } finally {
        peersInFlight = undefined;
      }
    })();
    return peersInFlight;
  }

  async function syncPeer(deviceId: string): Promise<boolean> {
    const rid = relayId;
    if (!rid) return false;
    try {
      const api = (await c.api.peers(rid, deviceId)).find((p) => p.deviceId === deviceId);
      const have = devices.byId.get(deviceId);
      const same =
        api && have
          ? api.publicKey.equals(have.publicKey) && api.psk.equals(have.psk) && api.vpnIp === have.vpnIp
          : api === have;
      if (same) return false;
      devLog(deviceId).info(
        { change: !have ? 'new' : !api ? 'gone' : 'changed' },
        'device pushed: refreshing peer list',
      );
      await refreshPeers({ fresh: true });
      return true;
    } catch (err) {
      if (logLimit.allow('sync-peer', now()) !== undefined)
        log.warn(
          { err: String(err), deviceId },
          'peer check of a pushed device failed; the periodic refresh applies it',
        );
      return false;
    }
  }

  return { relayId: () => relayId, register, requestPeers, refreshPeers, syncPeer };
}
