// Forward-only migrations: numbered SQL files in migrations/, each applied in its own
// transaction under a session advisory lock, recorded with a checksum. A database that has
// migrations this code does not know is ahead of the code, and keelson refuses to touch it.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { MigrationError } from '../errors.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

// Any constant works; it only has to be the same in every keelson process.
const MIGRATION_LOCK_KEY = 0x6b65656c; // "keel"

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

export interface MigrationResult {
  readonly applied: readonly Migration[];
  readonly current: number;
}

export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((file) => file.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
    if (!match) {
      throw new MigrationError(`migration file ${file} is not named NNNN_name.sql`);
    }
    const sql = await readFile(path.join(dir, file), 'utf8');
    const version = Number(match[1]);
    if (migrations.at(-1)?.version === version) {
      throw new MigrationError(`two migrations share version ${version}`);
    }
    migrations.push({ version, name: match[2] ?? file, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  return migrations;
}

export async function migrate(
  databaseUrl: string,
  options: { dir?: string; onApply?: (migration: Migration) => void } = {},
): Promise<MigrationResult> {
  const migrations = await loadMigrations(options.dir);
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'keelson-migrate' });
  await client.connect().catch((cause: unknown) => {
    throw new MigrationError(`cannot connect to PostgreSQL to migrate: ${(cause as Error).message}`, cause);
  });
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await client.query(`
      create table if not exists keelson_migrations (
        version    integer primary key,
        name       text not null,
        checksum   text not null,
        applied_at timestamptz not null default now()
      )`);
    const { rows } = await client.query<{ version: number; name: string; checksum: string }>(
      'select version, name, checksum from keelson_migrations order by version',
    );
    const known = new Map(migrations.map((migration) => [migration.version, migration]));
    for (const row of rows) {
      const mine = known.get(row.version);
      if (!mine) {
        throw new MigrationError(
          `the database has migration ${row.version} (${row.name}) that this keelson does not know: ` +
            'the database is ahead of the code; run a newer keelson',
        );
      }
      if (mine.checksum !== row.checksum) {
        throw new MigrationError(
          `migration ${row.version} (${row.name}) was changed after it was applied; ` +
            'migrations are forward-only: restore the file and add a new migration instead',
        );
      }
    }
    const done = new Set(rows.map((row) => row.version));
    const applied: Migration[] = [];
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      try {
        await client.query('begin');
        await client.query(migration.sql);
        await client.query('insert into keelson_migrations (version, name, checksum) values ($1, $2, $3)', [
          migration.version,
          migration.name,
          migration.checksum,
        ]);
        await client.query('commit');
      } catch (cause) {
        await client.query('rollback').catch(() => undefined);
        throw new MigrationError(
          `migration ${migration.version} (${migration.name}) failed and was rolled back: ${(cause as Error).message}`,
          cause,
        );
      }
      applied.push(migration);
      options.onApply?.(migration);
    }
    return { applied, current: migrations.at(-1)?.version ?? 0 };
  } finally {
    await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}
