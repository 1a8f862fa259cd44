import pg from 'pg';
import type { Db, Queryable, QueryOptions } from './types.js';
import { dbError } from './errors.js';

// int8 (bigint) as JS number: our counters stay far below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

export async function openPostgres(url: string, opts: { max?: number } = {}): Promise<Db> {
  // Sessions in UTC whatever the server's default: calendar months (bandwidth limits, usage roll-ups)
  // are UTC months everywhere (the agent counts its budget against the same boundary).
  const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10, options: '-c TimeZone=UTC' });
  // Idle pooled clients that PostgreSQL terminates emit 'error' on the pool; the pool drops them.
  pool.on('error', () => {}); // idle client errors surface on the next query
  try {
    const c = await pool.connect();
    c.release();
  } catch (e) {
    await pool.end().catch(() => {});
    throw dbError('PP_ERR_DB_CONNECT', { reason: (e as Error).message }, { cause: e });
  }
  const relaxed = new pg.Pool({
    connectionString: url,
    max: Math.max(2, Math.ceil((opts.max ?? 10) / 2)),
    options: '-c synchronous_commit=off -c TimeZone=UTC',
  });
  relaxed.on('error', () => {});
  const q: Queryable = {
    async query<T>(sql: string, params?: unknown[], opts?: QueryOptions) {
      const r = await pool.query(
        opts?.name
          ? { name: opts.name, text: sql, values: params as unknown[] }
          : { text: sql, values: params as unknown[] },
      );
      return { rows: r.rows as T[], rowCount: r.rowCount ?? 0 };
    },
  };
  let listener: pg.Client | null = null;
  let closed = false;
  const handlers = new Map<string, Set<(p: string) => void>>();
  return {
    kind: 'postgres',
    query: q.query,
    async queryRelaxed<T>(sql: string, params?: unknown[], opts?: QueryOptions) {
      const r = await relaxed.query(
        opts?.name
          ? { name: opts.name, text: sql, values: params as unknown[] }
          : { text: sql, values: params as unknown[] },
      );
      return { rows: r.rows as T[], rowCount: r.rowCount ?? 0 };
    },
    async tx(fn) {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        const out = await fn({
          async query<T>(sql: string, params?: unknown[]) {
            const r = await c.query(sql, params as unknown[]);
            return { rows: r.rows as T[], rowCount: r.rowCount ?? 0 };
          },
        });
        await c.query('COMMIT');
        return out;
      } catch (e) {
        await c.query('ROLLBACK').catch(() => {});
        throw e;
      } finally {
        c.release();
      }
    },
    async listen(channel, onPayload) {
      // One dedicated connection carries every LISTEN. If PostgreSQL drops it (restart, failover,
      // pg_terminate_backend) it is re-opened and the channels re-subscribed; events in the gap are lost,
      // which the dashboard's polling fallback covers.
      const connect = async (): Promise<void> => {
        const c = new pg.Client({ connectionString: url });
        c.on('notification', (n) => {
          for (const h of handlers.get(n.channel) ?? []) h(n.payload ?? '');
        });
        c.on('error', () => {
          if (listener !== c || closed) return;
          listener = null;
          c.end().catch(() => {});
          setTimeout(() => void connect().catch(() => {}), 1000).unref();
        });
        await c.connect();
        for (const ch of handlers.keys()) await c.query(`LISTEN "${ch.replace(/"/g, '')}"`);
        listener = c;
      };
      let set = handlers.get(channel);
      if (!set) {
        set = new Set();
        handlers.set(channel, set);
        if (listener) await listener.query(`LISTEN "${channel.replace(/"/g, '')}"`);
      }
      set.add(onPayload);
      if (!listener) await connect();
      return async () => {
        set!.delete(onPayload);
      };
    },
    async notify(channel, payload) {
      await pool.query('SELECT pg_notify($1, $2)', [channel, payload]);
    },
    async close() {
      closed = true;
      await listener?.end().catch(() => {});
      await relaxed.end();
      await pool.end();
    },
  };
}
