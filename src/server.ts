// `keelson serve` in one function: database (config.database: DATABASE_URL or embedded),
// migrations, the cluster (config.cluster: kubeconfig, in-cluster or the simulator; cluster.ts),
// the actor runtime with the real effects, and the REST API. With everything embedded it also
// sets up the demo (demo.ts).
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { MachineConfig } from '../machines/deployment.machine.ts';
import { sql } from 'slonik';
import { z } from 'zod';
import pkg from '../package.json' with { type: 'json' };
import { createApp } from './api/app.ts';
import { answerClientError } from './api/httpErrors.ts';
import { openCluster, type ClusterOptions } from './cluster.ts';
import type { ClusterKind, Config, DatabaseKind } from './config.ts';
import { openDatabase, redactUrl } from './db/database.ts';
import { migrate } from './db/migrate.ts';
import { createDb, type Db } from './db/pool.ts';
import { setUpDemo } from './demo.ts';
import { createKubeClient } from './kube/kubeClient.ts';
import type { Logger } from './logger.ts';
import { forceBudgetMs } from './shutdown.ts';
import { createMetrics } from './metrics.ts';
import { createOpsRepoManager } from './opsrepo/opsRepoManager.ts';
import { createRenderer } from './render/renderer.ts';
import { createRolloutEffects } from './runtime/rolloutEffects.ts';
import { createGitSource } from './source/gitSource.ts';
import { createRuntime, type Runtime } from './runtime/runtime.ts';
import type { SimulatorOptions } from './sim/index.ts';
import { createRetention } from './tenancy/retention.ts';
import { createDispatcher } from './notify/dispatcher.ts';
import { BUILTIN_KUBE_EVENTS_SINK, ensureKubeEventsSink, kubernetesEventsDeliverer } from './notify/sinks/kubernetesEvents.ts';

export interface ServerOptions {
  readonly config: Config;
  readonly log: Logger;
  /** create the demo ops repo, deployment and admin token; default: when all is embedded */
  readonly demo?: boolean;
  readonly simulator?: SimulatorOptions;
  /** the statechart's timings over the configured ones (tests: a drift check in seconds) */
  readonly machineConfig?: Partial<MachineConfig>;
  /** in-cluster mode: where the service account files are (tests); see cluster.ts */
  readonly serviceAccountPrefix?: ClusterOptions['serviceAccountPrefix'];
  /**
   * The runtime cannot go on (another process took its instance id, its journal backlog is
   * over its bound): `serve` shuts down with a non-zero status. Default: log it at fatal.
   */
  readonly onFatal?: (error: Error) => void;
}

export interface RunningServer {
  readonly url: string;
  readonly db: Db;
  readonly runtime: Runtime;
  /** a fresh admin token, when the demo was set up */
  readonly adminToken?: string;
  readonly clusterUrl?: string;
  /** the embedded database's URL (its fixed local password is no secret); undefined with DATABASE_URL */
  readonly embeddedDatabaseUrl?: string;
  /** a kubeconfig for the embedded simulated cluster, for kubectl */
  readonly clusterKubeconfig?: string;
  readonly cluster: ClusterKind;
  readonly database: DatabaseKind;
  /** PostgreSQL's major version, e.g. "18" */
  readonly postgresVersion: string;
  close(): Promise<void>;
  /**
   * The last resort when `close()` overran its deadline: stops the embedded PostgreSQL (the one
   * thing that would outlive this process) without waiting for anything else.
   */
  forceStop(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { config, log } = options;
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const closer of closers.splice(0).reverse()) {
      await closer().catch((error: unknown) => log.warn({ err: (error as Error).message }, 'error during shutdown'));
    }
  };
  try {
    const database = await openDatabase(config, log);
    closers.push(database.close);
    const applied = await migrate(database.url);
    log.info({ database: redactUrl(database.url), embedded: database.embedded, applied: applied.applied.length, version: applied.current }, 'database ready');
    // a cut replica's journal transaction must not hold lease rows past its lease: half the TTL
    const db = await createDb(database.url, { maxPoolSize: 20, idleInTransactionTimeoutMs: Math.max(1000, Math.floor(config.leaseTtlMs / 2)) });
    closers.push(() => db.end());
    const postgresVersion = await db.oneFirst(sql.type(z.object({ v: z.string() }))`select split_part(current_setting('server_version'), '.', 1) as v`);
    // The API reads on a pool of its own: a thousand SSE clients or a slow report can exhaust it,
    // but never delay a journal write or a lease heartbeat of the runtime's pool.
    const apiDb = await createDb(database.url, { maxPoolSize: 8, statementTimeoutMs: 15_000 });
    closers.push(() => apiDb.end());
    const metrics = createMetrics();
    metrics.info.set({ version: pkg.version, cluster: config.cluster, database: config.database, postgres: postgresVersion }, 1);

    const cluster = await openCluster(config, log, { simulator: options.simulator, serviceAccountPrefix: options.serviceAccountPrefix });
    closers.push(cluster.close);
    // One identity for the runtime's leases and the cluster requests it makes (X-Keelson-Client).
    const instanceId = config.instanceId ?? randomUUID();
    const kube = createKubeClient({
      kubeConfig: cluster.kubeConfig,
      log: log.child({ part: 'kube' }),
      metrics,
      clientId: instanceId,
      rateLimit: { qps: config.kubeQps, burst: config.kubeBurst },
      namespaces: config.namespaces,
    });
    if (config.namespaces) log.info({ namespaces: config.namespaces }, 'namespaced mode: watching and deploying into these namespaces only (KEELSON_NAMESPACES)');
    closers.push(async () => kube.close());
    const demo = options.demo ?? (database.embedded && config.cluster === 'sim');
    // file:// repos reach any path of this host: off unless the operator says so, or for the
    // zero-setup demo (its ops repo is a local folder)
    const allowFileRepos = config.allowFileRepos ?? demo;
    const opsRepos = createOpsRepoManager({
      db,
      dataDir: config.dataDir,
      log: log.child({ part: 'opsrepo' }),
      metrics,
      allowFileRepos,
      fetchTimeoutMs: config.gitFetchTimeoutMs,
      maxRepoBytes: config.gitMaxRepoBytes,
    });
    // closed after the runtime has stopped (closers run in reverse): no render is left in flight
    const renderer = createRenderer(config.renderLimits);
    closers.push(() => renderer.close());
    const runtime = createRuntime({
      db,
      databaseUrl: database.url,
      log: log.child({ part: 'runtime' }),
      metrics,
      instanceId,
      effects: createRolloutEffects({ db, kube, source: createGitSource({ opsRepos, dataDir: config.dataDir }), renderer, log, metrics }),
      tickIntervalMs: config.tickIntervalMs,
      leaseTtlMs: config.leaseTtlMs,
      // queued journal writes get what the shutdown bound leaves after the forced stop's
      // share and a few seconds for releasing leases and closing the rest
      stopTimeoutMs: Math.max(1000, config.shutdownTimeoutMs - forceBudgetMs(config.shutdownTimeoutMs) - 4000),
      onFatal: options.onFatal ?? ((error) => log.fatal({ err: error.message }, 'the runtime cannot go on')),
      maxConcurrentRollouts: config.maxConcurrentRollouts,
      machineConfig: { verifyTimeoutMs: config.verifyTimeoutMs, degradedGraceMs: config.degradedGraceMs, ...options.machineConfig },
      watchHealth: (id, inventory, listener) => kube.subscribeHealth(id, inventory, listener),
    });
    const api = createApp({
      db: apiDb,
      databaseUrl: database.url,
      log: log.child({ part: 'api' }),
      metrics,
      runtime,
      kube,
      opsRepos,
      trustProxy: config.trustProxy,
      mode: { cluster: config.cluster, database: config.database },
      allowFileRepos,
      streamLimits: { perToken: config.sseMaxPerToken, total: config.sseMax },
      idempotencyTtlMs: config.idempotencyTtlMs,
      renderLimits: config.renderLimits,
    });
    closers.push(() => api.close());
    const retention = createRetention({
      db,
      log: log.child({ part: 'retention' }),
      periods: { idempotencyMs: config.idempotencyTtlMs, auditMs: config.retainAuditMs, transitionsMs: config.retainTransitionsMs },
    });

    const adminToken = demo ? await setUpDemo({ db, dataDir: config.dataDir, log }) : undefined;

    // Kubernetes Events on the deployed workloads, delivered like any sink (src/notify/sinks/kubernetesEvents.ts)
    if (await ensureKubeEventsSink(apiDb)) log.info({ sink: BUILTIN_KUBE_EVENTS_SINK.name }, 'created the built-in kubernetes-events notification sink');
    // every replica runs one: deliveries are claimed with SKIP LOCKED (src/notify/dispatcher.ts);
    // on the API's pool, so a burst of deliveries never queues before a journal write
    const dispatcher = createDispatcher({
      db: apiDb,
      databaseUrl: database.url,
      log: log.child({ part: 'notify' }),
      metrics,
      instanceId,
      retry: { horizonMs: config.notifyHorizonMs },
      concurrency: config.notifyConcurrency,
      requestTimeoutMs: config.notifyTimeoutMs,
      publicUrl: config.publicUrl ?? null,
      deliverers: { 'kubernetes-events': kubernetesEventsDeliverer({ kube, reportingInstance: instanceId }) },
    });

    await runtime.start();
    closers.push(() => runtime.stop());
    await dispatcher.start();
    // stopped before the runtime (closers run in reverse); waits for requests in flight
    closers.push(() => dispatcher.stop());
    retention.start();
    closers.push(() => retention.stop());
    const server: Server = await new Promise((resolve, reject) => {
      const s = api.app.listen(config.port, config.host, () => resolve(s));
      s.once('error', reject);
      s.on('clientError', answerClientError);
    });
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          // SSE streams never end by themselves
          server.closeAllConnections();
        }),
    );
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
    log.info({ url }, 'keelson is serving');
    return {
      url,
      db,
      runtime,
      adminToken,
      clusterUrl: cluster.server,
      clusterKubeconfig: cluster.kubeconfigFile,
      embeddedDatabaseUrl: database.embedded ? database.url : undefined,
      cluster: config.cluster,
      database: config.database,
      postgresVersion,
      close,
      forceStop: database.close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
