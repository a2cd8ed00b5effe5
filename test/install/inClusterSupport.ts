// Shared by the in-cluster install tests (inCluster.test.ts: the base's cluster-wide RBAC;
// inClusterNamespaced.test.ts: the namespaced component): the simulator with RBAC and TLS on,
// deploy/kustomize's RBAC objects applied with kubectl as the simulator's admin, the pod's
// service-account files minted by the simulator, and keelson's own startServer in in-cluster
// mode reading them — as in a pod.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';
import { expect } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import type { RequestRecord } from '../../src/sim/requestLog.ts';
import { startE2e, type E2e } from '../e2e/support.ts';
import { REPO_ROOT } from './support.ts';

const exec = promisify(execFile);

/** The user keelson's ServiceAccount authenticates as. */
export const SA_USER = 'system:serviceaccount:keelson:keelson';

export interface Rule {
  apiGroups?: string[];
  resources: string[];
  verbs: string[];
}

export interface KustomizedObject {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: Rule[];
  data?: Record<string, string>;
}

export interface InCluster {
  readonly e2e: E2e;
  readonly server: RunningServer;
  /** the simulator's admin kubeconfig, for kubectl */
  readonly kubeconfig: string;
  /** kubectl as the simulator's admin (async: the simulator answers from this process) */
  kubectl(args: string[], input?: string): Promise<string>;
  /** every request keelson's ServiceAccount made, in order (no ring eviction) */
  readonly requests: RequestRecord[];
  stop(): Promise<void>;
}

/** `kubectl kustomize deploy/kustomize/<dir>` as objects. */
export async function kustomize(dir: string): Promise<KustomizedObject[]> {
  const { stdout } = await exec('kubectl', ['kustomize', path.join(REPO_ROOT, 'deploy', 'kustomize', dir)]);
  return parseAllDocuments(stdout).map((doc) => doc.toJS() as KustomizedObject);
}

/** The identity and RBAC objects of a kustomize build as YAML, optionally with the ClusterRole's rules edited. */
export function rbacYaml(objects: readonly KustomizedObject[], edit?: (rules: Rule[]) => void): string {
  const picked = structuredClone(objects.filter((o) => ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'RoleBinding'].includes(o.kind)));
  const role = picked.find((o) => o.kind === 'ClusterRole');
  if (edit && role?.rules) edit(role.rules);
  return picked.map((o) => stringify(o)).join('---\n');
}

/**
 * The simulator (RBAC + TLS), `rbac` applied as its admin after `namespaces` were created, and
 * keelson serving in in-cluster mode as the ServiceAccount keelson/keelson with `env` on top.
 */
export async function startInCluster(options: { rbac: string; namespaces?: readonly string[]; env?: Record<string, string> }): Promise<InCluster> {
  const e2e = await startE2e({ sim: { rbac: true, tls: true } });
  try {
    return await serveInCluster(e2e, options);
  } catch (error) {
    await e2e.stop();
    throw error;
  }
}

async function serveInCluster(e2e: E2e, options: { rbac: string; namespaces?: readonly string[]; env?: Record<string, string> }): Promise<InCluster> {
  const kubeconfig = path.join(e2e.dir, 'admin.kubeconfig');
  await e2e.sim.writeKubeconfig(kubeconfig);
  const kubectl = async (args: string[], input?: string): Promise<string> => {
    const child = exec('kubectl', ['--kubeconfig', kubeconfig, '--cache-dir', path.join(e2e.dir, 'kube-cache'), ...args]);
    if (input !== undefined) child.child.stdin?.end(input);
    return (await child).stdout;
  };
  const requests: RequestRecord[] = [];
  const unsubscribe = e2e.sim.requests.on('request', (record) => {
    if (record.user === SA_USER) requests.push(record);
  });
  const namespaces = (options.namespaces ?? []).map((name) => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n`);
  // (kubectl create sends protobuf, which the simulator does not decode; apply sends JSON)
  await kubectl(['apply', '--server-side', '-f', '-'], [...namespaces, options.rbac].join('---\n'));
  const files = await e2e.sim.writeServiceAccountFiles(e2e.dir, 'keelson', 'keelson');
  // as in a pod: client-node's loadFromCluster reads these from the environment
  const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  Object.assign(process.env, files.env);
  const restore = () => {
    for (const [key, value] of [['KUBERNETES_SERVICE_HOST', saved.host], ['KUBERNETES_SERVICE_PORT', saved.port]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
  let server: RunningServer;
  try {
    server = await serve(e2e, files.env, options.env);
  } catch (error) {
    restore();
    unsubscribe();
    throw error;
  }
  return {
    e2e,
    server,
    kubeconfig,
    kubectl,
    requests,
    async stop() {
      await server.close();
      unsubscribe();
      await e2e.stop();
      restore();
    },
  };
}

async function serve(e2e: E2e, clusterEnv: Record<string, string>, env: Record<string, string> = {}): Promise<RunningServer> {
  const config = loadConfig(
    {
      ...clusterEnv,
      KEELSON_ALLOW_FILE_REPOS: 'true',
      DATABASE_URL: e2e.t.url,
      KEELSON_DATA_DIR: path.join(e2e.dir, 'data'),
      PORT: '0',
      KEELSON_TICK_INTERVAL: '200ms',
      KEELSON_LOG_FORMAT: 'json',
      ...env,
    },
    {},
    false,
  );
  expect(config.cluster).toBe('in-cluster');
  return await startServer({
    config,
    log: createLogger({ level: (process.env.E2E_LOG_LEVEL as 'info' | undefined) ?? 'silent', format: 'json' }),
    serviceAccountPrefix: e2e.dir,
    machineConfig: { driftIntervalMs: 1000, retryBaseMs: 200, retryMaxMs: 2000 },
  });
}
