// End to end (real PostgreSQL, a real git ops repo, the simulator): desired_status = 'deleted'
// removes every object of the deployment — a cluster-scoped one and one in a second namespace
// included — records a final teardown history row that outlives the row, and deletes the row;
// a runtime killed with SIGKILL mid-teardown is followed by one that finishes it, once. A changed
// namespace prunes what was left in the old one.
import { sql } from 'slonik';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { HistoryRow } from '../../src/db/rows.ts';
import { sleepUntil } from '../helpers.ts';
import {
  createOpsRepo, insertRow, simObject, simObjectsOf, spawnRealRuntime, startE2e, waitStatus, WEB_TEMPLATE,
  type E2e, type OpsRepo, type RuntimeProcess,
} from './support.ts';

const EXTRA = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ project }}-settings
  namespace: {{ project }}-extra
data:
  mode: fast
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ project }}-reader
rules:
  - apiGroups: [""]
    resources: ["configmaps"]
    verbs: ["get"]
`;

let e2e: E2e;
let repo: OpsRepo;
const processes: RuntimeProcess[] = [];

beforeAll(async () => {
  e2e = await startE2e();
  repo = await createOpsRepo(e2e, 'teardown', { 'values.yaml': 'replicas: 2\n', 'web/deployment.yaml': WEB_TEMPLATE, 'web/extra.yaml': EXTRA });
});

afterEach(async () => {
  await Promise.all(processes.splice(0).map((p) => p.kill('SIGKILL')));
  e2e.sim.faults.reset();
});

afterAll(async () => {
  await e2e?.stop();
});

/** A project whose policy admits its ClusterRole (cluster-scoped kinds need an admin's say-so). */
async function insertTeardownRow(project: string): Promise<string> {
  await e2e.db.query(sql.unsafe`
    insert into projects (name, cluster_resource_whitelist, namespace_resource_whitelist)
    values (${project}, ${sql.array(['rbac.authorization.k8s.io/ClusterRole'], 'text')}, null)`);
  return await insertRow(e2e.db, { project, image: `registry.example/${project}:1`, opsRepoId: repo.id, manifestPath: 'web' });
}

/** Everything of the deployment the simulator holds, by kind/namespace/name. */
function leftovers(id: string, project: string): string[] {
  const labelled = simObjectsOf(e2e.sim, id).map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
  const role = simObject(e2e.sim, 'ClusterRole', undefined, `${project}-reader`) ? [`ClusterRole//${project}-reader`] : [];
  const namespaces = [`${project}-prod`, `${project}-extra`].filter((ns) => simObject(e2e.sim, 'Namespace', undefined, ns)).map((ns) => `Namespace//${ns}`);
  return [...new Set([...labelled, ...role, ...namespaces])].sort();
}

const rowExists = async (id: string) => await e2e.db.exists(sql.unsafe`select 1 from deployments where id = ${id}`);
const historyOf = async (id: string) =>
  await e2e.db.any(sql.type(HistoryRow.extend({ project: z.string().nullable(), environment: z.string().nullable() }))`
    select * from deployment_history where deployment_id = ${id} order by id`);

async function deployed(project: string): Promise<string> {
  const id = await insertTeardownRow(project);
  await waitStatus(e2e.db, id, 'healthy', 30_000);
  expect(leftovers(id, project)).toEqual(expect.arrayContaining([
    `ClusterRole//${project}-reader`, `ConfigMap/${project}-extra/${project}-settings`, `Deployment/${project}-prod/${project}`,
    `Namespace//${project}-extra`, `Namespace//${project}-prod`, `Service/${project}-prod/${project}`,
  ]));
  return id;
}

describe('a changed namespace moves the deployment', () => {
  it('prunes what the previous release left in the old namespace (previous inventory − new), without keelson.prune', async () => {
    await e2e.startRuntime({ machineConfig: { driftIntervalMs: 60_000 } });
    const id = await deployed('mv');
    await e2e.db.query(sql.unsafe`update deployments set namespace = 'mv-new' where id = ${id}`);
    await waitStatus(e2e.db, id, 'healthy', 30_000);
    const left = leftovers(id, 'mv');
    expect(left).toEqual(expect.arrayContaining([`Deployment/mv-new/mv`, `Service/mv-new/mv`, `ConfigMap/mv-extra/mv-settings`, `ClusterRole//mv-reader`]));
    expect(left.filter((ref) => ref.includes('/mv-prod/'))).toEqual([]);
    const [, moved] = await historyOf(id);
    expect(moved?.inventory?.filter((ref) => ref.namespace === 'mv-prod')).toEqual([]);
  });
});

describe('teardown', () => {
  it('deletes every object (cluster-scoped, second namespace), keeps the history, deletes the row', async () => {
    await e2e.startRuntime({ machineConfig: { driftIntervalMs: 60_000 } });
    const id = await deployed('gone');
    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'deleted' where id = ${id}`);
    await sleepUntil(async () => !(await rowExists(id)), { timeoutMs: 30_000, message: 'row deleted' });
    expect(leftovers(id, 'gone')).toEqual([]);
    const records = await historyOf(id);
    expect(records.map((r) => [r.action, r.status, r.project, r.environment])).toEqual([
      ['deploy', 'succeeded', 'gone', 'prod'],
      ['teardown', 'succeeded', 'gone', 'prod'],
    ]);
    expect(records[1]?.phases.map((p) => p.name)).toEqual(['teardown']);
    expect(records[1]?.inventory).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'ClusterRole', name: 'gone-reader' })]));
    // the outbox's events outlive the row too (their deliveries are still to be made)
    const types = await e2e.db.anyFirst(sql.type(z.object({ type: z.string() }))`select type from deployment_events where deployment_id = ${id} order by position`);
    expect(types.slice(-2)).toEqual(['teardown.started', 'teardown.succeeded']);
    // lease, snapshot and transitions went with the row
    for (const table of ['deployment_leases', 'deployment_snapshots', 'deployment_transitions']) {
      expect(await e2e.db.exists(sql.unsafe`select 1 from ${sql.identifier([table])} where deployment_id = ${id}`)).toBe(false);
    }
    await e2e.runtime?.stop();
  });

  it('SIGKILL mid-teardown: the next process finishes it, nothing left, one teardown row', async () => {
    const first = await spawnRealRuntime(e2e, { LEASE_TTL_MS: '1500', TICK_MS: '200' });
    processes.push(first);
    const id = await deployed('crash');
    // every API answer waits 1 s: deleting (and waiting for) six objects takes many seconds
    e2e.sim.faults.setLatency(1_000);
    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'deleted' where id = ${id}`);
    // killed while objects are being deleted: the Deployment is gone, others are still there
    await sleepUntil(() => (simObject(e2e.sim, 'Deployment', 'crash-prod', 'crash') ? undefined : true), { timeoutMs: 30_000, message: 'Deployment deleted' });
    await first.kill('SIGKILL');
    expect(leftovers(id, 'crash')).not.toEqual([]);
    expect(await rowExists(id)).toBe(true);
    e2e.sim.faults.setLatency(0);

    const second = await spawnRealRuntime(e2e, { LEASE_TTL_MS: '1500', TICK_MS: '200' });
    processes.push(second);
    await sleepUntil(async () => !(await rowExists(id)), { timeoutMs: 30_000, message: 'row deleted by the second process' });
    expect(leftovers(id, 'crash')).toEqual([]);
    expect((await historyOf(id)).map((r) => [r.action, r.status])).toEqual([['deploy', 'succeeded'], ['teardown', 'succeeded']]);
  });
});
