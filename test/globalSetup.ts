// One real PostgreSQL server for the whole test run: TEST_DATABASE_URL when given, else an
// embedded one in a temp folder. Each test file creates its own database (test/helpers.ts).
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { createLogger } from '../src/logger.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.TEST_DATABASE_URL) {
    project.provide('pgAdminUrl', process.env.TEST_DATABASE_URL);
    return async () => {};
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'keelson-test-pg-'));
  // mkdtemp makes the folder 0700; initdb runs as the `postgres` user and must traverse it.
  await chmod(dir, 0o755);
  const log = createLogger({ level: 'warn', format: 'json' });
  const server = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), log });
  project.provide('pgAdminUrl', server.url('postgres'));
  return async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
