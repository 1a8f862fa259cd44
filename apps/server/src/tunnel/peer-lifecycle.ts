// Device sessions coming and going, and what the API is told. Connecting is two-phase: peer_up
// sends the device its config at once, but its ports are forwarded only after vpn/connected
// answered (retried with back-off from tick); peer_down closes the ports at once and reports
// vpn/disconnected. Each device's API calls run on its own chain, in order, and an answer that
// arrives for an older up period (e.gen) is ignored.
import type { InternalApi } from './api-client.js';
import type { PendingCommands } from './commands.js';
import { sleep, type TunnelLogs } from './context.js';
import type { DeviceEntry, DeviceTable } from './devices.js';
import type { FirewallSync } from './firewall-sync.js';
import type { Messages } from './messages.js';
import { describeEndpoint, type Endpoint } from './transport.js';

export interface PeerLifecycleContext extends TunnelLogs {
  readonly devices: DeviceTable;
  readonly api: Pick<InternalApi, 'connected' | 'disconnected'>;
  readonly messages: Pick<Messages, 'sendConfig' | 'sendCredentials'>;
  readonly forwarding: Pick<FirewallSync, 'setForwarding' | 'clearForwarding' | 'syncFirewall' | 'nextSeq'>;
  readonly commands: Pick<PendingCommands, 'forgetDevice'>;
  /** vpn/connected needs it; a device that came up before registration is reported from tick. */
  readonly relayId: () => string | undefined;
  readonly retryMaxMs: number;
  readonly isStopped: () => boolean;
}

export interface PeerLifecycle {
  onPeerUp(id: string, endpoint: Endpoint): void;
  onPeerDown(id: string, reason: string, silentMs: number): void;
  /** Reports vpn/connected for up devices not yet reported whose back-off has passed (from tick). */
  reportDue(t: number): void;
}

export function createPeerLifecycle(c: PeerLifecycleContext): PeerLifecycle {
  const { now, devLog, devices, messages, forwarding } = c;

  /** Starts a new up or down period: an API answer still under way for the old one sees another gen. */
  function newPeriod(id: string, up: boolean, endpoint: Endpoint | undefined): DeviceEntry | undefined {
    const e = devices.byId.get(id);
    if (!e) return undefined;
    e.up = up;
    e.gen++;
    // A new up period measures its link afresh (its first handshake decides at once; firewall-sync.ts noteRtt).
    e.far = false;
    e.farChangedAt = undefined;
    e.endpoint = endpoint;
    e.reported = false;
    e.reporting = false;
    return e;
  }

  function onPeerUp(id: string, endpoint: Endpoint): void {
    const e = newPeriod(id, true, endpoint);
    if (!e) return;
    e.reportFailures = 0;
    e.nextReportAt = 0;
    devLog(e).info({ endpoint: describeEndpoint(endpoint), vpnIp: e.vpnIp }, 'device connected');
    messages.sendConfig(e);
    reportConnected(e);
  }

  function onPeerDown(id: string, reason: string, silentMs: number): void {
    const e = newPeriod(id, false, undefined);
    if (!e) return;
    e.warmUntil = 0;
    forwarding.clearForwarding(e);
    c.commands.forgetDevice(id);
    devLog(e).info({ reason, silentMs }, 'device disconnected');
    void forwarding.syncFirewall();
    e.chain = e.chain.then(() => reportDisconnected(id, reason));
  }

  async function reportDisconnected(id: string, reason: string): Promise<void> {
    for (let attempt = 1; attempt <= 3 && !c.isStopped(); attempt++) {
      try {
        await c.api.disconnected({ device_id: id, reason });
        return;
      } catch (err) {
        devLog(id).warn({ err: String(err), attempt }, 'vpn/disconnected failed');
        await sleep(500 * attempt);
      }
    }
  }

  function reportConnected(e: DeviceEntry): void {
    const rid = c.relayId();
    if (!rid || e.reporting) return;
    e.reporting = true;
    const gen = e.gen;
    e.chain = e.chain.then(async () => {
      if (e.gen !== gen || !e.up || c.isStopped()) return;
      try {
        const seq = forwarding.nextSeq();
        const ans = await c.api.connected({
          device_id: e.id,
          vpn_ip: e.vpnIp,
          relay_id: rid,
          endpoint: e.endpoint ? describeEndpoint(e.endpoint).slice(0, 80) : '',
        });
        // Went down (or down and up) meanwhile: this answer is stale; the newer period reports itself.
        if (e.gen !== gen || !e.up) return;
        if (ans.vpn_ip !== e.vpnIp) {
          const ok = devices.readdress(e, ans.vpn_ip);
          devLog(e).warn(
            { peers: e.vpnIp, api: ans.vpn_ip, followed: ok },
            'API answered another vpn_ip than the peer list',
          );
          if (ok) messages.sendConfig(e);
        }
        e.reported = true;
        e.reportFailures = 0;
        e.warmUntil = 0;
        forwarding.setForwarding(e, ans, seq);
        messages.sendCredentials(e, ans.credentials);
        devLog(e).info({ connections: ans.connections.length, ports: e.ports.length }, 'connection ports forwarded');
        await forwarding.syncFirewall();
      } catch (err) {
        e.reportFailures++;
        e.nextReportAt = now() + Math.min(c.retryMaxMs, 500 * 2 ** Math.min(e.reportFailures, 10));
        devLog(e).warn({ err: String(err), failures: e.reportFailures }, 'vpn/connected failed; will retry');
      } finally {
        if (e.gen === gen) e.reporting = false;
      }
    });
  }

  function reportDue(t: number): void {
    for (const e of devices.byId.values())
      if (e.up && !e.reported && !e.reporting && t >= e.nextReportAt) reportConnected(e);
  }

  return { onPeerUp, onPeerDown, reportDue };
}
