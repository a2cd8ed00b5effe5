// Shared helpers of the end-to-end suite: real PostgreSQL, a real git ops repo in a temp dir, the
// simulated Kubernetes API server, and a runtime wired with the real effects (as `keelson serve`
// wires it in src/server.ts). Deployment rows are written with plain SQL, as a pipeline does.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { sql } from 'slonik';
import { z } from 'zod';
import type { MachineConfig } from '../../machines/deployment.machine.ts';
import type { Db } from '../../src/db/pool.ts';
import { DeploymentRow, HistoryRow } from '../../src/db/rows.ts';
import { createKubeClient, type KubeClient } from '../../src/kube/kubeClient.ts';
import { DEPLOYMENT_LABEL, MANAGED_BY_LABEL } from '../../src/kube/types.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics, type Metrics } from '../../src/metrics.ts';
import { createOpsRepoManager } from '../../src/opsrepo/opsRepoManager.ts';
import { createRenderer } from '../../src/render/renderer.ts';
import { createRolloutEffects } from '../../src/runtime/rolloutEffects.ts';
import { createGitSource } from '../../src/source/gitSource.ts';
import type { Source } from '../../src/source/source.ts';
import { createRuntime, type Runtime } from '../../src/runtime/runtime.ts';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/sim/index.ts';
import { typeOf } from '../../src/sim/resources.ts';
import type { KObject } from '../../src/sim/store.ts';
import { createTestDatabase, sleepUntil, type TestDatabase } from '../helpers.ts';
import { spawnRuntime, type RuntimeProcess } from '../runtime/support.ts';

const run = promisify(execFile);

export { DEPLOYMENT_LABEL, MANAGED_BY_LABEL };

/** Fast simulated time: a 1 s simulated pod start-up takes 20 ms. */
export const FAST_SIM: SimulatorOptions = { timeScale: 50, podStartupDelayMs: 1000 };

export const log = createLogger({ level: process.env.E2E_LOG_LEVEL ?? 'silent', format: 'json' });

export interface RuntimeWiring {
  readonly machineConfig?: Partial<MachineConfig>;
  readonly tickIntervalMs?: number;
  readonly failFastGraceMs?: number;
  readonly leaseTtlMs?: number;
  /** a hook around the ops repo source (e.g. to push a commit between sync and render) */
  readonly wrapSource?: (source: Source) => Source;
}

export interface E2e {
  readonly t: TestDatabase;
  readonly db: Db;
  readonly sim: Simulator;
  /** a temp dir of this test file: ops repos, checkouts, kubeconfigs */
  readonly dir: string;
  readonly runtime: Runtime | undefined;
  /** the figures of the runtime's effects (drift checks) */
  readonly metrics: Metrics;
  /** statements the runtime's effects sent to the database so far (a count kept around the real pool) */
  effectStatements(): number;
  /** starts a runtime in this process with the real effects (one at a time) */
  startRuntime(wiring?: RuntimeWiring): Promise<Runtime>;
  stop(): Promise<void>;
}

const POOL_METHODS = new Set(['any', 'anyFirst', 'exists', 'many', 'manyFirst', 'maybeOne', 'maybeOneFirst', 'one', 'oneFirst', 'query', 'transaction', 'connect']);

/** The real pool, counting the statements (a transaction as one) sent through it. */
function countingDb(db: Db): { readonly db: Db; readonly count: () => number } {
  let count = 0;
  const counted = new Proxy(db, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof property !== 'string' || !POOL_METHODS.has(property) || typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        count += 1;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { db: counted, count: () => count };
}

/** One database, one simulator and one temp dir per test file; `stop()` in afterAll. */
export async function startE2e(options: { sim?: SimulatorOptions } = {}): Promise<E2e> {
  const t = await createTestDatabase();
  const sim = await startSimulator({ ...FAST_SIM, ...options.sim });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'keelson-e2e-'));
  const renderer = createRenderer();
  let runtime: Runtime | undefined;
  let kube: KubeClient | undefined;
  const metrics = createMetrics();
  const effectsDb = countingDb(t.db);
  const e2e: E2e = {
    t,
    db: t.db,
    sim,
    dir,
    metrics,
    effectStatements: effectsDb.count,
    get runtime() {
      return runtime;
    },
    async startRuntime(wiring = {}) {
      if (runtime) await runtime.stop();
      kube?.close();
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromString(sim.kubeconfigYaml());
      // one identity for the leases and the cluster requests, as serve wires it (X-Keelson-Client)
      const instanceId = randomUUID();
      kube = createKubeClient({ kubeConfig, log, requestTimeoutMs: 5_000, watchBackoffMs: 100, clientId: instanceId });
      const opsRepos = createOpsRepoManager({ db: t.db, dataDir: path.join(dir, 'data'), log, allowFileRepos: true });
      const source = createGitSource({ opsRepos, dataDir: path.join(dir, 'data') });
      runtime = createRuntime({
        db: t.db,
        databaseUrl: t.url,
        log,
        instanceId,
        effects: createRolloutEffects({ db: effectsDb.db, kube, source: wiring.wrapSource ? wiring.wrapSource(source) : source, renderer, log, failFastGraceMs: wiring.failFastGraceMs, metrics }),
        tickIntervalMs: wiring.tickIntervalMs ?? 100,
        leaseTtlMs: wiring.leaseTtlMs,
        machineConfig: { retryBaseMs: 200, retryMaxMs: 2_000, ...wiring.machineConfig },
        watchHealth: (id, inventory, listener) => kube!.subscribeHealth(id, inventory, listener),
      });
      await runtime.start();
      return runtime;
    },
    async stop() {
      await runtime?.stop();
      runtime = undefined;
      kube?.close();
      await renderer.close();
      await sim.close();
      await t.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return e2e;
}

// ---- ops repos ----

export interface OpsRepo {
  readonly id: string;
  readonly name: string;
  readonly dir: string;
  readonly url: string;
  /** writes (or, with null, deletes) files and commits them; returns the new HEAD */
  commit(files: Record<string, string | null>, message?: string): Promise<string>;
  head(): Promise<string>;
}

async function git(dir: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', ['-C', dir, ...args]);
  return stdout.trim();
}

/** A git repository in a temp dir (file:// URL), its first commit, and its `ops_repos` row. */
export async function createOpsRepo(e2e: E2e, name: string, files: Record<string, string>): Promise<OpsRepo> {
  const dir = path.join(e2e.dir, 'remotes', name);
  await mkdir(dir, { recursive: true });
  await git(dir, 'init', '-q', '-b', 'main');
  await git(dir, 'config', 'user.name', 'keelson e2e');
  await git(dir, 'config', 'user.email', 'e2e@keelson.invalid');
  const commit = async (changes: Record<string, string | null>, message = 'change'): Promise<string> => {
    for (const [file, content] of Object.entries(changes)) {
      const target = path.join(dir, file);
      if (content === null) {
        await git(dir, 'rm', '-q', file);
        continue;
      }
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, content);
      await git(dir, 'add', file);
    }
    await git(dir, 'commit', '-q', '-m', message);
    return await git(dir, 'rev-parse', 'HEAD');
  };
  await commit(files, 'initial');
  const url = `file://${dir}`;
  // every sync fetches: the drift check sees a new commit at once
  const id = await e2e.db.oneFirst(sql.type(z.object({ id: z.string() }))`
    insert into ops_repos (name, repo_url, branch, sync_interval_s) values (${name}, ${url}, 'main', 0) returning id`);
  return { id, name, dir, url, commit, head: () => git(dir, 'rev-parse', 'HEAD') };
}

/** A Deployment + Service template reading `values.replicas`, as an ops repo author writes it. */
export const WEB_TEMPLATE = `apiVersion: apps/v1
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
          ports:
            - containerPort: 8080
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

// ---- deployment rows (plain SQL, as a pipeline) ----

export interface RowInput {
  readonly project: string;
  readonly environment?: string;
  readonly image: string;
  readonly opsRepoId?: string | null;
  readonly manifestPath?: string | null;
  readonly autoRollback?: boolean;
  readonly valuesOverride?: Record<string, unknown>;
}

export async function insertRow(db: Db, input: RowInput): Promise<string> {
  if (input.manifestPath) {
    // A shared template folder (several projects render `web`) needs an admin's say-so: the
    // default project policy admits only the project's own folder (docs/security.md).
    await db.query(sql.unsafe`
      insert into projects (name, manifest_paths) values (${input.project}, ${sql.array([input.project, `${input.project}/**`, input.manifestPath], 'text')})
      on conflict (name) do update set manifest_paths = array(select distinct unnest(projects.manifest_paths || excluded.manifest_paths))`);
  }
  return await db.oneFirst(sql.type(z.object({ id: z.string() }))`
    insert into deployments (project, environment, image_ref, ops_repo_id, manifest_path, auto_rollback, values_override)
    values (${input.project}, ${input.environment ?? 'prod'}, ${input.image}, ${input.opsRepoId ?? null},
            ${input.manifestPath ?? null}, ${input.autoRollback ?? false}, ${sql.jsonb(JSON.parse(JSON.stringify(input.valuesOverride ?? {})) as never)})
    returning id`);
}

export async function row(db: Db, id: string): Promise<DeploymentRow> {
  return await db.one(sql.type(DeploymentRow)`select * from deployments where id = ${id}`);
}

export async function history(db: Db, id: string): Promise<HistoryRow[]> {
  return [...(await db.any(sql.type(HistoryRow)`select * from deployment_history where deployment_id = ${id} order by id`))];
}

export async function waitRow(
  db: Db,
  id: string,
  check: (r: DeploymentRow) => boolean,
  message: string,
  timeoutMs = 20_000,
): Promise<DeploymentRow> {
  let last: DeploymentRow | undefined;
  try {
    return await sleepUntil(async () => {
      last = await row(db, id);
      return check(last) ? last : undefined;
    }, { timeoutMs, message });
  } catch (error) {
    // the row as it was tells more than "timed out"
    throw new Error(`${(error as Error).message}; row: ${JSON.stringify(last && { s: last.current_status, g: last.generation, og: last.observed_generation, img: last.current_image_ref, err: last.last_error })}`, { cause: error });
  }
}

/** The row reached `status` for its newest generation. */
export async function waitStatus(db: Db, id: string, status: string, timeoutMs = 20_000): Promise<DeploymentRow> {
  return await waitRow(db, id, (r) => r.current_status === status && r.observed_generation === r.generation, `${id} ${status}`, timeoutMs);
}

// ---- the simulated cluster, inspected in process (never subject to faults) ----

export function simObject(sim: Simulator, kind: string, namespace: string | undefined, name: string): KObject | undefined {
  return sim.store.get(typeOf(kind), namespace, name);
}

export function simList(sim: Simulator, kind: string, namespace?: string): KObject[] {
  return sim.store.list(typeOf(kind), namespace);
}

interface DeploymentView {
  readonly image: string | undefined;
  readonly replicas: number;
  readonly readyReplicas: number;
  readonly updatedReplicas: number;
  readonly labels: Record<string, string>;
}

export function simDeployment(sim: Simulator, namespace: string, name: string): DeploymentView | undefined {
  const object = simObject(sim, 'Deployment', namespace, name);
  if (!object) return undefined;
  const spec = object.spec as { replicas?: number; template?: { spec?: { containers?: Array<{ image?: string }> } } };
  const status = (object.status ?? {}) as { readyReplicas?: number; updatedReplicas?: number };
  return {
    image: spec.template?.spec?.containers?.[0]?.image,
    replicas: spec.replicas ?? 1,
    readyReplicas: status.readyReplicas ?? 0,
    updatedReplicas: status.updatedReplicas ?? 0,
    labels: object.metadata.labels ?? {},
  };
}

interface PodView {
  readonly name: string;
  readonly image: string | undefined;
  readonly ready: boolean;
  readonly waitingReason: string | undefined;
}

/** Pods of the namespace with the given app label. */
export function simPods(sim: Simulator, namespace: string, app: string): PodView[] {
  return simList(sim, 'Pod', namespace)
    .filter((pod) => pod.metadata.labels?.['app.kubernetes.io/name'] === app)
    .map((pod) => {
      const spec = pod.spec as { containers?: Array<{ image?: string }> };
      const status = (pod.status ?? {}) as {
        conditions?: Array<{ type: string; status: string }>;
        containerStatuses?: Array<{ state?: { waiting?: { reason?: string } } }>;
      };
      return {
        name: pod.metadata.name,
        image: spec.containers?.[0]?.image,
        ready: status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
        waitingReason: status.containerStatuses?.[0]?.state?.waiting?.reason,
      };
    });
}

/** Every object of the simulator labelled with this deployment's id, in any namespace. */
export function simObjectsOf(sim: Simulator, deploymentId: string): KObject[] {
  return ['Namespace', 'ConfigMap', 'Secret', 'Service', 'Deployment', 'ReplicaSet', 'Pod', 'StatefulSet', 'Job']
    .flatMap((kind) => simList(sim, kind))
    .filter((object) => object.metadata.labels?.[DEPLOYMENT_LABEL] === deploymentId);
}

// ---- a runtime in a child process (for SIGKILL) ----

export type { RuntimeProcess };

/** The real-effects runtime of fixtures/realRuntimeProcess.ts, against the in-process simulator. */
export async function spawnRealRuntime(e2e: E2e, env: Record<string, string> = {}, options: { readyTimeoutMs?: number } = {}): Promise<RuntimeProcess> {
  const kubeconfig = path.join(e2e.dir, 'kubeconfig');
  await e2e.sim.writeKubeconfig(kubeconfig);
  const dataDir = path.join(e2e.dir, `data-${randomUUID()}`);
  // each process its own checkouts, as the opsrepo manager asks
  return await spawnRuntime(e2e.t.url, { KUBECONFIG_FILE: kubeconfig, DATA_DIR: dataDir, ...env },
    path.join(import.meta.dirname, 'fixtures', 'realRuntimeProcess.ts'), options);
}
