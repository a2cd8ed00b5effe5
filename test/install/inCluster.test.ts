// keelson in in-cluster mode against the simulator with RBAC and TLS on, holding exactly the rights
// deploy/kustomize/base ships: its ServiceAccount, ClusterRole and ClusterRoleBinding applied with
// kubectl, the pod's service-account files minted by the simulator, and keelson's own startServer
// reading them (KUBERNETES_SERVICE_HOST/PORT, token, ca.crt). Deploy, update, rollback, stop,
// resume, prune and drift repair all succeed on those rights; without one rule, the action it
// serves fails with a last_error naming the verb and resource the API server refused.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { sql } from 'slonik';
import { parseAllDocuments, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { typeOf } from '../../src/sim/resources.ts';
import { createOpsRepo, history, insertRow, simDeployment, simObject, startE2e, waitRow, waitStatus, WEB_TEMPLATE, type E2e, type OpsRepo } from '../e2e/support.ts';
import { sleepUntil } from '../helpers.ts';
import { REPO_ROOT } from './support.ts';

const exec = promisify(execFile);
const SA_USER = 'system:serviceaccount:keelson:keelson';
let e2e: E2e;
let server: RunningServer;
let repo: OpsRepo;
let kubeconfig: string;
const savedEnv = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };

/** kubectl as the simulator's admin (async: the simulator answers from this process). */
async function kubectl(args: string[], input?: string): Promise<string> {
  const child = exec('kubectl', ['--kubeconfig', kubeconfig, '--cache-dir', path.join(e2e.dir, 'kube-cache'), ...args]);
  if (input !== undefined) {
    child.child.stdin?.end(input);
  }
  return (await child).stdout;
}

/** The base's RBAC objects as kustomize builds them, optionally with one ClusterRole rule changed. */
async function shippedRbac(edit?: (rules: Array<{ resources: string[]; verbs: string[] }>) => void): Promise<string> {
  const { stdout } = await exec('kubectl', ['kustomize', path.join(REPO_ROOT, 'deploy', 'kustomize', 'base')]);
  const objects = parseAllDocuments(stdout)
    .map((doc) => doc.toJS() as { kind: string; rules?: Array<{ resources: string[]; verbs: string[] }> })
    .filter((o) => ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind));
  const role = objects.find((o) => o.kind === 'ClusterRole');
  if (edit && role?.rules) edit(role.rules);
  return objects.map((o) => stringify(o)).join('---\n');
}

beforeAll(async () => {
  e2e = await startE2e({ sim: { rbac: true, tls: true } });
  kubeconfig = path.join(e2e.dir, 'admin.kubeconfig');
  await e2e.sim.writeKubeconfig(kubeconfig);
  await kubectl(['apply', '--server-side', '-f', '-'], await shippedRbac());
  const files = await e2e.sim.writeServiceAccountFiles(e2e.dir, 'keelson', 'keelson');
  // as in a pod: client-node's loadFromCluster reads these from the environment
  Object.assign(process.env, files.env);
  const config = loadConfig(
    { ...files.env, KEELSON_ALLOW_FILE_REPOS: 'true', DATABASE_URL: e2e.t.url, KEELSON_DATA_DIR: path.join(e2e.dir, 'data'), PORT: '0', KEELSON_TICK_INTERVAL: '200ms', KEELSON_LOG_FORMAT: 'json' },
    {},
    false,
  );
  expect(config.cluster).toBe('in-cluster');
  server = await startServer({
    config,
    log: createLogger({ level: 'silent', format: 'json' }),
    serviceAccountPrefix: e2e.dir,
    machineConfig: { driftIntervalMs: 1000, retryBaseMs: 200, retryMaxMs: 2000 },
  });
  repo = await createOpsRepo(e2e, 'shop-ops', {
    'web/deployment.yaml': WEB_TEMPLATE,
    'web/values.yaml': 'replicas: 2\nkeelson:\n  prune: true\n',
    'web/config.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ project }}-config\ndata:\n  greeting: hello\n',
  });
}, 180_000);

afterAll(async () => {
  await server?.close();
  await e2e?.stop();
  for (const [key, value] of [['KUBERNETES_SERVICE_HOST', savedEnv.host], ['KUBERNETES_SERVICE_PORT', savedEnv.port]] as const) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});

describe('in-cluster keelson with the shipped RBAC', () => {
  let id: string;

  it('deploys as its ServiceAccount, over HTTPS, and the API server allowed every request', async () => {
    id = await insertRow(e2e.db, { project: 'shop', image: 'registry.example/shop:1', opsRepoId: repo.id, manifestPath: 'web' });
    await waitStatus(e2e.db, id, 'healthy', 60_000);
    expect(simDeployment(e2e.sim, 'shop-prod', 'shop')).toMatchObject({ image: 'registry.example/shop:1', readyReplicas: 2 });
    expect(e2e.sim.requests.count({ user: SA_USER })).toBeGreaterThan(0);
    expect(e2e.sim.requests.count({ user: SA_USER, code: 403 })).toBe(0);
  });

  it('updates, rolls back, stops and resumes', async () => {
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/shop:2' where id = ${id}`);
    await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/shop:2' && r.observed_generation === r.generation, 'shop:2 healthy', 60_000);
    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'rollback' where id = ${id}`);
    await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/shop:1' && r.observed_generation === r.generation, 'rolled back', 60_000);
    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'stopped' where id = ${id}`);
    await waitStatus(e2e.db, id, 'stopped', 60_000);
    expect(simDeployment(e2e.sim, 'shop-prod', 'shop')?.replicas).toBe(0);
    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'active' where id = ${id}`);
    await waitStatus(e2e.db, id, 'healthy', 60_000);
    expect((await history(e2e.db, id)).map((h) => `${h.action}:${h.status}`)).toEqual([
      'deploy:succeeded', 'deploy:succeeded', 'rollback:succeeded', 'stop:succeeded', 'resume:succeeded',
    ]);
    expect(e2e.sim.requests.count({ user: SA_USER, code: 403 })).toBe(0);
  });

  it('prunes what the ops repo no longer renders, and repairs drift', async () => {
    expect(simObject(e2e.sim, 'ConfigMap', 'shop-prod', 'shop-config')).toBeDefined();
    await repo.commit({ 'web/config.yaml': null }, 'drop the config map');
    await sleepUntil(() => simObject(e2e.sim, 'ConfigMap', 'shop-prod', 'shop-config') === undefined, { timeoutMs: 90_000, message: 'ConfigMap pruned' });
    await waitStatus(e2e.db, id, 'healthy', 60_000);

    // someone runs `kubectl delete deployment shop`
    e2e.sim.store.remove(typeOf('Deployment'), 'shop-prod', 'shop');
    await sleepUntil(() => simDeployment(e2e.sim, 'shop-prod', 'shop')?.readyReplicas === 2, { timeoutMs: 90_000, message: 'Deployment re-created' });
    expect(e2e.sim.requests.count({ user: SA_USER, code: 403 })).toBe(0);
  });

  it('without the rule for deployments/scale, stopping fails naming the refused verb and resource', async () => {
    await kubectl(['apply', '--server-side', '-f', '-'], await shippedRbac((rules) => {
      const index = rules.findIndex((rule) => rule.resources.includes('deployments/scale'));
      rules.splice(index, 1);
    }));
    await waitStatus(e2e.db, id, 'healthy', 60_000);
    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'stopped' where id = ${id}`);
    const failed = await waitStatus(e2e.db, id, 'failed', 60_000);
    expect(failed.last_error).toContain(`User "${SA_USER}" cannot patch resource "deployments/scale" in API group "apps" in the namespace "shop-prod"`);
    expect(simDeployment(e2e.sim, 'shop-prod', 'shop')?.replicas).toBe(2);
  });
});
