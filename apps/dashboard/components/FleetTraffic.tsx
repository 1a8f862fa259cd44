'use client';
// The overview's fleet traffic chart: GET /api/usage (every connection of every device, both ways), hourly
// for 24 h or daily for 30 days; refreshed every minute (usage arrives with heartbeats, every 30 s).
import { useEffect, useState } from 'react';
import { usePolling } from '@/lib/live';
import { useResource } from '@/lib/resource';
import type { UsagePoint } from '@/lib/types';
import { UsageChart } from './UsageChart';
import { ErrorBanner, Loading } from './ui';

export function FleetTraffic() {
  const [granularity, setGranularity] = useState<'hour' | 'day'>('hour');
  const usage = useResource<{ items: UsagePoint[] }>(`/api/usage?granularity=${granularity}`);
  usePolling(usage.reload);
  useEffect(() => {
    const t = setInterval(usage.reload, 60_000);
    return () => clearInterval(t);
  }, [usage.reload]);
  return (
    <section className="section card" aria-labelledby="fleet-traffic-h">
      <div className="row" style={{ justifyContent: 'space-between' }}>
        <h2 id="fleet-traffic-h">Fleet traffic</h2>
        <fieldset className="seg" aria-label="Fleet traffic period">
          {(['hour', 'day'] as const).map((g) => (
            <button
              key={g}
              type="button"
              className="btn btn-small"
              aria-pressed={granularity === g}
              onClick={() => setGranularity(g)}
            >
              {g === 'hour' ? '24 hours' : '30 days'}
            </button>
          ))}
        </fieldset>
      </div>
      <ErrorBanner error={usage.error} onRetry={usage.reload} />
      {usage.data ? (
        <UsageChart
          key={granularity}
          points={usage.data.items}
          granularity={granularity}
          label={granularity === 'hour' ? 'All devices, last 24 hours (hourly)' : 'All devices, last 30 days (daily)'}
        />
      ) : (
        !usage.error && <Loading what="Loading fleet traffic" />
      )}
    </section>
  );
}
