// Where keelson's PostgreSQL comes from (config.database): DATABASE_URL, or the embedded server
// (never inside a pod: config.ts refuses that).
import path from 'node:path';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { startEmbeddedPostgres } from './embedded.ts';

export interface DatabaseHandle {
  readonly url: string;
  readonly embedded: boolean;
  readonly close: () => Promise<void>;
}

export async function openDatabase(config: Config, log: Logger): Promise<DatabaseHandle> {
  if (config.databaseUrl) {
    return { url: config.databaseUrl, embedded: false, close: async () => {} };
  }
  const server = await startEmbeddedPostgres({ dataDir: path.join(config.dataDir, 'postgres'), log });
  const url = server.url('postgres');
  return { url, embedded: true, close: server.stop };
}

/** Passwords in PostgreSQL URLs never reach a log line. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):([^@]*)@/, '//$1:***@');
}
