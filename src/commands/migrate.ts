import { parseArgs } from 'node:util';
import type { Command } from '../cli.ts';
import { loadConfig } from '../config.ts';
import { openDatabase, redactUrl } from '../db/database.ts';
import { migrate } from '../db/migrate.ts';
import { createLogger } from '../logger.ts';

export const migrateCommand: Command = {
  summary: 'Create or upgrade the database schema (DATABASE_URL, else the embedded PostgreSQL).',
  usage: 'keelson migrate [--database-url <url>] [--data-dir <dir>]',
  run: async (argv) => {
    const { values } = parseArgs({
      args: argv,
      options: { 'database-url': { type: 'string' }, 'data-dir': { type: 'string' }, 'log-level': { type: 'string' } },
      strict: true,
    });
    const config = loadConfig(process.env, { 'log-level': 'warn', ...values });
    const log = createLogger({ level: config.logLevel, format: config.logFormat });
    const database = await openDatabase(config, log);
    try {
      const result = await migrate(database.url, {
        onApply: (migration) => console.log(`applied ${String(migration.version).padStart(4, '0')}_${migration.name}`),
      });
      console.log(
        result.applied.length === 0
          ? `schema is up to date at version ${result.current} (${redactUrl(database.url)})`
          : `applied ${result.applied.length} migration(s); schema is at version ${result.current}`,
      );
      return 0;
    } finally {
      await database.close();
    }
  },
};
