// `keelson serve` in one function: database (embedded unless DATABASE_URL), migrations, the
// cluster (the simulator unless KUBECONFIG), the actor runtime with the real effects, and the
// REST API. With everything embedded it also sets up the demo (demo.ts).
import type { Server } from 'node:http';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { createApp } from './api/app.ts';
import type { Config } from './config.ts';
import { openDatabase, redactUrl } from './db/database.ts';
import { migrate } from './db/migrate.ts';
import { createDb, type Db } from './db/pool.ts';
import { setUpDemo } from './demo.ts';
import { createKubeClient, loadKubeConfig } from './kube/kubeClient.ts';
import type { Logger } from './logger.ts';
import { createMetrics } from './metrics.ts';
import { createOpsRepoManager } from './opsrepo/opsRepoManager.ts';
import { createRenderer } from './render/renderer.ts';
import { createRolloutEffects } from './runtime/rolloutEffects.ts';
import { createRuntime, type Runtime } from './runtime/runtime.ts';
import { startSimulator, type SimulatorOptions } from './sim/index.ts';

export interface ServerOptions {
  readonly config: Config;
  readonly log: Logger;
  /** create the demo ops repo, deployment and admin token; default: when all is embedded */
  readonly demo?: boolean;
  readonly simulator?: SimulatorOptions;
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
  close(): Promise<void>;
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
    const db = await createDb(database.url, { maxPoolSize: 20 });
    closers.push(() => db.end());
    const metrics = createMetrics();

    let kubeConfig: KubeConfig;
    let clusterUrl: string | undefined;
    let clusterKubeconfig: string | undefined;
    if (config.kubeconfig) {
      kubeConfig = loadKubeConfig(config.kubeconfig);
      log.info({ cluster: kubeConfig.getCurrentCluster()?.server, context: kubeConfig.getCurrentContext() }, 'using the cluster of KUBECONFIG');
    } else {
      const simulator = await startSimulator({ log: log.child({ part: 'sim' }), ...options.simulator });
      closers.push(() => simulator.close());
      kubeConfig = new KubeConfig();
      kubeConfig.loadFromString(simulator.kubeconfigYaml());
      clusterUrl = simulator.url;
      clusterKubeconfig = path.join(config.dataDir, 'sim.kubeconfig');
      await mkdir(config.dataDir, { recursive: true });
      await simulator.writeKubeconfig(clusterKubeconfig);
      log.info({ cluster: simulator.url }, 'KUBECONFIG is unset: using the embedded simulated cluster');
    }
    const kube = createKubeClient({ kubeConfig, log: log.child({ part: 'kube' }), metrics });
    const opsRepos = createOpsRepoManager({ db, dataDir: config.dataDir, log: log.child({ part: 'opsrepo' }), metrics });
    // closed after the runtime has stopped (closers run in reverse): no render is left in flight
    const renderer = createRenderer(config.renderLimits);
    closers.push(() => renderer.close());
    const runtime = createRuntime({
      db,
      databaseUrl: database.url,
      log: log.child({ part: 'runtime' }),
      metrics,
      effects: createRolloutEffects({ db, kube, opsRepos, renderer, log }),
      tickIntervalMs: config.tickIntervalMs,
      maxConcurrentRollouts: config.maxConcurrentRollouts,
      machineConfig: { verifyTimeoutMs: config.verifyTimeoutMs },
    });
    const api = createApp({ db, databaseUrl: database.url, log: log.child({ part: 'api' }), metrics, runtime, kube, opsRepos, trustProxy: config.trustProxy });
    closers.push(() => api.close());

    const demo = options.demo ?? (database.embedded && !config.kubeconfig);
    const adminToken = demo ? await setUpDemo({ db, dataDir: config.dataDir, log }) : undefined;

    await runtime.start();
    closers.push(() => runtime.stop());
    const server: Server = await new Promise((resolve, reject) => {
      const s = api.app.listen(config.port, config.host, () => resolve(s));
      s.once('error', reject);
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
    return { url, db, runtime, adminToken, clusterUrl, clusterKubeconfig, embeddedDatabaseUrl: database.embedded ? database.url : undefined, close };
  } catch (error) {
    await close();
    throw error;
  }
}
