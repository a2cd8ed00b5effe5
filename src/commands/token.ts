// `keelson token create|list|revoke`: API tokens, stored as sha-256 hashes; a new token's secret
// is printed once and never again.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { createToken, listTokens, PERMISSIONS, revokeToken, type Permission } from '../api/tokens.ts';
import type { Command } from '../cli.ts';
import { loadConfig } from '../config.ts';
import { openDatabase } from '../db/database.ts';
import { migrate } from '../db/migrate.ts';
import { createDb, type Db } from '../db/pool.ts';
import { ConfigError } from '../errors.ts';
import { createLogger } from '../logger.ts';

const USAGE = [
  'keelson token create --name <name> --permissions <p1,p2> [--project <project>]',
  '       keelson token list',
  '       keelson token revoke <name>',
  `  permissions: ${PERMISSIONS.join(', ')} (admin implies all); --project limits the token to one project`,
  '  database: --database-url / DATABASE_URL, else the embedded PostgreSQL under --data-dir / KEELSON_DATA_DIR',
].join('\n');

async function withDb<T>(values: { 'database-url'?: string; 'data-dir'?: string }, work: (db: Db) => Promise<T>): Promise<T> {
  const config = loadConfig(process.env, { 'log-level': 'warn', ...values });
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  const database = await openDatabase(config, log);
  try {
    await migrate(database.url);
    const db = await createDb(database.url, { maxPoolSize: 2 });
    try {
      return await work(db);
    } finally {
      await db.end();
    }
  } finally {
    await database.close();
  }
}

const actor = () => `cli:${os.userInfo().username}`;

export const tokenCommand: Command = {
  summary: 'Create, list or revoke API tokens.',
  usage: USAGE,
  run: async (argv) => {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        name: { type: 'string' },
        permissions: { type: 'string' },
        project: { type: 'string' },
        'database-url': { type: 'string' },
        'data-dir': { type: 'string' },
      },
      strict: true,
    });
    const [sub, ...rest] = positionals;
    const dbFlags = { 'database-url': values['database-url'], 'data-dir': values['data-dir'] };
    if (sub === 'create') {
      if (!values.name) throw new ConfigError(`--name is required\nUsage: ${USAGE}`);
      if (!values.permissions) throw new ConfigError(`--permissions is required (comma-separated: ${PERMISSIONS.join(', ')})`);
      const permissions = values.permissions.split(',').map((p) => p.trim()).filter(Boolean) as Permission[];
      const { token, info } = await withDb(dbFlags, (db) =>
        createToken(db, { name: values.name ?? '', permissions, project: values.project ?? null }, { actor: actor() }),
      );
      console.log(`Created token "${info.name}" (permissions: ${info.permissions.join(', ')}; project: ${info.project ?? 'all'}).`);
      console.log('Copy it now; it is shown only this once and stored only as a hash:');
      console.log('');
      console.log(token);
      return 0;
    }
    if (sub === 'list') {
      const tokens = await withDb(dbFlags, (db) => listTokens(db));
      if (tokens.length === 0) {
        console.log('No tokens. Create one with: keelson token create --name ci --permissions deploy:read,deploy:promote');
        return 0;
      }
      const rows = tokens.map((t) => [
        t.name,
        t.permissions.join(','),
        t.project ?? '*',
        t.created_at,
        t.last_used_at ?? '-',
        t.revoked_at ? `revoked ${t.revoked_at}` : 'active',
      ]);
      const header = ['NAME', 'PERMISSIONS', 'PROJECT', 'CREATED', 'LAST USED', 'STATE'];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
      for (const row of [header, ...rows]) console.log(row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
      return 0;
    }
    if (sub === 'revoke') {
      const name = rest[0] ?? values.name;
      if (!name) throw new ConfigError(`the token name is required\nUsage: ${USAGE}`);
      const revoked = await withDb(dbFlags, (db) => revokeToken(db, name, { actor: actor() }));
      if (!revoked) {
        console.error(`keelson token: no active token named "${name}" (see keelson token list)`);
        return 1;
      }
      console.log(`Revoked token "${name}".`);
      return 0;
    }
    console.error(`keelson token: expected create, list or revoke\nUsage: ${USAGE}`);
    return 2;
  },
};
