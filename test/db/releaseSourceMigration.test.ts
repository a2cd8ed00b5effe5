// Migration 0013: a release records the ops repo and manifest path it rendered from. Rows
// written before it keep null (they roll back from the row's repo and path, as before), new rows
// take both, and the history names an ops repo without holding it: the repo can be deleted.
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadMigrations, migrate, MIGRATIONS_DIR } from '../../src/db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../helpers.ts';

let t: TestDatabase;

beforeAll(async () => {
  t = await createTestDatabase({ migrate: false });
});

afterAll(async () => {
  await t.drop();
});

const Source = z.object({ id: z.number(), ops_repo_id: z.string().nullable(), manifest_path: z.string().nullable() });

describe('migration 0013', () => {
  it('adds ops_repo_id and manifest_path to history: null on older rows, no hold on the ops repo', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'keelson-0013-'));
    for (const m of (await loadMigrations()).filter((m) => m.version < 13)) {
      const file = `${String(m.version).padStart(4, '0')}_${m.name}.sql`;
      await copyFile(path.join(MIGRATIONS_DIR, file), path.join(dir, file));
    }
    await migrate(t.url, { dir });
    await rm(dir, { recursive: true, force: true });

    const repo = await t.db.oneFirst(sql.type(z.object({ id: z.string() }))`
      insert into ops_repos (name, repo_url) values ('ops', 'https://git.example/ops.git') returning id`);
    const deployment = await t.db.oneFirst(sql.type(z.object({ id: z.string() }))`
      insert into deployments (project, environment, image_ref, ops_repo_id, manifest_path)
      values ('shop', 'prod', 'shop:1', ${repo}, 'shop/web') returning id`);
    const old = await t.db.oneFirst(sql.type(z.object({ id: z.number() }))`
      insert into deployment_history (deployment_id, project, environment, action_id, action, status, image_ref, sha, generation)
      values (${deployment}, 'shop', 'prod', '1-1-deploy', 'deploy', 'succeeded', 'shop:1', ${'a'.repeat(40)}, 1) returning id`);

    const applied = await migrate(t.url);
    expect(applied.applied.map((m) => m.version)).toEqual([13]);

    const before = await t.db.one(sql.type(Source)`select id, ops_repo_id::text, manifest_path from deployment_history where id = ${old}`);
    expect(before).toEqual({ id: old, ops_repo_id: null, manifest_path: null });

    const other = await t.db.oneFirst(sql.type(z.object({ id: z.string() }))`
      insert into ops_repos (name, repo_url) values ('gone', 'https://git.example/gone.git') returning id`);
    const recorded = await t.db.oneFirst(sql.type(z.object({ id: z.number() }))`
      insert into deployment_history (deployment_id, project, environment, action_id, action, status, image_ref, sha, generation, ops_repo_id, manifest_path)
      values (${deployment}, 'shop', 'prod', '2-2-deploy', 'deploy', 'succeeded', 'shop:2', ${'b'.repeat(40)}, 2, ${other}, 'shop/old') returning id`);
    // a release naming an ops repo does not keep it: history outlives ops repos
    await t.db.query(sql.unsafe`delete from ops_repos where id = ${other}`);
    const after = await t.db.one(sql.type(Source)`select id, ops_repo_id::text, manifest_path from deployment_history where id = ${recorded}`);
    expect(after).toEqual({ id: recorded, ops_repo_id: other, manifest_path: 'shop/old' });
  });
});
