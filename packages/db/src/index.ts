// @pocketproxy/db — the database seam: PGlite (embedded, default) or PostgreSQL (DATABASE_URL) behind
// one small interface, and the sequential SQL migrations both run. Imported by apps/server only.
import { openPglite } from './pglite.js';
import { openPostgres } from './postgres.js';
import type { Db } from './types.js';

export type { Db, Queryable, QueryOptions } from './types.js';
export { migrate, loadMigrations, MIGRATIONS_DIR } from './migrate.js';
export { DB_ERRORS } from './errors.js';
export { acquireDirLock } from './lock.js';

/** `databaseUrl` set → PostgreSQL; otherwise PGlite in `dataDir` (null = in memory, for tests). */
export function openDb(opts: {
  databaseUrl?: string | undefined;
  dataDir: string | null;
  poolSize?: number;
}): Promise<Db> {
  return opts.databaseUrl ? openPostgres(opts.databaseUrl, { max: opts.poolSize ?? 10 }) : openPglite(opts.dataDir);
}
