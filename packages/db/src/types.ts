/** What every query site sees: a connection or a transaction, PGlite or PostgreSQL alike. */
export interface QueryOptions {
  /** Hot statements get a name: PostgreSQL then parses and plans them once per connection, not per call. */
  name?: string;
}

export interface Queryable {
  query<T = Record<string, unknown>>(
    sql: string,
    params?: unknown[],
    opts?: QueryOptions,
  ): Promise<{ rows: T[]; rowCount: number }>;
}

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /**
   * For writes that may be lost in a crash without harm (heartbeat metrics, last-seen times): on
   * PostgreSQL they run on connections with synchronous_commit off, so they do not wait for the WAL
   * flush. Never for anything a user created or paid for.
   */
  queryRelaxed<T = Record<string, unknown>>(
    sql: string,
    params?: unknown[],
    opts?: QueryOptions,
  ): Promise<{ rows: T[]; rowCount: number }>;
  /** Runs fn in one transaction; a thrown error rolls it back. */
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /** Subscribe to NOTIFY on a channel; returns an unsubscribe function. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  notify(channel: string, payload: string): Promise<void>;
  close(): Promise<void>;
}
