// End to end: canaries through the deploy-target contract (issue #16) — real PostgreSQL, a git ops
// repo declaring `keelson.strategy`, the simulator serving Gateway API, the Kubernetes target
// splitting by HTTPRoute weights. The weights are read from the simulator's store at each step.
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleepUntil } from '../helpers.ts';
import { installGatewayApi } from '../sim/gatewayApi.ts';
import { admitRoutes, canarySteps, ROUTE_TEMPLATE, routeWeights, waitRouteWeights } from './canarySupport.ts';
import { createOpsRepo, history, insertRow, simDeployment, startE2e, waitRow, waitStatus, type E2e, type OpsRepo } from './support.ts';

let e2e: E2e;
let repo: OpsRepo;

beforeAll(async () => {
  // 100 simulated seconds per second: pods start in ~10 ms, an unpullable image backs off within ~60 ms
  e2e = await startE2e({ sim: { timeScale: 100, podStartupDelayMs: 1000 } });
  await installGatewayApi(e2e.sim);
  repo = await createOpsRepo(e2e, 'platform', {
    'values.yaml': 'replicas: 2\n',
    'shop/deployment.yaml': ROUTE_TEMPLATE,
    'shop/values.yaml': canarySteps(['500ms', '500ms']),
    'slow/deployment.yaml': ROUTE_TEMPLATE,
    'slow/values.yaml': canarySteps(['4s', '1s']),
    'switch/deployment.yaml': ROUTE_TEMPLATE,
    'cut/deployment.yaml': ROUTE_TEMPLATE,
    'cut/values.yaml': 'keelson:\n  strategy:\n    canary:\n      steps:\n        - setWeight: 1000\n        - pause: 2s\n',
    'auto/deployment.yaml': ROUTE_TEMPLATE,
    'auto/values.yaml': 'keelson:\n  strategy:\n    canary:\n      steps:\n        - setWeight: 5000\n',
    'ctl/deployment.yaml': ROUTE_TEMPLATE,
    'ctl/values.yaml': canarySteps(['2s', '60s']),
  });
  await e2e.startRuntime({ failFastGraceMs: 1_000 });
});

afterAll(async () => {
  await e2e?.stop();
});

/** Written by SQL, as a pipeline would; keelson consumes it (sets it back to null). */
async function command(id: string, what: string): Promise<void> {
  await e2e.db.query(sql.unsafe`update deployments set canary_command = ${what} where id = ${id}`);
  await sleepUntil(async () => (await e2e.db.oneFirst(sql.unsafe`select canary_command is null from deployments where id = ${id}`)) === true, {
    message: `canary_command ${what} consumed`,
  });
}

async function waitState(id: string, state: string): Promise<void> {
  await sleepUntil(async () => (await e2e.db.maybeOne(sql.unsafe`
    select 1 from deployment_transitions where deployment_id = ${id} and to_state = ${state} limit 1`)) !== null, { message: `transition to ${state}` });
}

describe('canary', () => {
  it('a first deploy is one revision at 100 %; the next goes 10 % → 50 % → 100 % with the route weights at each step', async () => {
    await admitRoutes(e2e.db, 'shop');
    const id = await insertRow(e2e.db, { project: 'shop', image: 'registry.example/shop:1', opsRepoId: repo.id });
    await waitStatus(e2e.db, id, 'healthy');
    expect(routeWeights(e2e.sim, 'shop-prod', 'shop')).toEqual(['shop-r1:1']);
    expect(simDeployment(e2e.sim, 'shop-prod', 'shop-r1')).toMatchObject({ image: 'registry.example/shop:1', replicas: 2, readyReplicas: 2 });
    // nothing was applied in place: the revision is the workload
    expect(simDeployment(e2e.sim, 'shop-prod', 'shop')).toBeUndefined();

    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/shop:2' where id = ${id}`);
    // 90/10 and 50/50 as route weights (basis points over their greatest common divisor)
    await waitRouteWeights(e2e.sim, 'shop-prod', 'shop', ['shop-r1:9', 'shop-r2:1']);
    await waitRouteWeights(e2e.sim, 'shop-prod', 'shop', ['shop-r1:1', 'shop-r2:1']);
    await waitRouteWeights(e2e.sim, 'shop-prod', 'shop', ['shop-r2:1']);
    const done = await waitStatus(e2e.db, id, 'healthy');
    expect(done.current_image_ref).toBe('registry.example/shop:2');
    // promoted: the old revision drained and archived
    expect(simDeployment(e2e.sim, 'shop-prod', 'shop-r1')).toBeUndefined();
    const records = await history(e2e.db, id);
    expect(records.at(-1)).toMatchObject({ action: 'deploy', status: 'succeeded', image_ref: 'registry.example/shop:2' });
    expect(records.at(-1)?.phases.map((p) => p.name)).toEqual([
      'sync', 'render', 'stage', 'warm', 'split 10 %', 'pause 500 ms', 'wait-healthy', 'split 50 %', 'pause 500 ms', 'promote', 'drain r1', 'archive r1',
    ]);
    const pause = records.at(-1)?.phases.find((p) => p.name === 'pause 500 ms');
    expect(pause?.duration_ms).toBeGreaterThanOrEqual(500);

    // a new image that cannot be pulled: the canary aborts, traffic stays on the stable revision,
    // no canary workload is left, and the action fails naming why
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/shop:doesnotexist' where id = ${id}`);
    const failed = await waitStatus(e2e.db, id, 'failed');
    expect(failed.last_error).toMatch(/ImagePullBackOff/);
    expect(failed.current_image_ref).toBe('registry.example/shop:2');
    expect(routeWeights(e2e.sim, 'shop-prod', 'shop')).toEqual(['shop-r2:1']);
    expect(simDeployment(e2e.sim, 'shop-prod', 'shop-r3')).toBeUndefined();
    expect(simDeployment(e2e.sim, 'shop-prod', 'shop-r2')).toMatchObject({ image: 'registry.example/shop:2', readyReplicas: 2 });
    const aborted = (await history(e2e.db, id)).at(-1);
    expect(aborted).toMatchObject({ status: 'failed', image_ref: 'registry.example/shop:doesnotexist' });
    expect(aborted?.phases.map((p) => [p.name, p.error === null ? 'ok' : 'error'])).toEqual([
      ['sync', 'ok'], ['render', 'ok'], ['stage', 'ok'], ['warm', 'error'], ['abort', 'ok'], ['drain r3', 'ok'], ['archive r3', 'ok'],
    ]);
  });

  it('a runtime restart in the middle of a pause resumes at that step with the weights unchanged', async () => {
    await admitRoutes(e2e.db, 'slow');
    const id = await insertRow(e2e.db, { project: 'slow', image: 'registry.example/slow:1', opsRepoId: repo.id });
    await waitStatus(e2e.db, id, 'healthy');
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/slow:2' where id = ${id}`);
    await waitRouteWeights(e2e.sim, 'slow-prod', 'slow', ['slow-r1:9', 'slow-r2:1']);
    await e2e.runtime?.stop();
    expect(routeWeights(e2e.sim, 'slow-prod', 'slow')).toEqual(['slow-r1:9', 'slow-r2:1']);
    await e2e.startRuntime({ failFastGraceMs: 1_000 });
    // the new runtime restores the pause: the weights stay until it ends, then the steps go on
    expect(routeWeights(e2e.sim, 'slow-prod', 'slow')).toEqual(['slow-r1:9', 'slow-r2:1']);
    await waitRouteWeights(e2e.sim, 'slow-prod', 'slow', ['slow-r1:1', 'slow-r2:1']);
    const done = await waitStatus(e2e.db, id, 'healthy');
    expect(done.current_image_ref).toBe('registry.example/slow:2');
    expect(routeWeights(e2e.sim, 'slow-prod', 'slow')).toEqual(['slow-r2:1']);
    const phases = (await history(e2e.db, id)).at(-1)?.phases.map((p) => p.name);
    // each step once: the restored actor went on from the pause, it did not start over
    expect(phases).toEqual([
      'sync', 'render', 'stage', 'warm', 'split 10 %', 'pause 4 s', 'wait-healthy', 'split 50 %', 'pause 1 s', 'promote', 'drain r1', 'archive r1',
    ]);
  });

  it('pause, resume, promote and abort from SQL: no new generation, the canary goes on as told', async () => {
    await admitRoutes(e2e.db, 'ctl');
    const id = await insertRow(e2e.db, { project: 'ctl', image: 'registry.example/ctl:1', opsRepoId: repo.id });
    await waitStatus(e2e.db, id, 'healthy');
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/ctl:2' where id = ${id}`);
    await waitRouteWeights(e2e.sim, 'ctl-prod', 'ctl', ['ctl-r1:9', 'ctl-r2:1']);
    // paused during the 2 s pause: when it ends, the next step waits
    await command(id, 'pause');
    await waitState(id, 'verifying.canary.steps.held');
    expect(routeWeights(e2e.sim, 'ctl-prod', 'ctl')).toEqual(['ctl-r1:9', 'ctl-r2:1']);
    await command(id, 'resume');
    await waitRouteWeights(e2e.sim, 'ctl-prod', 'ctl', ['ctl-r1:1', 'ctl-r2:1']);
    // in the 60 s pause: promote ends it now
    await command(id, 'promote');
    await waitRouteWeights(e2e.sim, 'ctl-prod', 'ctl', ['ctl-r2:1']);
    const promoted = await waitStatus(e2e.db, id, 'healthy');
    expect(promoted).toMatchObject({ current_image_ref: 'registry.example/ctl:2', generation: 2 });
    expect(simDeployment(e2e.sim, 'ctl-prod', 'ctl-r1')).toBeUndefined();

    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/ctl:3' where id = ${id}`);
    await waitRouteWeights(e2e.sim, 'ctl-prod', 'ctl', ['ctl-r2:9', 'ctl-r3:1']);
    await command(id, 'abort');
    const aborted = await waitStatus(e2e.db, id, 'failed');
    expect(aborted).toMatchObject({ current_image_ref: 'registry.example/ctl:2', generation: 3, last_error: 'canary r3 aborted by command' });
    expect(routeWeights(e2e.sim, 'ctl-prod', 'ctl')).toEqual(['ctl-r2:1']);
    expect(simDeployment(e2e.sim, 'ctl-prod', 'ctl-r3')).toBeUndefined();
    // a command with no canary in flight is consumed and changes nothing
    await command(id, 'promote');
    expect((await history(e2e.db, id)).map((h) => h.status)).toEqual(['succeeded', 'succeeded', 'failed']);
  });

  it('a deployment that declares a canary after releases applied in place: the first canary takes all traffic, then the in-place workload goes', async () => {
    await admitRoutes(e2e.db, 'switch');
    const id = await insertRow(e2e.db, { project: 'switch', image: 'registry.example/switch:1', opsRepoId: repo.id });
    await waitStatus(e2e.db, id, 'healthy');
    expect(simDeployment(e2e.sim, 'switch-prod', 'switch')).toMatchObject({ image: 'registry.example/switch:1', readyReplicas: 2 });
    expect(routeWeights(e2e.sim, 'switch-prod', 'switch')).toEqual(['switch:1']);
    const canary = { keelson: { strategy: { canary: { steps: [{ setWeight: 5000 }] } } } };
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/switch:2', values_override = ${sql.jsonb(canary)} where id = ${id}`);
    const done = await waitStatus(e2e.db, id, 'healthy');
    expect(done.current_image_ref).toBe('registry.example/switch:2');
    expect(routeWeights(e2e.sim, 'switch-prod', 'switch')).toEqual(['switch-r2:1']);
    expect(simDeployment(e2e.sim, 'switch-prod', 'switch')).toBeUndefined();
    expect((await history(e2e.db, id)).at(-1)?.phases.map((p) => p.name)).toEqual(['sync', 'render', 'stage', 'warm', 'promote', 'remove in place']);
  });

  it('with auto_rollback an aborted canary is recorded failed and rolled back as a revision; the row gets the release back', async () => {
    await admitRoutes(e2e.db, 'auto');
    const id = await insertRow(e2e.db, { project: 'auto', image: 'registry.example/auto:1', opsRepoId: repo.id, autoRollback: true });
    await waitStatus(e2e.db, id, 'healthy');
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/auto:doesnotexist' where id = ${id}`);
    // the rollback's write-back is a new generation, adopted without a rollout
    const back = await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.image_ref === 'registry.example/auto:1' && r.observed_generation === r.generation, 'auto rolled back');
    expect(back.current_image_ref).toBe('registry.example/auto:1');
    expect((await history(e2e.db, id)).map((h) => [h.action, h.status, h.image_ref])).toEqual([
      ['deploy', 'succeeded', 'registry.example/auto:1'],
      ['deploy', 'failed', 'registry.example/auto:doesnotexist'],
      ['auto-rollback', 'succeeded', 'registry.example/auto:1'],
    ]);
    // the release again as a revision of its own, all traffic at once; nothing of the canary left
    expect(routeWeights(e2e.sim, 'auto-prod', 'auto')).toEqual(['auto-r3:1']);
    expect(simDeployment(e2e.sim, 'auto-prod', 'auto-r1')).toBeUndefined();
    expect(simDeployment(e2e.sim, 'auto-prod', 'auto-r2')).toBeUndefined();
    expect(simDeployment(e2e.sim, 'auto-prod', 'auto')).toBeUndefined();
  });

  it('a canary cut short by a newer generation: the next canary shifts from the stable revision, and its end sweeps the cut one', async () => {
    await admitRoutes(e2e.db, 'cut');
    const id = await insertRow(e2e.db, { project: 'cut', image: 'registry.example/cut:1', opsRepoId: repo.id });
    await waitStatus(e2e.db, id, 'healthy');
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/cut:2' where id = ${id}`);
    await waitRouteWeights(e2e.sim, 'cut-prod', 'cut', ['cut-r1:9', 'cut-r2:1']);
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/cut:3' where id = ${id}`);
    await waitRouteWeights(e2e.sim, 'cut-prod', 'cut', ['cut-r1:9', 'cut-r3:1']);
    const done = await waitStatus(e2e.db, id, 'healthy');
    expect(done.current_image_ref).toBe('registry.example/cut:3');
    expect(routeWeights(e2e.sim, 'cut-prod', 'cut')).toEqual(['cut-r3:1']);
    for (const gone of ['cut-r1', 'cut-r2']) expect(simDeployment(e2e.sim, 'cut-prod', gone)).toBeUndefined();
    expect((await history(e2e.db, id)).at(-1)?.phases.find((p) => p.name === 'archive r1')?.detail).toBe('r1 archived; swept r2');
  });
});
