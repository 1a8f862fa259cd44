import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import type { Db } from './types.js';
import { dbError } from './errors.js';

// Found through the package, not import.meta.url, so it also works from the bundled binaries.
export const MIGRATIONS_DIR = join(
  dirname(createRequire(import.meta.url).resolve('@pocketproxy/db/package.json')),
  'migrations',
);

export interface Migration {
  version: string;
  sql: string;
}

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: f.replace(/\.sql$/, ''), sql: readFileSync(join(dir, f), 'utf8') }));
}

/** Applies pending migrations in order, each in its own transaction, under an advisory lock so two
 * instances starting together do not race. Returns the versions applied now. */
export async function migrate(db: Db, migrations = loadMigrations()): Promise<string[]> {
  await db.query(
    `CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
  );
  const applied: string[] = [];
  await db.tx(async (q) => {
    await q.query('SELECT pg_advisory_xact_lock(7723001)');
    const done = new Set(
      (await q.query<{ version: string }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version),
    );
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      try {
        for (const stmt of splitSql(m.sql)) await q.query(stmt);
        await q.query('INSERT INTO schema_migrations (version) VALUES ($1)', [m.version]);
      } catch (e) {
        throw dbError('PP_ERR_DB_MIGRATION', { version: m.version, reason: (e as Error).message }, { cause: e });
      }
      applied.push(m.version);
    }
  });
  return applied;
}

/** Our migrations use no dollar-quoting or semicolons inside literals, so a plain split is exact. */
function splitSql(sql: string): string[] {
  return sql
    .split('\n')
    .filter((l) => !l.trim().startsWith('--'))
    .join('\n')
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean);
}
