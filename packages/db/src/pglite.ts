// Embedded PostgreSQL (PGlite). One PGlite instance serialises its queries and does not lock its
// data dir, so we lock it ourselves (lock.ts): a second process gets PP_ERR_DB_LOCKED, never a
// corrupted database.
import { PGlite } from '@electric-sql/pglite';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { acquireDirLock } from './lock.js';
import type { Db, Queryable } from './types.js';

function wrap(q: {
  query: (sql: string, params?: unknown[]) => Promise<{ rows: unknown[]; affectedRows?: number }>;
}): Queryable {
  return {
    async query<T>(sql: string, params?: unknown[]) {
      const r = await q.query(sql, params);
      // PGlite reports affectedRows 0 for a SELECT; rowCount means "rows touched or returned" here as in pg.
      return { rows: r.rows as T[], rowCount: Math.max(r.affectedRows ?? 0, r.rows.length) };
    },
  };
}

export async function openPglite(dataDir: string | null): Promise<Db> {
  let release = () => {};
  let pg: PGlite;
  if (dataDir === null) {
    pg = new PGlite(); // in memory, for tests
  } else {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    release = acquireDirLock(dataDir);
    pg = new PGlite(join(dataDir, 'pg'));
  }
  try {
    await pg.waitReady;
  } catch (e) {
    release();
    throw e;
  }
  const base = wrap(pg);
  return {
    kind: 'pglite',
    query: base.query,
    queryRelaxed: base.query,
    tx: (fn) => pg.transaction((t) => fn(wrap(t))),
    async listen(channel, onPayload) {
      const unsub = await pg.listen(channel, onPayload);
      return async () => unsub();
    },
    async notify(channel, payload) {
      await pg.query('SELECT pg_notify($1, $2)', [channel, payload]);
    },
    async close() {
      await pg.close();
      release();
    },
  };
}
