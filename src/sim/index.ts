// keelson's simulated Kubernetes cluster: a real HTTP API server (kubectl 1.32 and
// @kubernetes/client-node 2.x accept it) over an in-memory store, with simulated controllers and
// kubelet, simulated time, fault injection, bearer-token authentication, optional RBAC and TLS,
// and a log of every request with its client's identity. See docs/simulator.md.
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { TerminalError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { ApiServer } from './apiserver.ts';
import { ADMIN_TOKEN, type MintOptions } from './auth/authenticator.ts';
import { bootstrapClusterRoleBindings, bootstrapClusterRoles } from './auth/bootstrap.ts';
import { SimAuth } from './auth/index.ts';
import { createTlsMaterial } from './auth/tls.ts';
import { SimClock } from './clock.ts';
import { ControllerContext } from './controllers/context.ts';
import { ControllerManager } from './controllers/manager.ts';
import { registerCustomResources } from './crd.ts';
import { DEFAULT_ERROR_CODES, initialFaults } from './faults.ts';
import { RequestLog } from './requestLog.ts';
import { ResourceRegistry, typeOf } from './resources.ts';
import { Router } from './server.ts';
import { Store } from './store.ts';

export interface SimulatorOptions {
  port?: number; // 0 or undefined = a free port; always listen on 127.0.0.1
  timeScale?: number; // simulated seconds per real second; default 1
  podStartupDelayMs?: number; // simulated ms from pod creation to Ready; default 1000
  pullFailurePatterns?: RegExp[]; // default [/doesnotexist|fail-pull|unpullable/]
  crashLoopPatterns?: RegExp[]; // default [/crashloop|crash-loop/]
  log?: Logger; // pino Logger from src/logger.ts; default silent
  /** Enforce RBAC on every request (unknown tokens get 401). Default false: everything allowed. */
  rbac?: boolean;
  /** Serve HTTPS with a CA made at start; with `dir`, also write `<dir>/ca.crt`. */
  tls?: boolean | { dir: string };
  /** How many request records the ring keeps (counters are never evicted); default 100,000. */
  requestLogSize?: number;
}

export interface ServiceAccountFiles {
  /** `<root>/var/run/secrets/kubernetes.io/serviceaccount`, holding token, ca.crt and namespace. */
  readonly dir: string;
  readonly token: string;
  /** What an in-cluster client reads besides the files: KUBERNETES_SERVICE_HOST and _PORT. */
  readonly env: { readonly KUBERNETES_SERVICE_HOST: string; readonly KUBERNETES_SERVICE_PORT: string };
}

export interface Simulator {
  readonly url: string; // http://127.0.0.1:PORT, or https:// with tls
  readonly port: number;
  kubeconfigYaml(options?: { namespace?: string; token?: string }): string;
  writeKubeconfig(file: string, options?: { namespace?: string; token?: string }): Promise<void>;
  readonly faults: {
    setLatency(ms: number): void;
    setErrorRate(rate: number, codes?: number[]): void; // codes default [500, 503, 429]
    dropWatches(): void; // ends every open watch stream now
    pause(): Promise<void>; // server unreachable until resume()
    resume(): Promise<void>;
    reset(): void; // latency 0, error rate 0
  };
  /** Every request served: a bounded ring of records, exact counters, a live subscription. */
  readonly requests: RequestLog;
  readonly auth: {
    readonly rbac: boolean;
    /** The kubeconfig's token: user `keelson-sim-admin` in `system:masters`. */
    readonly adminToken: string;
    /** A static token for `user` in `groups` (plus `system:authenticated`). */
    addToken(token: string, user: string, groups?: readonly string[]): void;
    /** A token for an existing ServiceAccount, as `kubectl create token` gets; default 1 h. */
    mintServiceAccountToken(namespace: string, name: string, options?: MintOptions): string;
  };
  /** Present when serving HTTPS. */
  readonly tls: { readonly caPem: string; readonly caFile?: string } | undefined;
  /**
   * Writes what a pod of ServiceAccount `namespace/name` would see under `root` (token, ca.crt,
   * namespace), for `KubeConfig.loadFromCluster(root)`. Needs `tls`: in-cluster clients speak
   * HTTPS only. The token lives a year, as a kubelet-projected one does with extended expiry.
   */
  writeServiceAccountFiles(root: string, namespace: string, name: string): Promise<ServiceAccountFiles>;
  setTimeScale(scale: number): void;
  close(): Promise<void>; // stops controllers, closes every connection
  /** In-process access for tests' own inspection: never subject to fault injection. */
  readonly store: Store;
  /**
   * The kinds served now, custom ones included: `sim.resources.findByKind(apiVersion, kind)` is
   * the type to read a custom resource from `sim.store` with.
   */
  readonly resources: ResourceRegistry;
}

const HOST = '127.0.0.1';
const SERVICE_ACCOUNT_DIR = 'var/run/secrets/kubernetes.io/serviceaccount';
const PROJECTED_TOKEN_SECONDS = 365 * 24 * 3600;

export function kubeconfigFor(url: string, options: { namespace?: string; token?: string; caPem?: string } = {}): string {
  const trust = options.caPem
    ? `    certificate-authority-data: ${Buffer.from(options.caPem).toString('base64')}`
    : // client-node refuses plain HTTP unless told to skip TLS verification.
      '    insecure-skip-tls-verify: true';
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: keelson-sim',
    '  cluster:',
    `    server: ${url}`,
    trust,
    'users:',
    '- name: keelson-sim',
    '  user:',
    `    token: ${options.token ?? ADMIN_TOKEN}`,
    'contexts:',
    '- name: keelson-sim',
    '  context:',
    '    cluster: keelson-sim',
    '    user: keelson-sim',
    `    namespace: ${options.namespace ?? 'default'}`,
    'current-context: keelson-sim',
    'preferences: {}',
    '',
  ].join('\n');
}

function listen(server: HttpServer | HttpsServer, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(port, HOST, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: HttpServer | HttpsServer, sockets: Set<Socket>): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      for (const s of sockets) s.destroy();
      resolve();
      return;
    }
    server.close(() => resolve());
    server.closeAllConnections();
    for (const s of sockets) s.destroy();
  });
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const log = options.log ?? pino({ level: 'silent' });
  const clock = new SimClock(options.timeScale ?? 1);
  const store = new Store();
  const api = new ApiServer(store, clock);
  const seed = { manager: 'kube-apiserver' };
  for (const name of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) api.create(typeOf('Namespace'), undefined, { metadata: { name } }, seed);
  for (const role of bootstrapClusterRoles()) api.create(typeOf('ClusterRole'), undefined, role, seed);
  for (const binding of bootstrapClusterRoleBindings()) api.create(typeOf('ClusterRoleBinding'), undefined, binding, seed);
  const rbac = options.rbac ?? false;
  const auth = new SimAuth({ store, clock, rbac });
  const requests = new RequestLog({ capacity: options.requestLogSize, log });
  const tls = options.tls ? await createTlsMaterial() : undefined;
  let caFile: string | undefined;
  if (tls && typeof options.tls === 'object') {
    await mkdir(options.tls.dir, { recursive: true });
    caFile = path.join(options.tls.dir, 'ca.crt');
    await writeFile(caFile, tls.caPem);
  }
  const faults = initialFaults();
  let port = options.port ?? 0;
  const registry = new ResourceRegistry();
  const router = new Router({ api, auth, requests, faults, log, registry, address: () => `${HOST}:${port}` });
  const crds = registerCustomResources(store, registry, (types) => router.endWatchesOf(types));
  const sockets = new Set<Socket>();
  const server = tls
    ? createHttpsServer({ keepAliveTimeout: 5_000, cert: tls.certPem, key: tls.keyPem }, router.handle)
    : createHttpServer({ keepAliveTimeout: 5_000 }, router.handle);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  port = await listen(server, port);
  const ctx = new ControllerContext(api, clock, log, {
    podStartupDelayMs: options.podStartupDelayMs ?? 1000,
    pullFailurePatterns: options.pullFailurePatterns ?? [/doesnotexist|fail-pull|unpullable/],
    crashLoopPatterns: options.crashLoopPatterns ?? [/crashloop|crash-loop/],
  });
  const controllers = new ControllerManager(ctx);
  controllers.start();
  const url = `${tls ? 'https' : 'http'}://${HOST}:${port}`;
  let paused = false;
  let closed = false;
  log.info({ url, rbac, tls: !!tls }, 'kubernetes simulator listening');
  const kubeconfig = (o: { namespace?: string; token?: string } = {}) => kubeconfigFor(url, { ...o, caPem: tls?.caPem });

  return {
    url,
    port,
    store,
    resources: registry,
    requests,
    kubeconfigYaml: kubeconfig,
    writeKubeconfig: (file, o) => writeFile(file, kubeconfig(o), { mode: 0o600 }),
    auth: {
      rbac,
      adminToken: ADMIN_TOKEN,
      addToken: (token, user, groups) => auth.authenticator.addToken(token, user, groups),
      mintServiceAccountToken: (namespace, name, o) => auth.authenticator.mintServiceAccountToken(namespace, name, o).token,
    },
    tls: tls ? { caPem: tls.caPem, caFile } : undefined,
    writeServiceAccountFiles: async (root, namespace, name) => {
      if (!tls) {
        throw new TerminalError('writeServiceAccountFiles needs a simulator started with `tls`: in-cluster clients speak HTTPS only and trust ca.crt.', { code: 'sim_tls_required' });
      }
      const token = auth.authenticator.mintServiceAccountToken(namespace, name, { expirationSeconds: PROJECTED_TOKEN_SECONDS }).token;
      const dir = path.join(root, SERVICE_ACCOUNT_DIR);
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'token'), token, { mode: 0o600 });
      await writeFile(path.join(dir, 'ca.crt'), tls.caPem);
      await writeFile(path.join(dir, 'namespace'), namespace);
      return { dir, token, env: { KUBERNETES_SERVICE_HOST: HOST, KUBERNETES_SERVICE_PORT: String(port) } };
    },
    faults: {
      setLatency: (ms) => {
        faults.latencyMs = Math.max(0, ms);
      },
      setErrorRate: (rate, codes) => {
        faults.errorRate = Math.min(1, Math.max(0, rate));
        faults.errorCodes = codes && codes.length > 0 ? [...codes] : [...DEFAULT_ERROR_CODES];
      },
      dropWatches: () => router.dropWatches(),
      pause: async () => {
        if (paused || closed) return;
        paused = true;
        router.dropWatches();
        await closeServer(server, sockets);
      },
      resume: async () => {
        if (!paused || closed) return;
        await listen(server, port);
        paused = false;
      },
      reset: () => {
        faults.latencyMs = 0;
        faults.errorRate = 0;
        faults.errorCodes = [...DEFAULT_ERROR_CODES];
      },
    },
    setTimeScale: (scale) => clock.setScale(scale),
    close: async () => {
      if (closed) return;
      closed = true;
      controllers.stop();
      router.close();
      crds.close();
      auth.close();
      await closeServer(server, sockets);
    },
  };
}

export type { Store };
export { isWrite, WRITE_VERBS, type RecordFilter, type RequestFilter, type RequestRecord } from './requestLog.ts';
