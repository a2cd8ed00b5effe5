// Shared test helpers: a fresh migrated database per test file, and condition waits instead of
// fixed sleeps.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { migrate } from '../src/db/migrate.ts';
import { createDb, type Db } from '../src/db/pool.ts';

export interface TestDatabase {
  readonly url: string;
  readonly name: string;
  readonly db: Db;
  readonly drop: () => Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** Creates and migrates a database of its own; call `drop()` in afterAll. */
export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const adminUrl = inject('pgAdminUrl');
  const name = `keelson_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(adminUrl, name);
  if (options.migrate !== false) await migrate(url);
  const db = await createDb(url);
  return {
    url,
    name,
    db,
    drop: async () => {
      await db.end();
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`drop database if exists ${name} with (force)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** A fresh database and one plain `pg` client on it (for raw SQL and its error fields); `close()` in afterAll. */
export async function createTestDatabaseClient(): Promise<{ t: TestDatabase; client: pg.Client; close: () => Promise<void> }> {
  const t = await createTestDatabase();
  const client = new pg.Client({ connectionString: t.url });
  await client.connect();
  return {
    t,
    client,
    close: async () => {
      await client.end();
      await t.drop();
    },
  };
}

/** Polls `condition` until it returns a truthy value (which is returned), or fails with `message`. */
export async function sleepUntil<T>(
  condition: () => T | Promise<T>,
  options: { timeoutMs?: number; intervalMs?: number; message?: string } = {},
): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const reason = lastError ? ` (last error: ${(lastError as Error).message})` : '';
      throw new Error(`sleepUntil timed out after ${timeoutMs} ms: ${options.message ?? 'condition not met'}${reason}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
