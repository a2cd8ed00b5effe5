// End to end (issue #16, the canary's known limits): going back to `strategy: replace` after
// revisions, nothing of a failed or cut-short replace deploy outliving the canary after it, a
// canary split by replica ratio (no HTTPRoute), and live drift of the serving revision. Real PostgreSQL, a git ops repo, the simulator serving Gateway API; what keelson does
// to the cluster is read from the simulator's store, every change of it in order where the order
// is the point.
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoreEvent } from '../../src/sim/store.ts';
import { sleepUntil } from '../helpers.ts';
import { kubectl, type Kubectl } from '../sim/kubectl.ts';
import { httpRouteBackends, installGatewayApi } from '../sim/gatewayApi.ts';
import { admitRoutes, ROUTE_TEMPLATE, routeWeights } from './canarySupport.ts';
import { createOpsRepo, history, insertRow, row, simDeployment, simList, simObject, startE2e, waitRow, waitStatus, WEB_TEMPLATE, type E2e, type OpsRepo } from './support.ts';

let e2e: E2e;
let repo: OpsRepo;
let run: Kubectl;

const CANARY = 'keelson:\n  strategy:\n    canary:\n      steps:\n        - setWeight: 1000\n        - pause: 1s\n        - setWeight: 5000\n        - pause: 1s\n';
const SPLIT_ANNOTATION = 'keelson.dev/traffic-split';
const REVISION_LABEL = 'keelson.dev/revision';

beforeAll(async () => {
  e2e = await startE2e({ sim: { timeScale: 100, podStartupDelayMs: 1000 } });
  await installGatewayApi(e2e.sim);
  repo = await createOpsRepo(e2e, 'platform', {
    'values.yaml': 'replicas: 2\n',
    // back to replace: a canary deployment whose row later says `strategy: replace`
    'back/deployment.yaml': ROUTE_TEMPLATE,
    'back/values.yaml': `${CANARY}  prune: true\n`,
    // no HTTPRoute: the split is a replica ratio behind the one Service
    'ratio/deployment.yaml': WEB_TEMPLATE,
    'ratio/values.yaml': `replicas: 4\n${CANARY}`,
    'mend/deployment.yaml': ROUTE_TEMPLATE,
    'mend/values.yaml': CANARY,
    'watch/deployment.yaml': ROUTE_TEMPLATE,
    'watch/values.yaml': CANARY,
    // a replace deploy over a revision that fails, with auto_rollback
    'fall/deployment.yaml': ROUTE_TEMPLATE,
    'fall/values.yaml': CANARY,
    // a replace deploy over a revision cut short by a canary while it retires the revision
    'recut/deployment.yaml': ROUTE_TEMPLATE,
    'recut/values.yaml': CANARY,
  });
  run = await kubectl(e2e.sim, e2e.dir, 'switch');
  await e2e.startRuntime({ failFastGraceMs: 1_000, machineConfig: { driftIntervalMs: 300 } });
});

afterAll(async () => {
  await e2e?.stop();
});

/** Every change the simulator's store makes in a namespace, in order, until stopped. */
function record(namespace: string): { events: StoreEvent[]; stop: () => void } {
  const events: StoreEvent[] = [];
  const stop = e2e.sim.store.subscribe((event) => {
    if (event.object.metadata.namespace === namespace) events.push(event);
  });
  return { events, stop };
}

const isKind = (event: StoreEvent, kind: string) => event.object.kind === kind || event.resource.kind === kind;
const readyOf = (event: StoreEvent) => ((event.object.status ?? {}) as { readyReplicas?: number }).readyReplicas ?? 0;
const replicasOf = (event: StoreEvent) => ((event.object.spec ?? {}) as { replicas?: number }).replicas ?? 0;

async function ok(args: string[]): Promise<void> {
  const result = await run(args);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
}

/** The revision workloads (`<name>-r<n>`) the cluster holds in a namespace. */
const revisionWorkloads = (namespace: string): string[] =>
  simList(e2e.sim, 'Deployment', namespace).filter((d) => d.metadata.labels?.[REVISION_LABEL] !== undefined).map((d) => d.metadata.name).sort();

async function waitState(id: string, state: string): Promise<void> {
  await sleepUntil(async () => (await e2e.db.maybeOne(sql.unsafe`
    select 1 from deployment_transitions where deployment_id = ${id} and to_state = ${state} limit 1`)) !== null, { timeoutMs: 60_000, message: `transition to ${state}` });
}

/** Drift checks the runtime made so far, by outcome (keelson_drift_checks_total). */
async function driftChecks(outcome: string): Promise<number> {
  const { values } = await e2e.metrics.driftChecks.get();
  return values.filter((v) => v.labels.outcome === outcome).reduce((sum, v) => sum + v.value, 0);
}

describe('back to strategy: replace', () => {
  it('the in-place workload is applied and ready, the route back on <name>, then the revision is drained and archived', async () => {
    await admitRoutes(e2e.db, 'back');
    const id = await insertRow(e2e.db, { project: 'back', image: 'registry.example/back:1', opsRepoId: repo.id });
    await waitStatus(e2e.db, id, 'healthy', 60_000);
    expect(routeWeights(e2e.sim, 'back-prod', 'back')).toEqual(['back-r1:1']);
    expect(simDeployment(e2e.sim, 'back-prod', 'back')).toBeUndefined();

    const changes = record('back-prod');
    await e2e.db.query(sql.unsafe`
      update deployments set image_ref = 'registry.example/back:2', values_override = ${sql.jsonb({ keelson: { strategy: 'replace' } })} where id = ${id}`);
    const done = await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.observed_generation === r.generation, 'switched back', 60_000);
    changes.stop();
    expect(done).toMatchObject({ current_image_ref: 'registry.example/back:2', last_error: null });

    // what runs now: the in-place workload, the route on the deployment's Service, no revision
    expect(simDeployment(e2e.sim, 'back-prod', 'back')).toMatchObject({ image: 'registry.example/back:2', replicas: 2, readyReplicas: 2 });
    expect(routeWeights(e2e.sim, 'back-prod', 'back')).toEqual(['back:1']);
    expect(simDeployment(e2e.sim, 'back-prod', 'back-r1')).toBeUndefined();
    expect(simObject(e2e.sim, 'Service', 'back-prod', 'back-r1')).toBeUndefined();
    // the split record went with the revisions (the Service is applied as rendered)
    expect(simObject(e2e.sim, 'Service', 'back-prod', 'back')?.metadata.annotations?.[SPLIT_ANNOTATION]).toBeUndefined();
    const last = (await history(e2e.db, id)).at(-1);
    expect(last).toMatchObject({ action: 'deploy', status: 'succeeded', image_ref: 'registry.example/back:2' });
    expect(last?.phases.map((p) => p.name)).toEqual(['sync', 'render', 'apply', 'verify', 'drain r1', 'archive r1']);

    // the order in the cluster: the route went to <name> while the revision was still ready
    // behind that Service (it selects the revision's pods too); the revision was scaled down and
    // deleted only after the in-place workload was ready — also with `keelson.prune` on, whose
    // apply leaves the revision's objects to the archive
    const events = changes.events;
    const routeSwitched = events.findIndex((e) => isKind(e, 'HTTPRoute') && JSON.stringify(e.object.spec).includes('"name":"back","port":80'));
    const inPlaceReady = events.findIndex((e) => isKind(e, 'Deployment') && e.object.metadata.name === 'back' && readyOf(e) === 2);
    const revisionScaledDown = events.findIndex((e) => isKind(e, 'Deployment') && e.object.metadata.name === 'back-r1' && e.type === 'MODIFIED' && replicasOf(e) === 0);
    const revisionDeleted = events.findIndex((e) => isKind(e, 'Deployment') && e.object.metadata.name === 'back-r1' && e.type === 'DELETED');
    expect(routeSwitched).toBeGreaterThanOrEqual(0);
    const revisionBefore = events.slice(0, routeSwitched).filter((e) => isKind(e, 'Deployment') && e.object.metadata.name === 'back-r1').at(-1);
    expect(revisionBefore === undefined || readyOf(revisionBefore) === 2).toBe(true);
    expect(inPlaceReady).toBeGreaterThanOrEqual(0);
    expect(revisionScaledDown).toBeGreaterThan(Math.max(routeSwitched, inPlaceReady));
    expect(revisionDeleted).toBeGreaterThan(revisionScaledDown);

    // and the next replace deploy is a plain one
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/back:3' where id = ${id}`);
    await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/back:3', 'replaced in place', 60_000);
    expect((await history(e2e.db, id)).at(-1)?.phases.map((p) => p.name)).toEqual(['sync', 'render', 'apply', 'verify']);
  });
});

describe('nothing of a failed or cut-short replace deploy outlives the canary that follows it', () => {
  it('a failed replace deploy over a revision with auto_rollback: rolled back as a new revision, the failed in-place workload removed', async () => {
    await admitRoutes(e2e.db, 'fall');
    const id = await insertRow(e2e.db, { project: 'fall', image: 'registry.example/fall:1', opsRepoId: repo.id, autoRollback: true });
    await waitStatus(e2e.db, id, 'healthy', 60_000);
    expect(revisionWorkloads('fall-prod')).toEqual(['fall-r1']);

    await e2e.db.query(sql.unsafe`
      update deployments set image_ref = 'registry.example/fall:doesnotexist', values_override = ${sql.jsonb({ keelson: { strategy: 'replace' } })} where id = ${id}`);
    // the rollback's write-back is a new generation, adopted without a rollout
    const back = await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.image_ref === 'registry.example/fall:1' && r.observed_generation === r.generation, 'auto rolled back', 60_000);
    expect(back.current_image_ref).toBe('registry.example/fall:1');
    const records = await history(e2e.db, id);
    expect(records.map((h) => [h.action, h.status, h.image_ref])).toEqual([
      ['deploy', 'succeeded', 'registry.example/fall:1'],
      ['deploy', 'failed', 'registry.example/fall:doesnotexist'],
      ['auto-rollback', 'succeeded', 'registry.example/fall:1'],
    ]);
    // the failed deploy did apply in place (its workload existed); after the rollback nothing of it is left
    expect(records[1]?.phases.map((p) => p.name)).toEqual(['sync', 'render', 'apply', 'verify']);
    expect(records[2]?.phases.map((p) => p.name)).toEqual(['find-target', 'sync', 'render', 'stage', 'warm', 'promote', 'drain r1', 'archive r1']);
    expect(simDeployment(e2e.sim, 'fall-prod', 'fall')).toBeUndefined();
    // traffic on the rolled-back revision alone
    expect(revisionWorkloads('fall-prod')).toEqual(['fall-r3']);
    expect(simDeployment(e2e.sim, 'fall-prod', 'fall-r3')).toMatchObject({ image: 'registry.example/fall:1', replicas: 2, readyReplicas: 2 });
    expect(routeWeights(e2e.sim, 'fall-prod', 'fall')).toEqual(['fall-r3:1']);
    expect(JSON.parse(simObject(e2e.sim, 'Service', 'fall-prod', 'fall')?.metadata.annotations?.[SPLIT_ANNOTATION] ?? '{}')).toMatchObject({ entries: [{ revision: 'r3', weightBps: 10_000 }] });
    // by the archive that ends the rollback's canary: one revision has all traffic, nothing in place may run
    expect(records[2]?.phases.find((p) => p.name === 'archive r1')?.detail).toBe('r1 archived; removed Deployment fall-prod/fall in place');
  });

  it('a canary cutting short a replace deploy while it retires the revision: its end sweeps that revision and the in-place workload', async () => {
    await admitRoutes(e2e.db, 'recut');
    const id = await insertRow(e2e.db, { project: 'recut', image: 'registry.example/recut:1', opsRepoId: repo.id });
    await waitStatus(e2e.db, id, 'healthy', 60_000);
    expect(revisionWorkloads('recut-prod')).toEqual(['recut-r1']);

    // Hold the retire: once the in-place workload is ready (its verification about to succeed),
    // every request to the API server waits 4 s, so the drain of r1 is still in flight when the
    // canary's generation arrives. The watches already open (the verification's) are not delayed.
    let braked = false;
    const brake = e2e.sim.store.subscribe((event) => {
      if (!braked && isKind(event, 'Deployment') && event.object.metadata.namespace === 'recut-prod' && event.object.metadata.name === 'recut' && readyOf(event) === 2) {
        braked = true;
        e2e.sim.faults.setLatency(4_000);
      }
    });
    try {
      await e2e.db.query(sql.unsafe`
        update deployments set image_ref = 'registry.example/recut:2', values_override = ${sql.jsonb({ keelson: { strategy: 'replace' } })} where id = ${id}`);
      await waitState(id, 'verifying.retiring.draining.running');
      await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/recut:3', values_override = '{}' where id = ${id}`);
    } finally {
      brake();
      e2e.sim.faults.setLatency(0);
    }
    expect(braked).toBe(true);
    const done = await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/recut:3' && r.observed_generation === r.generation, 'the canary', 60_000);
    expect(done.last_error).toBeNull();
    const records = await history(e2e.db, id);
    // the replace deploy was cut short in its retire: r1 was never archived by it
    expect(records.map((h) => [h.action, h.status, h.image_ref])).toEqual([
      ['deploy', 'succeeded', 'registry.example/recut:1'],
      ['deploy', 'superseded', 'registry.example/recut:2'],
      ['deploy', 'succeeded', 'registry.example/recut:3'],
    ]);
    expect(records[1]?.phases.map((p) => p.name)).toEqual(['sync', 'render', 'apply', 'verify']);
    // the canary over the release in place: all traffic at once, the in-place workload removed, r1 swept
    expect(records[2]?.phases.map((p) => p.name)).toEqual(['sync', 'render', 'stage', 'warm', 'promote', 'remove in place']);
    expect(revisionWorkloads('recut-prod')).toEqual(['recut-r3']);
    expect(simObject(e2e.sim, 'Service', 'recut-prod', 'recut-r1')).toBeUndefined();
    expect(simDeployment(e2e.sim, 'recut-prod', 'recut')).toBeUndefined();
    expect(routeWeights(e2e.sim, 'recut-prod', 'recut')).toEqual(['recut-r3:1']);
    expect(records[2]?.phases.at(-1)?.detail).toBe('deleted Deployment recut-prod/recut; swept r1');
  });
});

describe('replica ratio (no HTTPRoute)', () => {
  it('10 % → 50 % → 100 % as replica counts of the two revisions behind the one Service', async () => {
    const id = await insertRow(e2e.db, { project: 'ratio', image: 'registry.example/ratio:1', opsRepoId: repo.id });
    await waitStatus(e2e.db, id, 'healthy', 60_000);
    expect(simDeployment(e2e.sim, 'ratio-prod', 'ratio-r1')).toMatchObject({ replicas: 4, readyReplicas: 4 });
    expect(httpRouteBackends(e2e.sim, 'ratio-prod', 'ratio')).toBeUndefined();

    const changes = record('ratio-prod');
    // the pods the Service selects, by revision, whenever the split record changes
    const service = simObject(e2e.sim, 'Service', 'ratio-prod', 'ratio');
    const selector = ((service?.spec ?? {}) as { selector?: Record<string, string> }).selector ?? {};
    const selected = () => {
      const counts: Record<string, number> = {};
      for (const pod of simList(e2e.sim, 'Pod', 'ratio-prod')) {
        const labels = pod.metadata.labels ?? {};
        const ready = ((pod.status ?? {}) as { conditions?: Array<{ type: string; status: string }> }).conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
        if (ready && !pod.metadata.deletionTimestamp && Object.entries(selector).every(([k, v]) => labels[k] === v)) {
          const revision = labels[REVISION_LABEL] ?? 'none';
          counts[revision] = (counts[revision] ?? 0) + 1;
        }
      }
      return counts;
    };
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/ratio:2' where id = ${id}`);
    // at 50 %: the Service selects ready pods of both revisions, two each
    await sleepUntil(() => JSON.stringify(selected()) === JSON.stringify({ r1: 2, r2: 2 }), { timeoutMs: 30_000, intervalMs: 10, message: `pods of both revisions behind the Service (are ${JSON.stringify(selected())})` });
    const done = await waitStatus(e2e.db, id, 'healthy', 60_000);
    changes.stop();
    expect(done.current_image_ref).toBe('registry.example/ratio:2');

    // the replica counts keelson set, in order, and the split recorded with each
    const sizes: Record<string, number | 'gone'> = { 'ratio-r1': 4, 'ratio-r2': 'gone' };
    // each change once: status updates repeat the sizes, Service updates repeat the record
    const steps: string[] = [];
    let sized = '';
    let recorded = 'split r1 10000'; // the first release's, already there
    expect(JSON.parse(service?.metadata.annotations?.[SPLIT_ANNOTATION] ?? '{}')).toMatchObject({ entries: [{ revision: 'r1', weightBps: 10_000 }] });
    for (const event of changes.events) {
      if (isKind(event, 'Deployment') && event.object.metadata.name in sizes) {
        sizes[event.object.metadata.name] = event.type === 'DELETED' ? 'gone' : replicasOf(event);
        const step = `r1=${sizes['ratio-r1']} r2=${sizes['ratio-r2']}`;
        if (step !== sized) steps.push((sized = step));
      }
      if (isKind(event, 'Service') && event.object.metadata.name === 'ratio') {
        const record = event.object.metadata.annotations?.[SPLIT_ANNOTATION];
        const split = record ? (JSON.parse(record) as { entries: Array<{ revision: string; weightBps: number }> }).entries.map((e) => `${e.revision} ${e.weightBps}`).join(', ') : '';
        if (`split ${split}` !== recorded) steps.push((recorded = `split ${split}`));
      }
    }
    expect(steps).toEqual([
      'r1=4 r2=0', // staged at 0
      'r1=4 r2=4', // warmed to full size (serves by its pods' share until the first split sizes it)
      'r1=4 r2=1', // 10 %: 4 × 90 % rounds to 4, and the canary gets at least one
      'split r1 9000, r2 1000',
      'r1=2 r2=1',
      'r1=2 r2=2', // 50 %
      'split r1 5000, r2 5000',
      'r1=2 r2=4', // 100 %
      'split r2 10000',
      'r1=0 r2=4', // drained
      'r1=gone r2=4', // archived
    ]);
    expect(simObject(e2e.sim, 'Service', 'ratio-prod', 'ratio-r1')).toBeUndefined();
    expect((await history(e2e.db, id)).at(-1)?.phases.map((p) => p.name)).toEqual([
      'sync', 'render', 'stage', 'warm', 'split 10 %', 'pause 1 s', 'split 50 %', 'pause 1 s', 'promote', 'drain r1', 'archive r1',
    ]);
  });
});

describe('live drift of the serving revision', () => {
  it('drift: repair re-applies the revision itself (kubectl set image on <name>-r1), no new canary', async () => {
    await admitRoutes(e2e.db, 'mend');
    const id = await insertRow(e2e.db, { project: 'mend', image: 'registry.example/mend:1', opsRepoId: repo.id });
    await waitStatus(e2e.db, id, 'healthy', 60_000);
    // a revision as the target left it is in sync: checks pass without a repair
    const inSync = await driftChecks('in_sync');
    await sleepUntil(async () => (await driftChecks('in_sync')) >= inSync + 3, { timeoutMs: 30_000, message: 'three drift checks in sync' });
    expect(await history(e2e.db, id)).toHaveLength(1);

    await ok(['-n', 'mend-prod', 'set', 'image', 'deployment/mend-r1', 'web=registry.example/intruder:6']);
    const repaired = await sleepUntil(async () => {
      const records = await history(e2e.db, id);
      return records.length >= 2 && records[1]?.status === 'succeeded' ? records : undefined;
    }, { timeoutMs: 30_000, message: 'the repair' });
    expect(repaired[1]).toMatchObject({ action: 'deploy', image_ref: 'registry.example/mend:1' });
    expect(repaired[1]?.triggered_by).toMatch(/^drift: Deployment mend-r1 changed \(.*containers\[name="web"\]\.image/);
    expect(repaired[1]?.phases.map((p) => p.name)).toEqual(['sync', 'render', 'stage', 'warm', 'promote']);
    await sleepUntil(() => simDeployment(e2e.sim, 'mend-prod', 'mend-r1')?.image === 'registry.example/mend:1', { timeoutMs: 30_000, message: 'image restored' });
    expect(simDeployment(e2e.sim, 'mend-prod', 'mend-r1')).toMatchObject({ replicas: 2 });
    expect(routeWeights(e2e.sim, 'mend-prod', 'mend')).toEqual(['mend-r1:1']);
    expect(simDeployment(e2e.sim, 'mend-prod', 'mend-r2')).toBeUndefined();

    // the route edited away from the revision is drift too
    await ok(['-n', 'mend-prod', 'patch', 'httproute/mend', '--type=merge', '-p', '{"spec":{"rules":[{"backendRefs":[{"name":"elsewhere","port":80}]}]}}']);
    const records = await sleepUntil(async () => {
      const all = await history(e2e.db, id);
      return all.length >= 3 && all[2]?.status === 'succeeded' ? all : undefined;
    }, { timeoutMs: 30_000, message: 'the second repair' });
    expect(records[2]?.triggered_by).toMatch(/^drift: HTTPRoute mend changed \(\.spec\.rules/);
    expect(routeWeights(e2e.sim, 'mend-prod', 'mend')).toEqual(['mend-r1:1']);
    expect((await waitStatus(e2e.db, id, 'healthy', 60_000)).current_image_ref).toBe('registry.example/mend:1');
  });

  it('drift: detect reports the revision\'s drifted fields and changes nothing', async () => {
    await admitRoutes(e2e.db, 'watch');
    const id = await insertRow(e2e.db, { project: 'watch', image: 'registry.example/watch:1', opsRepoId: repo.id });
    await e2e.db.query(sql.unsafe`update deployments set drift = 'detect' where id = ${id}`);
    await waitStatus(e2e.db, id, 'healthy', 60_000);
    await ok(['-n', 'watch-prod', 'set', 'image', 'deployment/watch-r1', 'web=registry.example/intruder:7']);
    const detected = await waitRow(e2e.db, id, (r) => r.drift_detected != null, 'drift detected', 60_000);
    expect(detected.drift_detected).toMatch(/^Deployment watch-r1 changed \(.*containers\[name="web"\]\.image\)$/);
    expect(detected).toMatchObject({ current_status: 'healthy', last_error: null });
    expect(simDeployment(e2e.sim, 'watch-prod', 'watch-r1')?.image).toBe('registry.example/intruder:7');
    expect(await history(e2e.db, id)).toHaveLength(1);
    expect((await row(e2e.db, id)).drift_detected).toBe(detected.drift_detected);
  });
});
