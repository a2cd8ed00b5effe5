import { mkdtemp, writeFile, copyFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMigrations, migrate, MIGRATIONS_DIR } from '../../src/db/migrate.ts';
import { MigrationError } from '../../src/errors.ts';
import { createTestDatabase, type TestDatabase } from '../helpers.ts';

let t: TestDatabase;

beforeAll(async () => {
  t = await createTestDatabase({ migrate: false });
});

afterAll(async () => {
  await t.drop();
});

async function scalar(sql: string): Promise<unknown> {
  const client = new pg.Client({ connectionString: t.url });
  await client.connect();
  try {
    return Object.values((await client.query(sql)).rows[0] ?? {})[0];
  } finally {
    await client.end();
  }
}

describe('migrate', () => {
  it('applies every migration once, then nothing', async () => {
    const all = await loadMigrations();
    const first = await migrate(t.url);
    expect(first.applied.map((m) => m.version)).toEqual(all.map((m) => m.version));
    expect(await scalar(`select to_regclass('public.deployments')::text`)).toBe('deployments');
    const second = await migrate(t.url);
    expect(second.applied).toEqual([]);
  });

  it('runs concurrently without applying anything twice', async () => {
    const other = await createTestDatabase({ migrate: false });
    try {
      const results = await Promise.all([migrate(other.url), migrate(other.url), migrate(other.url)]);
      const total = results.reduce((n, r) => n + r.applied.length, 0);
      expect(total).toBe((await loadMigrations()).length);
    } finally {
      await other.drop();
    }
  });

  it('refuses a database that is ahead of the code', async () => {
    await scalar(`insert into keelson_migrations (version, name, checksum) values (9999, 'from_the_future', 'x') returning version`);
    await expect(migrate(t.url)).rejects.toThrow(/ahead of the code/);
    await expect(migrate(t.url)).rejects.toBeInstanceOf(MigrationError);
  });

  it('rolls back a failing migration and names it', async () => {
    const other = await createTestDatabase({ migrate: false });
    const dir = await mkdtemp(path.join(os.tmpdir(), 'keelson-migrations-'));
    try {
      for (const m of await loadMigrations()) {
        const file = `${String(m.version).padStart(4, '0')}_${m.name}.sql`;
        await copyFile(path.join(MIGRATIONS_DIR, file), path.join(dir, file));
      }
      await writeFile(path.join(dir, '9000_broken.sql'), 'create table half_done (id int); select * from no_such_table;');
      await expect(migrate(other.url, { dir })).rejects.toThrow(/9000 \(broken\) failed and was rolled back/);
      const client = new pg.Client({ connectionString: other.url });
      await client.connect();
      const { rows } = await client.query(`select to_regclass('public.half_done') as t`);
      await client.end();
      expect(rows[0].t).toBeNull();
    } finally {
      await other.drop();
    }
  });

  it('applies a migration numbered below one already applied (an old database with 0001 and 0003 gets 0002)', async () => {
    const other = await createTestDatabase({ migrate: false });
    const dir = await mkdtemp(path.join(os.tmpdir(), 'keelson-migrations-'));
    try {
      const all = await loadMigrations();
      const copy = async (keep: (version: number) => boolean) => {
        for (const m of all.filter((x) => keep(x.version))) {
          const file = `${String(m.version).padStart(4, '0')}_${m.name}.sql`;
          await copyFile(path.join(MIGRATIONS_DIR, file), path.join(dir, file));
        }
      };
      // the code of before issue #12: 0001 and 0003, no 0002
      await copy((v) => v !== 2);
      const old = await migrate(other.url, { dir });
      expect(old.applied.map((m) => m.version)).toEqual(all.filter((m) => m.version !== 2).map((m) => m.version));
      await copy((v) => v === 2);
      const upgraded = await migrate(other.url, { dir });
      expect(upgraded.applied.map((m) => m.version)).toEqual([2]);
      const client = new pg.Client({ connectionString: other.url });
      await client.connect();
      const { rows } = await client.query(`
        select column_name from information_schema.columns
        where table_name = 'deployment_leases' and column_name in ('epoch', 'incarnation') order by column_name`);
      await client.end();
      expect(rows.map((r: { column_name: string }) => r.column_name)).toEqual(['epoch', 'incarnation']);
    } finally {
      await other.drop();
    }
  });
});
