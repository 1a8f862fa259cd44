// Usage reporting: every usageMs the nftables counters of the ports whose usage is owed are read,
// turned into deltas (usage.ts) and sent to the API. Owed are the connection ports of forwarded
// devices and the ones whose forwarding changed or ended since the last report, so bytes counted
// just before a device went down are still reported.
import type { Firewall } from '@pocketproxy/netfw';
import type { DeviceForwarding, InternalApi } from './api-client.js';
import type { TunnelLogs } from './context.js';
import type { DeviceTable } from './devices.js';
import { connectionPorts } from './forwarding.js';
import { UsageMeter } from './usage.js';

export interface UsageReportContext extends Pick<TunnelLogs, 'now' | 'log' | 'logLimit'> {
  readonly devices: DeviceTable;
  readonly firewall: Pick<Firewall, 'readCounters'>;
  readonly api: Pick<InternalApi, 'usage'>;
}

export interface UsageReport {
  /** A device's forwarding changed or ended: its connection ports' usage is still owed. */
  owe(forwarding: DeviceForwarding | undefined): void;
  /** netfw rebuilt the table, so its counters restarted at zero. */
  countersReset(): void;
  reportUsage(): Promise<void>;
}

export function createUsageReport(c: UsageReportContext): UsageReport {
  const usage = new UsageMeter();
  /** Ports whose usage is owed: connection ports of forwarded devices, and ones removed since the last report. */
  const owedPorts = new Set<number>();
  let reporting = false;

  function owe(forwarding: DeviceForwarding | undefined): void {
    for (const p of forwarding ? connectionPorts(forwarding) : []) owedPorts.add(p);
  }

  async function reportUsage(): Promise<void> {
    if (reporting) return;
    reporting = true;
    try {
      const ports = new Set(owedPorts);
      for (const e of c.devices.byId.values())
        if (e.reported && e.forwarding) for (const p of connectionPorts(e.forwarding)) ports.add(p);
      if (ports.size === 0) return;
      const counters = await c.firewall.readCounters();
      const { samples, commit } = usage.deltas(counters, ports);
      if (samples.length > 0) await c.api.usage(samples);
      commit();
      owedPorts.clear();
    } catch (err) {
      if (c.logLimit.allow('usage', c.now()) !== undefined)
        c.log.warn({ err: String(err) }, 'usage report failed; carried into the next one');
    } finally {
      reporting = false;
    }
  }

  return { owe, countersReset: () => usage.reset(), reportUsage };
}
