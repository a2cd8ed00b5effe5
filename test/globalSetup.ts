// One real PostgreSQL server for the whole test run (test/pg/providers.ts: embedded by default,
// TEST_DATABASE_URL, KEELSON_TEST_PG=system:15 or testcontainers). Each test file creates its
// own database (test/helpers.ts).
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startTestPostgres } from './pg/providers.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startTestPostgres();
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  const version = (await client.query<{ server_version: string }>('show server_version')).rows[0]?.server_version;
  await client.end();
  console.log(`test database: PostgreSQL ${version} (${server.provider})`);
  project.provide('pgAdminUrl', server.url);
  return server.stop;
}
