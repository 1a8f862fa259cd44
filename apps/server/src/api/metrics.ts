// Prometheus metrics at /metrics. Fleet gauges are read from the database when scraped.
import client from 'prom-client';
import type { Ctx } from '../context.js';

export function createMetrics(ctx: Ctx) {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'pocketproxy_' });
  const http = new client.Histogram({
    name: 'pocketproxy_http_request_duration_seconds',
    help: 'API request duration',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  });
  const heartbeats = new client.Counter({
    name: 'pocketproxy_heartbeats_total',
    help: 'Device heartbeats received',
    registers: [registry],
  });
  const wsClients = new client.Gauge({
    name: 'pocketproxy_ws_clients',
    help: 'Connected dashboard WebSockets',
    registers: [registry],
  });
  new client.Gauge({
    name: 'pocketproxy_devices',
    help: 'Devices by status',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const r = await ctx.db.query<{ status: string; n: number }>(
        'SELECT status, count(*)::int AS n FROM devices GROUP BY status',
      );
      this.reset();
      for (const s of ['online', 'offline']) this.set({ status: s }, r.rows.find((x) => x.status === s)?.n ?? 0);
    },
  });
  new client.Gauge({
    name: 'pocketproxy_commands_open',
    help: 'Commands not yet finished',
    registers: [registry],
    async collect() {
      const r = await ctx.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM commands WHERE status IN ('pending','sent','acked')`,
      );
      this.set(r.rows[0]!.n);
    },
  });
  return { registry, http, heartbeats, wsClients };
}
