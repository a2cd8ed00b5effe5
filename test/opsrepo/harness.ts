// A migrated database, a data dir and a manager whose log lines are captured (to prove secrets
// never reach them), for the ops repo integration tests.
import { KeelsonError } from '../../src/errors.ts';
import { expect } from 'vitest';
import { sql } from 'slonik';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../helpers.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics, type Metrics } from '../../src/metrics.ts';
import { OpsRepoRow } from '../../src/db/rows.ts';
import { createOpsRepoManager, type OpsRepoManager } from '../../src/opsrepo/opsRepoManager.ts';
import { removeDir, tempDir } from './gitFixtures.ts';

export interface Harness {
  readonly database: TestDatabase;
  readonly dataDir: string;
  readonly tmp: string;
  readonly logLines: string[];
  readonly metrics: Metrics;
  readonly manager: OpsRepoManager;
  insertRepo(row: { name: string; repo_url: string; branch?: string; path?: string; sync_interval_s?: number }): Promise<string>;
  /**
   * Drops the database's URL and branch checks (a database restored from before migration 0003,
   * or altered by hand), to prove the syncer refuses such rows on its own.
   */
  dropRowChecks(): Promise<void>;
  getRepo(id: string): Promise<OpsRepoRow>;
  /** Number of fetches/clones (outcome=fetched) recorded for a repo. */
  fetchCount(name: string): Promise<number>;
  close(): Promise<void>;
}

export async function createHarness(): Promise<Harness> {
  const database = await createTestDatabase();
  const tmp = tempDir('opsrepo');
  const dataDir = `${tmp}/data`;
  const logLines: string[] = [];
  const log = createLogger({ level: 'debug', format: 'json', destination: { write: (line: string) => void logLines.push(line) } });
  const metrics = createMetrics();
  const manager = createOpsRepoManager({ db: database.db, dataDir, log, metrics, gitTimeoutMs: 20_000, allowFileRepos: true });
  return {
    database,
    dataDir,
    tmp,
    logLines,
    metrics,
    manager,
    async insertRepo(row) {
      return await database.db.oneFirst(sql.type(z.object({ id: z.string() }))`
        insert into ops_repos (name, repo_url, branch, path, sync_interval_s)
        values (${row.name}, ${row.repo_url}, ${row.branch ?? 'main'}, ${row.path ?? ''}, ${row.sync_interval_s ?? 0})
        returning id`);
    },
    async dropRowChecks() {
      await database.db.query(sql.unsafe`
        alter table ops_repos drop constraint if exists ops_repos_repo_url_safe, drop constraint if exists ops_repos_branch_ref_format`);
    },
    async getRepo(id) {
      return await database.db.one(sql.type(OpsRepoRow)`
        select id, name, repo_url, branch, path, sync_interval_s, last_synced_at, last_sha, last_error, created_at, updated_at
        from ops_repos where id = ${id}`);
    },
    async fetchCount(name) {
      const metric = await metrics.gitSyncs.get();
      return metric.values.find((v) => v.labels.repo === name && v.labels.outcome === 'fetched')?.value ?? 0;
    },
    async close() {
      await database.drop();
      removeDir(tmp);
    },
  };
}

/** The classified error a promise rejects with; fails the test when it resolves instead. */
export async function rejection(promise: Promise<unknown>): Promise<KeelsonError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(KeelsonError);
    return error as KeelsonError;
  }
  throw new Error('expected the promise to reject');
}
