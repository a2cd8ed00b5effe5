// The chaos suite's world, all real: an embedded PostgreSQL the runner can stop and start, the
// simulated Kubernetes API server (in this process, so faults and the request log are at hand;
// keelson reaches it over HTTP through a kubeconfig), a git ops repo in a temp dir, and
// `keelson serve` processes (node src/main.ts serve) spawned with their own identity.
//
// Clean-up is the first duty: every process is spawned detached (its own process group) and
// killed by `-pid` at the end, on failure and on Ctrl-C; the embedded PostgreSQL has its
// reaper (src/db/reaper.ts) besides.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import pg from 'pg';
import { startEmbeddedPostgres, freePort, type EmbeddedDatabase } from '../../src/db/embedded.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createLogger } from '../../src/logger.ts';
import { startSimulator, type Simulator } from '../../src/sim/index.ts';
import { typeOf } from '../../src/sim/resources.ts';
import { startProxy, type Proxy } from './proxy.ts';

const run = promisify(execFile);
const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');
/** keelson's lease TTL (src/runtime/runtime.ts): not configurable from `keelson serve`. */
export const LEASE_TTL_MS = 10_000;

/**
 * Process groups alive right now. If the runner itself dies (an exception, Ctrl-C) they are
 * SIGKILLed from its `exit` hook: `process.kill` is synchronous, so the hook can do it.
 */
const liveGroups = new Set<number>();
process.once('exit', () => {
  for (const pid of liveGroups) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls until `condition` is truthy; resolves to it, or to undefined at the deadline. */
export async function waitFor<T>(condition: () => T | Promise<T>, timeoutMs: number, intervalMs = 100): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value;
    } catch {
      // the database may be down on purpose: keep polling
    }
    if (Date.now() > deadline) return undefined;
    await sleep(intervalMs);
  }
}

/**
 * A stable UUID for a process name. Today's `deployment_leases.instance_id` and
 * `keelson_instances.id` are uuid columns, so KEELSON_INSTANCE_ID must be a UUID there; a name
 * mapped to one UUID keeps "the same pod restarted" meaningful (and a text column accepts it).
 */
export function instanceIdFor(name: string): string {
  const h = createHash('sha256').update(`keelson-chaos:${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export interface LogLine {
  readonly level?: unknown;
  readonly msg?: unknown;
  readonly time?: unknown;
  readonly [key: string]: unknown;
}

export interface KeelsonProcess {
  readonly name: string;
  readonly instanceId: string;
  readonly pid: number;
  readonly spawnedAt: number;
  readonly child: ChildProcess;
  /** the API's URL once serving */
  url: string | undefined;
  readyAt: number | undefined;
  exitedAt: number | undefined;
  exitCode: number | null;
  readonly fatal: LogLine[];
  /** the newest lines, for failure messages */
  readonly tail: string[];
  lines: number;
  readonly exited: Promise<void>;
}

export interface Workload {
  readonly image: string | undefined;
  readonly replicas: number;
}

export interface Deployment {
  readonly id: string;
  readonly project: string;
  readonly name: string;
  readonly namespace: string;
}

const WEB_TEMPLATE = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ project }}
spec:
  replicas: {{ values.replicas }}
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ project }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {{ project }}
    spec:
      containers:
        - name: web
          image: {{ image_ref }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ project }}
spec:
  selector:
    app.kubernetes.io/name: {{ project }}
  ports:
    - port: 80
      targetPort: 8080
`;

export interface WorldOptions {
  /** where logs go (kept after the run); a temp dir holds everything else */
  readonly logDir: string;
  readonly progress: (line: string) => void;
  /** simulated ms from pod creation to Ready (time scale 1): how long a verify lasts */
  readonly podStartupDelayMs?: number;
  readonly tickInterval?: string;
  /**
   * `repo` (default): templates from the git ops repo, rendered in keelson's confined render
   * processes; `builtin`: the built-in template, rendered in process (no render processes: the
   * figures then leave out their start-up and CPU).
   */
  readonly template?: 'repo' | 'builtin';
}

export interface World {
  readonly sim: Simulator;
  readonly pool: pg.Pool;
  readonly dbUrl: string;
  readonly dbPort: number;
  readonly dir: string;
  readonly deployments: Deployment[];
  readonly processes: KeelsonProcess[];
  /** a label for an instance id or client header (the process name) */
  label(instanceId: string | undefined): string;
  createDeployments(count: number, imagePrefix?: string): Promise<Deployment[]>;
  /** `keelson serve` as `name`; `dbPort` to reach PostgreSQL through a proxy */
  spawnKeelson(name: string, options?: { dbPort?: number; identity?: 'stable' | 'fresh' }): Promise<KeelsonProcess>;
  waitReady(p: KeelsonProcess, timeoutMs?: number): Promise<void>;
  kill9(p: KeelsonProcess): Promise<void>;
  /** SIGTERM; resolves to ms until exit, or null if it had not exited after `giveUpMs` (then SIGKILL) */
  terminate(p: KeelsonProcess, giveUpMs?: number): Promise<number | null>;
  stopPostgres(): Promise<void>;
  startPostgres(): Promise<void>;
  proxy(): Promise<Proxy>;
  workload(d: Deployment): Workload | undefined;
  /** hosted actors per instance, from each live process's `keelson_deployments` gauge */
  hostedActors(): Promise<Map<string, number>>;
  close(): Promise<void>;
}

export async function createWorld(options: WorldOptions): Promise<World> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'keelson-chaos-'));
  // initdb runs as `postgres` when root: every folder above the data must be traversable
  await chmod(dir, 0o755);
  await mkdir(options.logDir, { recursive: true });
  const pgLog = createLogger({ level: 'warn', format: 'json' });
  const dataDir = path.join(dir, 'pg');
  let pgServer: EmbeddedDatabase | undefined = await startEmbeddedPostgres({ dataDir, log: pgLog, port: await freePort() });
  const dbPort = pgServer.port;
  const admin = new pg.Client({ connectionString: pgServer.url('postgres') });
  await admin.connect();
  await admin.query('create database keelson_chaos');
  await admin.end();
  const dbUrl = pgServer.url('keelson_chaos');
  await migrate(dbUrl);
  const pool = new pg.Pool({ connectionString: dbUrl, max: 4, connectionTimeoutMillis: 3000 });
  // an outage on purpose must not crash the runner through an idle client's error
  pool.on('error', () => undefined);

  const sim = await startSimulator({ timeScale: 1, podStartupDelayMs: options.podStartupDelayMs ?? 1500 });
  const kubeconfig = path.join(dir, 'kubeconfig');
  await sim.writeKubeconfig(kubeconfig);

  // the ops repo: one folder per project (the default policy admits `<project>/**`)
  const remote = path.join(dir, 'ops');
  await mkdir(remote, { recursive: true });
  const git = (...args: string[]) => run('git', ['-C', remote, ...args]);
  await git('init', '-q', '-b', 'main');
  await git('config', 'user.name', 'keelson chaos');
  await git('config', 'user.email', 'chaos@keelson.invalid');
  await writeFile(path.join(remote, 'values.yaml'), 'replicas: 1\n');
  await git('add', '.');
  await git('commit', '-q', '-m', 'values');
  const { rows: [repoRow] } = await pool.query<{ id: string }>(
    `insert into ops_repos (name, repo_url, branch, sync_interval_s) values ('chaos', $1, 'main', 60) returning id`,
    [`file://${remote}`],
  );
  const opsRepoId = repoRow!.id;

  const deployments: Deployment[] = [];
  const processes: KeelsonProcess[] = [];
  const labels = new Map<string, string>();
  const logStreams: WriteStream[] = [];
  const proxies: Proxy[] = [];
  let closed = false;

  const killGroup = (pid: number, signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal);
    } catch {
      // already gone
    }
  };

  const world: World = {
    sim,
    pool,
    dbUrl,
    dbPort,
    dir,
    deployments,
    processes,
    label: (id) => (id === undefined ? '(no client id)' : (labels.get(id) ?? id)),

    async createDeployments(count, imagePrefix = 'registry.example') {
      const created: Deployment[] = [];
      const start = deployments.length;
      for (let i = start; i < start + count; i++) {
        const project = `c${i}`;
        await mkdir(path.join(remote, project), { recursive: true });
        await writeFile(path.join(remote, project, 'deployment.yaml'), WEB_TEMPLATE);
      }
      await git('add', '.');
      await git('commit', '-q', '-m', `projects ${start}..${start + count - 1}`);
      for (let i = start; i < start + count; i++) {
        const project = `c${i}`;
        // auto_rollback: a failing image rolls back, so every row ends healthy or stopped and the
        // cluster must run exactly current_image_ref
        const { rows } = await pool.query<{ id: string }>(
          `insert into deployments (project, environment, image_ref, ops_repo_id, auto_rollback)
           values ($1, 'prod', $2, $3, true) returning id`,
          [project, `${imagePrefix}/${project}:1`, options.template === 'builtin' ? null : opsRepoId],
        );
        const d = { id: rows[0]!.id, project, name: `${project}/prod`, namespace: `${project}-prod` };
        deployments.push(d);
        created.push(d);
      }
      return created;
    },

    async spawnKeelson(name, spawnOptions = {}) {
      const identity = spawnOptions.identity ?? 'stable';
      const instanceId = identity === 'stable' ? instanceIdFor(name) : instanceIdFor(`${name}:${Date.now()}:${Math.random()}`);
      labels.set(instanceId, name);
      const url = new URL(dbUrl);
      if (spawnOptions.dbPort) url.port = String(spawnOptions.dbPort);
      const logFile = createWriteStream(path.join(options.logDir, `${name}.log`), { flags: 'a' });
      logStreams.push(logFile);
      const child = spawn(process.execPath, [path.join(REPO_ROOT, 'src', 'main.ts'), 'serve', '--no-demo'], {
        cwd: REPO_ROOT,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          DATABASE_URL: url.toString(),
          KUBECONFIG: kubeconfig,
          KEELSON_CLUSTER: 'kubeconfig',
          KEELSON_ALLOW_FILE_REPOS: 'true',
          KEELSON_INSTANCE_ID: instanceId,
          KEELSON_LOG_FORMAT: 'json',
          KEELSON_LOG_LEVEL: 'info',
          KEELSON_DATA_DIR: path.join(dir, `data-${name}`),
          KEELSON_TICK_INTERVAL: options.tickInterval ?? '10s',
          PORT: '0',
        },
      });
      const p: KeelsonProcess = {
        name,
        instanceId,
        pid: child.pid!,
        spawnedAt: Date.now(),
        child,
        url: undefined,
        readyAt: undefined,
        exitedAt: undefined,
        exitCode: null,
        fatal: [],
        tail: [],
        lines: 0,
        exited: new Promise<void>((resolve) => child.once('exit', () => resolve())),
      };
      liveGroups.add(child.pid!);
      child.once('exit', (code) => {
        liveGroups.delete(child.pid!);
        p.exitedAt = Date.now();
        p.exitCode = code;
      });
      const onLine = (line: string) => {
        logFile.write(`${line}\n`);
        p.lines++;
        p.tail.push(line);
        if (p.tail.length > 50) p.tail.shift();
        if (!line.startsWith('{')) return;
        try {
          const parsed = JSON.parse(line) as LogLine;
          if (typeof parsed.level === 'number' && parsed.level >= 60) p.fatal.push(parsed);
          if (parsed.msg === 'keelson is serving' && typeof parsed.url === 'string') {
            p.url = parsed.url;
            p.readyAt = Date.now();
          }
        } catch {
          // a line that is not JSON (a banner): kept in the log file
        }
      };
      createInterface({ input: child.stdout! }).on('line', onLine);
      createInterface({ input: child.stderr! }).on('line', onLine);
      processes.push(p);
      return p;
    },

    async waitReady(p, timeoutMs = 60_000) {
      const ok = await waitFor(() => p.readyAt !== undefined || p.exitedAt !== undefined, timeoutMs, 50);
      if (!ok || p.readyAt === undefined) {
        throw new Error(`${p.name} did not start serving within ${timeoutMs / 1000} s${p.exitedAt ? ` (exited ${p.exitCode})` : ''}:\n${p.tail.join('\n')}`);
      }
    },

    async kill9(p) {
      if (p.exitedAt === undefined) killGroup(p.pid, 'SIGKILL');
      await p.exited;
    },

    async terminate(p, giveUpMs = 30_000) {
      if (p.exitedAt !== undefined) return 0;
      const sent = Date.now();
      try {
        process.kill(p.pid, 'SIGTERM');
      } catch {
        return 0;
      }
      const done = await Promise.race([p.exited.then(() => true), sleep(giveUpMs).then(() => false)]);
      // whatever it left behind (a render process) goes with its group
      killGroup(p.pid, 'SIGKILL');
      if (!done) {
        await p.exited;
        return null;
      }
      return (p.exitedAt ?? Date.now()) - sent;
    },

    async stopPostgres() {
      await pgServer?.stop();
      pgServer = undefined;
    },

    async startPostgres() {
      if (pgServer) return;
      pgServer = await startEmbeddedPostgres({ dataDir, log: pgLog, port: dbPort });
    },

    async proxy() {
      const p = await startProxy({ host: '127.0.0.1', port: dbPort });
      proxies.push(p);
      return p;
    },

    workload(d) {
      const object = sim.store.get(typeOf('Deployment'), d.namespace, d.project);
      if (!object) return undefined;
      const spec = object.spec as { replicas?: number; template?: { spec?: { containers?: Array<{ image?: string }> } } };
      return { image: spec.template?.spec?.containers?.[0]?.image, replicas: spec.replicas ?? 1 };
    },

    async hostedActors() {
      const out = new Map<string, number>();
      for (const p of processes) {
        if (p.exitedAt !== undefined || !p.url) continue;
        const response = await fetch(`${p.url}/metrics`, { signal: AbortSignal.timeout(5000) });
        const text = await response.text();
        let n = 0;
        for (const line of text.split('\n')) {
          const m = /^keelson_deployments\{[^}]*\} (\d+)/.exec(line);
          if (m) n += Number(m[1]);
        }
        out.set(p.instanceId, n);
      }
      return out;
    },

    async close() {
      if (closed) return;
      closed = true;
      for (const p of processes) if (p.exitedAt === undefined) killGroup(p.pid, 'SIGKILL');
      await Promise.all(processes.map((p) => Promise.race([p.exited, sleep(5000)])));
      for (const proxy of proxies) await proxy.close().catch(() => undefined);
      await sim.close().catch(() => undefined);
      await pool.end().catch(() => undefined);
      await pgServer?.stop().catch(() => undefined);
      for (const s of logStreams) s.end();
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    },
  };
  return world;
}
