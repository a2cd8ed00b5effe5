// slonik pool with keelson's type parsers: int8 as number (our counters stay far below 2^53)
// and timestamps as ISO strings, so rows serialise to JSON unchanged.
import { createHash } from 'node:crypto';
import { createPool, SchemaValidationError, sql, type DatabasePool, type FragmentSqlToken, type Interceptor, type QuerySqlToken } from 'slonik';
import type { z } from 'zod';

export type Db = DatabasePool;

/**
 * A named prepared statement, for the statements of a wake-up's path (issue #14): PostgreSQL
 * parses, analyses and plans it once per pooled connection instead of at every execution —
 * for the journal's statement of six common table expressions that was about 1 ms of its
 * 1.5 ms on the server. The name is the text's digest: node-postgres refuses a name reused
 * for another text, and the text of a statement built from fragments varies with its parts.
 */
export function prepared<T extends z.ZodType>(parser: T, fragment: FragmentSqlToken): QuerySqlToken<T> {
  const name = `keelson_${createHash('sha1').update(fragment.sql).digest('base64url').slice(0, 20)}`;
  return sql.prepared(name, parser)`${fragment}`;
}

const isoTimestamp = (value: string | null): string | null =>
  value === null ? null : new Date(value).toISOString();

/**
 * Rows typed with `sql.type(schema)` are validated here: slonik 49 carries the schema but does
 * not apply it. A row that does not match is a programming or contract error, never data.
 */
const validateRows: Interceptor = {
  name: 'keelson.validateRows',
  transformRowAsync: async (context, query, row) => {
    const parser = context.resultParser;
    if (!parser) return row;
    const result = await parser['~standard'].validate(row);
    if (result.issues) {
      throw new SchemaValidationError(query, row as never, result.issues as never);
    }
    return result.value as typeof row;
  },
};

export async function createDb(
  url: string,
  options: { maxPoolSize?: number; statementTimeoutMs?: number; idleInTransactionTimeoutMs?: number } = {},
): Promise<Db> {
  return await createPool(url, {
    maximumPoolSize: options.maxPoolSize ?? 10,
    statementTimeout: options.statementTimeoutMs ?? 60_000,
    // A process cut from the database mid-transaction (a partition) leaves its row locks held
    // until PostgreSQL ends that session; keelson's transactions never wait on anything but the
    // database, so a short limit frees lease rows for the other replicas soon after a cut.
    idleInTransactionSessionTimeout: options.idleInTransactionTimeoutMs ?? 10_000,
    idleTimeout: 10_000,
    connectionTimeout: 10_000,
    captureStackTrace: false,
    // slonik's default runs DISCARD ALL on every release: one more statement per query or
    // transaction, on the database's CPU, for session state keelson never leaves on a pooled
    // connection (its session locks, LISTENs and settings live on connections of their own; a
    // transaction's settings end with it). Timeouts are startup parameters, which RESET keeps.
    // The one session state kept on purpose: prepared statements (prepared() above), which
    // DISCARD ALL would deallocate behind node-postgres's back.
    resetConnection: async () => {},
    interceptors: [validateRows],
    typeParsers: [
      { name: 'int8', parse: (value: string) => Number.parseInt(value, 10) },
      { name: 'numeric', parse: (value: string) => Number.parseFloat(value) },
      { name: 'timestamptz', parse: isoTimestamp },
      { name: 'timestamp', parse: isoTimestamp },
    ],
  });
}
