// Upgrading an existing database to the tenancy migration: rows that break the new rules do not
// fail it (those constraints stay NOT VALID and are reported, while new rows are checked at once),
// a clean database ends with every constraint validated, and projects whose deployments already
// used namespaces or manifest paths outside the defaults get a policy row admitting them.
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, MIGRATIONS_DIR } from '../../src/db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../helpers.ts';

let before: string;
const databases: TestDatabase[] = [];

beforeAll(async () => {
  // the migrations before this one, as an existing installation has them
  before = await mkdtemp(path.join(os.tmpdir(), 'keelson-migrations-'));
  for (const file of await readdir(MIGRATIONS_DIR)) {
    if (file.endsWith('.sql') && file < '0003') await copyFile(path.join(MIGRATIONS_DIR, file), path.join(before, file));
  }
});

afterAll(async () => {
  for (const t of databases) await t.drop();
  await rm(before, { recursive: true, force: true });
});

async function oldDatabase(): Promise<{ t: TestDatabase; client: pg.Client }> {
  const t = await createTestDatabase({ migrate: false });
  databases.push(t);
  await migrate(t.url, { dir: before });
  const client = new pg.Client({ connectionString: t.url });
  await client.connect();
  return { t, client };
}

const unvalidated = async (client: pg.Client) =>
  (await client.query('select conname from pg_constraint where not convalidated order by conname')).rows.map((r) => r.conname as string);

describe('migration 0003 on an existing database', () => {
  it('keeps rows that break the new rules, reports their constraints as NOT VALID, and checks new rows at once', async () => {
    const { t, client } = await oldDatabase();
    try {
      await client.query(`insert into deployments (project, environment, image_ref, manifest_path) values ('shop', 'prod', 'registry.example/shöp:1', '../escape')`);
      await client.query(`insert into ops_repos (name, repo_url, branch) values ('legacy', 'ext::sh -c id', 'a..b')`);
      await client.end();
      const { applied } = await migrate(t.url);
      expect(applied.map((m) => m.name)).toContain('tenancy');

      const after = new pg.Client({ connectionString: t.url });
      await after.connect();
      try {
        expect(await unvalidated(after)).toEqual([
          'deployments_image_ref_printable',
          'deployments_manifest_path_confined',
          'ops_repos_branch_ref_format',
          'ops_repos_repo_url_safe',
        ]);
        // the old rows are still there, nothing lost
        expect((await after.query('select image_ref, manifest_path from deployments')).rows).toEqual([{ image_ref: 'registry.example/shöp:1', manifest_path: '../escape' }]);
        expect((await after.query('select repo_url from ops_repos')).rows).toEqual([{ repo_url: 'ext::sh -c id' }]);
        // a new row breaking the same rule is refused, naming the constraint
        await expect(after.query(`insert into deployments (project, environment, image_ref) values ('blog', 'prod', 'registry.example/blög:1')`)).rejects.toMatchObject({
          constraint: 'deployments_image_ref_printable',
        });
        // once the old rows are fixed, the constraint validates as the warning says
        await after.query(`update deployments set image_ref = 'registry.example/shop:1', manifest_path = 'shop'`);
        await after.query('alter table deployments validate constraint deployments_image_ref_printable, validate constraint deployments_manifest_path_confined');
        expect(await unvalidated(after)).toEqual(['ops_repos_branch_ref_format', 'ops_repos_repo_url_safe']);
      } finally {
        await after.end();
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  });

  it('validates every constraint on a clean database, and admits what existing deployments already use', async () => {
    const { t, client } = await oldDatabase();
    await client.query(`
      insert into deployments (project, environment, image_ref, namespace, manifest_path) values
        ('shop', 'prod', 'x:1', null, null),
        ('shop', 'qa', 'x:1', 'qa-shared', 'web'),
        ('blog', 'prod', 'x:1', 'blog-prod', 'blog/site'),
        ('api', 'prod', 'x:1', null, 'web')`);
    await client.end();
    await migrate(t.url);
    const after = new pg.Client({ connectionString: t.url });
    await after.connect();
    try {
      expect(await unvalidated(after)).toEqual([]);
      const { rows } = await after.query('select name, namespaces, manifest_paths, source_repos, description from projects order by name');
      // blog stays within the defaults: no row; shop and api get rows admitting what they use
      expect(rows).toEqual([
        { name: 'api', namespaces: ['api-*'], manifest_paths: ['api', 'api/**', 'web'], source_repos: null, description: expect.stringMatching(/^Created by migration 0003/) },
        { name: 'shop', namespaces: ['shop-*', 'qa-shared'], manifest_paths: ['shop', 'shop/**', 'web'], source_repos: null, description: expect.stringMatching(/^Created by migration 0003/) },
      ]);
    } finally {
      await after.end();
    }
  });
});
