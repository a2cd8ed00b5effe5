// The statechart without I/O: table-driven transitions with the pure `transition()`, and a walk
// of the whole machine that fails when a transition exists that no test reaches.
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, getMicrosteps, initialTransition, transition, type AnyEventObject, type TransitionDefinition } from 'xstate';
import { getAdjacencyMap } from 'xstate/graph';
import {
  backoffMs,
  DEFAULT_MACHINE_CONFIG,
  deploymentMachine,
  MACHINE_VERSION,
  migratePersistedSnapshot,
  specKey,
  specNamespace,
  restingDriftCheck,
  restingDueAt,
  tickDueAt,
  tickMatters,
  topLevelState,
  type DeploymentEvent,
  type ApplyInput,
  type DeploymentSnapshot,
  type Desired,
  type PruneInput,
  type Strategy,
  type TargetInput,
} from '../../machines/deployment.machine.ts';

const ID = '00000000-0000-4000-8000-000000000001';
const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);

const desired = (generation: number, overrides: Partial<Desired> = {}): Desired => ({
  generation,
  desiredStatus: 'active',
  imageRef: `shop:${generation}`,
  project: 'shop',
  environment: 'prod',
  namespace: 'shop-prod',
  opsRepoId: null,
  manifestPath: null,
  valuesOverride: {},
  autoRollback: false,
  ...overrides,
});

type AnyEvent = DeploymentEvent | AnyEventObject;
const changed = (d: Desired): AnyEvent => ({ type: 'DESIRED_CHANGED', desired: d });
const tick = (now: number): AnyEvent => ({ type: 'TICK', now });
const done = (id: string, value: unknown, startedAt = T0, finishedAt = T0 + 100): AnyEvent => ({
  type: `xstate.done.actor.${id}`,
  output: { value, startedAt, finishedAt },
});
const fail = (id: string, kind: 'transient' | 'terminal', message = `${id} broke`, at = T0 + 200): AnyEvent => ({
  type: `xstate.error.actor.${id}`,
  error: { kind, code: 'test', message, startedAt: at - 50, at },
});

const health = (status: string, message = `Deployment shop: pod shop-1 is in CrashLoopBackOff.`, at = T0 + 1_000): AnyEvent => ({
  type: 'HEALTH',
  status,
  message,
  at,
});

// Every transition a test takes is recorded, so the coverage test can compare with the machine.
const covered = new Set<TransitionDefinition<never, never>>();

/**
 * The eventless (`always`) transitions an event's microsteps took: getTransitionData sees only
 * the event's own. Told apart by source and target (each `always` of a state has its own target).
 */
function coverEventless(snapshot: DeploymentSnapshot, event: AnyEvent): void {
  const steps = getMicrosteps(deploymentMachine, snapshot, event as DeploymentEvent).map(([s]) => s);
  const dotted = (node: { path: string[] }) => node.path.join('.');
  for (let i = 0; i + 1 < steps.length; i++) {
    const [before, after] = [steps[i]!, steps[i + 1]!];
    for (const t of eventlessTransitions()) {
      const target = t.target?.[0];
      if (target && before.matches(dotted(t.source) as never) && after.matches(dotted(target) as never)) covered.add(t as never);
    }
  }
}

let eventless: TransitionDefinition<never, never>[] | undefined;
function eventlessTransitions(): TransitionDefinition<never, never>[] {
  if (eventless) return eventless;
  const found: TransitionDefinition<never, never>[] = [];
  const visit = (node: typeof deploymentMachine.root) => {
    for (const t of node.always ?? []) found.push(t as never);
    for (const child of Object.values(node.states)) visit(child);
  };
  visit(deploymentMachine.root);
  return (eventless = found);
}

function run(events: AnyEvent[], from?: DeploymentSnapshot): DeploymentSnapshot {
  let snapshot = from ?? initialTransition(deploymentMachine, { deploymentId: ID })[0];
  for (const event of events) {
    for (const t of deploymentMachine.getTransitionData(snapshot, event as DeploymentEvent)) covered.add(t as never);
    coverEventless(snapshot, event);
    snapshot = transition(deploymentMachine, snapshot, event as DeploymentEvent)[0];
  }
  return snapshot;
}

const plan = { id: 'plan-1', hash: 'a'.repeat(64), refs: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'shop' }], count: 1 };
const applied = [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'shop', namespace: 'shop-prod' }];
const toHealthy = (generation = 1, extra: Partial<Desired> = {}): AnyEvent[] => [
  changed(desired(generation, extra)),
  done('sync', { sha: 'abc123' }),
  done('render', { plan, files: ['shop/deployment.yaml'] }),
  done('apply', { applied }),
  done('verify', { message: 'all 1 workload(s) are current' }),
];
const healthy = run(toHealthy());

describe('deployment machine: transitions', () => {
  it.each([
    ['a new active row starts syncing', [changed(desired(1))], { syncing: { fetching: 'running' } }],
    ['sync done renders', [changed(desired(1)), done('sync', { sha: 'abc' })], { syncing: { rendering: 'running' } }],
    ['render done applies', [changed(desired(1)), done('sync', { sha: 'a' }), done('render', { plan, files: [] })], { applying: 'running' }],
    ['apply done verifies', toHealthy().slice(0, 4), { verifying: 'running' }],
    ['verify done is healthy', toHealthy(), { healthy: 'idle' }],
    ['a stopped row scales to zero', [changed(desired(1, { desiredStatus: 'stopped' }))], { stopped: { scaling: 'running' } }],
    ['a rollback row looks for a target', [changed(desired(1, { desiredStatus: 'rollback' }))], { 'rolling-back': { finding: 'running' } }],
    ['a terminal render error fails', [changed(desired(1)), done('sync', { sha: 'a' }), fail('render', 'terminal')], { failed: 'idle' }],
    ['a transient apply error backs off', [...toHealthy().slice(0, 3), fail('apply', 'transient')], { applying: 'backoff' }],
    ['an older or equal generation is ignored', [...toHealthy().slice(0, 3), changed(desired(1, { imageRef: 'x' }))], { applying: 'running' }],
    ['a newer generation supersedes applying', [...toHealthy().slice(0, 3), changed(desired(2))], { syncing: { fetching: 'running' } }],
    ['a newer generation supersedes syncing', [changed(desired(1)), changed(desired(2))], { syncing: { fetching: 'running' } }],
  ] as const)('%s', (_name, events, expected) => {
    expect(run([...events]).value).toEqual(expected);
  });

  it('records a succeeded deploy with its four phases and timings', () => {
    const { context } = healthy;
    expect(context.completed).toMatchObject({ action: 'deploy', status: 'succeeded', imageRef: 'shop:1', sha: 'abc123', generation: 1 });
    expect(context.completed?.phases.map((p) => p.name)).toEqual(['sync', 'render', 'apply', 'verify']);
    expect(context.completed?.phases.every((p) => p.duration_ms === 100)).toBe(true);
    expect(context.deployed).toMatchObject({ imageRef: 'shop:1', sha: 'abc123', stopped: false, applied });
    expect(context.observedGeneration).toBe(1);
    expect(context.work).toBeNull();
    expect(topLevelState(healthy.value)).toBe('healthy');
    // rendered manifests are not kept once applied: snapshots stay small
    expect(JSON.stringify(healthy.context).length).toBeLessThan(4000);
  });

  it('a superseding generation gets a new action id and the new image', () => {
    const s = run([...toHealthy(1).slice(0, 3), changed(desired(2))]);
    expect(s.context.work).toMatchObject({ generation: 2, imageRef: 'shop:2', action: 'deploy', actionId: '2-2-deploy' });
    expect(s.context.observedGeneration).toBe(2);
  });

  it('retries a transient error only after its backoff, on TICK', () => {
    const failedAt = T0 + 200;
    const s = run([...toHealthy().slice(0, 3), fail('apply', 'transient', 'API server unreachable', failedAt)]);
    const retryAt = s.context.work?.retryAt ?? 0;
    expect(retryAt).toBe(failedAt + backoffMs(DEFAULT_MACHINE_CONFIG, 1, `${ID}:${s.context.work?.actionId}`));
    expect(s.context.lastError).toMatch(/API server unreachable \(attempt 1, retrying\)/);
    expect(run([tick(retryAt - 1)], s).value).toEqual({ applying: 'backoff' });
    const retried = run([tick(retryAt)], s);
    expect(retried.value).toEqual({ applying: 'running' });
    // a second transient failure waits longer
    const again = run([fail('apply', 'transient', 'still down', retryAt + 10)], retried);
    expect(again.context.work?.attempt).toBe(2);
  });

  it.each([
    [1, 500, 1000],
    [2, 1000, 2000],
    [3, 2000, 4000],
    [20, 150_000, 300_000],
  ])('backoff for attempt %i lies in [%i, %i) ms', (attempt, min, max) => {
    const ms = backoffMs(DEFAULT_MACHINE_CONFIG, attempt, 'seed');
    expect(ms).toBeGreaterThanOrEqual(min);
    expect(ms).toBeLessThan(max);
    expect(backoffMs(DEFAULT_MACHINE_CONFIG, attempt, 'seed')).toBe(ms);
  });

  it('fails a verification that outlives its deadline', () => {
    const verifying = run(toHealthy().slice(0, 4));
    const deadline = verifying.context.work?.verifyDeadline ?? 0;
    expect(deadline).toBe(T0 + 100 + DEFAULT_MACHINE_CONFIG.verifyTimeoutMs);
    expect(run([tick(deadline - 1)], verifying).value).toEqual({ verifying: 'running' });
    const timedOut = run([tick(deadline)], verifying);
    expect(timedOut.value).toEqual({ failed: 'idle' });
    expect(timedOut.context.lastError).toMatch(/verification timed out after 300 s/);
    expect(timedOut.context.completed).toMatchObject({ status: 'failed', action: 'deploy' });
  });

  it('a verify timeout while backing off also fails, and auto-rolls back when enabled', () => {
    const backingOff = run([...toHealthy(2).slice(0, 4), fail('verify', 'transient')], healthy);
    const deadline = backingOff.context.work?.verifyDeadline ?? 0;
    expect(run([tick(deadline)], backingOff).value).toEqual({ failed: 'idle' });
    const auto = run([...toHealthy(2, { autoRollback: true }).slice(0, 4)], healthy);
    expect(run([tick(auto.context.work?.verifyDeadline ?? 0)], auto).value).toEqual({ 'rolling-back': { finding: 'running' } });
    const autoBackoff = run([fail('verify', 'transient')], auto);
    expect(run([tick(auto.context.work?.verifyDeadline ?? 0)], autoBackoff).value).toEqual({ 'rolling-back': { finding: 'running' } });
  });

  it('a failed verify with auto_rollback records the failure and rolls back to the previous image', () => {
    const failedVerify = run([...toHealthy(2, { autoRollback: true }).slice(0, 4), fail('verify', 'terminal', 'pod shop-x: ImagePullBackOff')], healthy);
    expect(failedVerify.value).toEqual({ 'rolling-back': { finding: 'running' } });
    expect(failedVerify.context.completed).toMatchObject({ action: 'deploy', status: 'failed', imageRef: 'shop:2' });
    expect(failedVerify.context.work?.action).toBe('auto-rollback');
    expect(failedVerify.context.lastError).toMatch(/ImagePullBackOff/);
    const back = run(
      [
        done('findRollbackTarget', { imageRef: 'shop:1', sha: 'abc123' }),
        done('sync', { sha: 'abc123' }),
        done('render', { plan, files: [] }),
        done('apply', { applied }),
        done('verify', { message: 'ok' }),
      ],
      failedVerify,
    );
    expect(back.value).toEqual({ healthy: 'idle' });
    expect(back.context.completed).toMatchObject({ action: 'auto-rollback', status: 'succeeded', imageRef: 'shop:1', writeBack: true });
    expect(back.context.deployed?.imageRef).toBe('shop:1');
  });

  it('a terminal verify failure of a first deploy with auto_rollback fails: nothing to roll back to', () => {
    const s = run([...toHealthy(1, { autoRollback: true }).slice(0, 4), fail('verify', 'terminal')]);
    expect(s.value).toEqual({ failed: 'idle' });
  });

  it('rollback without a previous healthy image fails with a clear error', () => {
    const s = run([changed(desired(2, { desiredStatus: 'rollback' })), done('findRollbackTarget', null)], healthy);
    expect(s.value).toEqual({ failed: 'idle' });
    expect(s.context.lastError).toMatch(/no previous healthy image to roll back to/);
    expect(s.context.completed).toMatchObject({ action: 'rollback', status: 'failed' });
  });

  it('rollback deploys the target and then adopts its own write-back without redeploying', () => {
    const deployed2 = run(toHealthy(2), healthy);
    const rolledBack = run(
      [
        changed(desired(3, { desiredStatus: 'rollback' })),
        done('findRollbackTarget', { imageRef: 'shop:1', sha: 'abc123' }),
        done('sync', { sha: 'abc123' }),
        done('render', { plan, files: [] }),
        done('apply', { applied }),
        done('verify', { message: 'ok' }),
      ],
      deployed2,
    );
    expect(rolledBack.context.completed).toMatchObject({ action: 'rollback', status: 'succeeded', imageRef: 'shop:1', writeBack: true });
    // the journal wrote image_ref = shop:1, desired_status = active: generation 4 arrives
    const adopted = run([changed(desired(4, { imageRef: 'shop:1' }))], rolledBack);
    expect(adopted.value).toEqual({ healthy: 'idle' });
    expect(adopted.context.observedGeneration).toBe(4);
    // a genuinely different desired state is deployed
    expect(run([changed(desired(5, { imageRef: 'shop:9' }))], adopted).value).toEqual({ syncing: { fetching: 'running' } });
  });

  it('stop scales to zero, and active again resumes', () => {
    const stopped = run([changed(desired(2, { desiredStatus: 'stopped' })), done('scale', { message: 'scaled 1 workload(s) to 0' })], healthy);
    expect(stopped.value).toEqual({ stopped: 'idle' });
    expect(stopped.context.completed).toMatchObject({ action: 'stop', status: 'succeeded', imageRef: 'shop:1' });
    expect(stopped.context.deployed?.stopped).toBe(true);
    const resumed = run([changed(desired(3, { imageRef: 'shop:1' }))], stopped);
    expect(resumed.value).toEqual({ syncing: { fetching: 'running' } });
    expect(resumed.context.work?.action).toBe('resume');
  });

  // What the cluster runs is what the row says (current_image_ref mirrors `deployed`): once an
  // apply succeeded, its image runs even if a newer generation cuts the verification short.
  it.each([
    ['a stop', desired(3, { desiredStatus: 'stopped' }), { stopped: { scaling: 'running' } }, 'stop', /^stopped by generation 3 \(stop\)/],
    ['a new deploy', desired(3), { syncing: { fetching: 'running' } }, 'deploy', /^superseded by generation 3 \(deploy\)/],
    ['a rollback', desired(3, { desiredStatus: 'rollback' }), { 'rolling-back': { finding: 'running' } }, 'rollback', /^superseded by generation 3 \(rollback\)/],
  ] as const)('%s cutting a verification short keeps the applied image as deployed, and records the cut-short action as failed', (_name, next, state, action, error) => {
    const verifying = run(toHealthy(2).slice(0, 4), healthy);
    expect(verifying.value).toEqual({ verifying: 'running' });
    const cut = run([changed(next)], verifying);
    expect(cut.value).toEqual(state);
    expect(cut.context.work?.action).toBe(action);
    expect(cut.context.deployed).toMatchObject({ imageRef: 'shop:2', sha: 'abc123', stopped: false, applied, spec: specKey(desired(2)) });
    expect(cut.context.deployed?.deployedAt).toBe(new Date(T0 + 100).toISOString());
    // its history row: not succeeded, and it says why
    expect(cut.context.completed).toMatchObject({ action: 'deploy', status: 'superseded', imageRef: 'shop:2', generation: 2, writeBack: false });
    expect(cut.context.completed?.error).toMatch(error);
    expect(cut.context.completed?.error).toMatch(/shop:2 was applied but not verified/);
    expect(cut.context.completed?.phases.map((p) => p.name)).toEqual(['sync', 'render', 'apply']);
    // the action's own outcome is not an error of the row
    expect(cut.context.lastError).toBeNull();
  });

  it('teardown: from any state, deletes the last release \u222a the interrupted action\'s objects, records a teardown row', () => {
    const torn = run([changed(desired(2, { desiredStatus: 'deleted' })), done('teardown', { message: 'deleted 1 object(s)' })], healthy);
    expect(torn.value).toBe('deleted');
    expect(torn.context.deployed).toBeNull();
    expect(torn.context.completed).toMatchObject({
      action: 'teardown', status: 'succeeded', imageRef: 'shop:1', generation: 2, inventory: applied, error: null,
    });
    expect(torn.context.completed?.phases.map((p) => [p.name, p.detail])).toEqual([['teardown', 'deleted 1 object(s)']]);

    // mid-apply of a new image with another object planned: both inventories are deleted
    const other = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', name: 'shop-reader' };
    const applying = run([changed(desired(2)), done('sync', { sha: 'a' }), done('render', { plan: { ...plan, refs: [other] }, files: [] })], healthy);
    expect(applying.value).toEqual({ applying: 'running' });
    const tearing = run([changed(desired(3, { desiredStatus: 'deleted' }))], applying);
    expect(tearing.value).toEqual({ 'tearing-down': 'running' });
    expect(tearing.context.work).toMatchObject({ action: 'teardown', applied: [...applied, other] });
    // transient failures back off and retry; a terminal one fails with a teardown row
    const backingOff = run([fail('teardown', 'transient')], tearing);
    expect(backingOff.value).toEqual({ 'tearing-down': 'backoff' });
    const retried = run([tick(backingOff.context.work!.retryAt!)], backingOff);
    expect(retried.value).toEqual({ 'tearing-down': 'running' });
    const failed = run([fail('teardown', 'terminal', 'forbidden')], retried);
    expect(failed.value).toEqual({ failed: 'idle' });
    expect(failed.context.completed).toMatchObject({ action: 'teardown', status: 'failed', error: 'forbidden', inventory: null });
    expect(failed.context.completed?.phases.map((p) => p.name)).toEqual(['teardown']);

    // a verification cut short by the teardown is recorded superseded, its objects torn down too
    const verifying = run(toHealthy(2).slice(0, 4), healthy);
    const cut = run([changed(desired(3, { desiredStatus: 'deleted' }))], verifying);
    expect(cut.context.completed).toMatchObject({ action: 'deploy', status: 'superseded' });
    expect(cut.context.completed?.error).toMatch(/^superseded by generation 3 \(teardown\)/);
  });

  it('apply names the namespace the deployed release was rendered into (a changed namespace prunes the old objects)', () => {
    const applyInput = (snapshot: DeploymentSnapshot) => (snapshot.children.apply?.getSnapshot() as { input?: ApplyInput } | undefined)?.input;
    const first = run(toHealthy(1).slice(0, 3));
    expect(applyInput(first)?.previousNamespace).toBeNull();
    const moving = run([changed(desired(2, { namespace: 'shop-new' })), done('sync', { sha: 'a' }), done('render', { plan, files: [] })], healthy);
    expect(applyInput(moving)).toMatchObject({ namespace: 'shop-new', previousNamespace: 'shop-prod', previous: applied });
    expect(specNamespace('')).toBeNull();
  });

  it('a stop that cut a verification short leaves the applied image deployed, scaled to zero', () => {
    const verifying = run(toHealthy(2).slice(0, 4), healthy);
    const stopped = run([changed(desired(3, { desiredStatus: 'stopped' })), done('scale', { message: 'scaled 1 workload(s) to 0' })], verifying);
    expect(stopped.value).toEqual({ stopped: 'idle' });
    expect(stopped.context.deployed).toMatchObject({ imageRef: 'shop:2', stopped: true, applied });
    expect(stopped.context.completed).toMatchObject({ action: 'stop', status: 'succeeded', imageRef: 'shop:2' });
  });

  it('a verification cut short while backing off, or a rollback\'s, counts as applied too', () => {
    const backingOff = run([...toHealthy(2).slice(0, 4), fail('verify', 'transient')], healthy);
    expect(run([changed(desired(3, { desiredStatus: 'stopped' }))], backingOff).context.deployed?.imageRef).toBe('shop:2');
    const rollbackVerifying = run(
      [
        changed(desired(3, { desiredStatus: 'rollback', imageRef: 'shop:2' })),
        done('findRollbackTarget', { imageRef: 'shop:0', sha: 'old' }),
        done('sync', { sha: 'old' }),
        done('render', { plan, files: [] }),
        done('apply', { applied }),
      ],
      run(toHealthy(2), healthy),
    );
    expect(rollbackVerifying.value).toEqual({ 'rolling-back': { verifying: 'running' } });
    const cut = run([changed(desired(4, { desiredStatus: 'stopped' }))], rollbackVerifying);
    expect(cut.context.deployed).toMatchObject({ imageRef: 'shop:0', sha: 'old', spec: specKey(desired(3, { imageRef: 'shop:0' })) });
    expect(cut.context.completed).toMatchObject({ action: 'rollback', status: 'superseded', imageRef: 'shop:0', writeBack: false });
  });

  it.each([
    ['syncing', toHealthy(2).slice(0, 1)],
    ['rendering', toHealthy(2).slice(0, 2)],
    ['applying', toHealthy(2).slice(0, 3)],
  ] as const)('a generation that supersedes %s (nothing applied yet) leaves deployed as it was and records nothing', (_name, events) => {
    const cut = run([changed(desired(3, { desiredStatus: 'stopped' }))], run([...events], healthy));
    expect(cut.context.deployed).toEqual(healthy.context.deployed);
    expect(cut.context.completed).toBeNull();
  });

  // A stop that cut an action short mid-apply (a crash, or a newer generation) does not know
  // whether that apply changed the workloads: it records the image they run (the chaos suite's
  // kill -9 in the middle of an apply, then a stop, found the row naming the old image).
  it.each([
    ['the interrupted apply landed', 'applying', ['shop:2'], 'shop:2', 'abc123'],
    ['the interrupted apply did not land', 'applying', ['shop:1'], 'shop:1', 'abc123'],
    ['nothing was scaled', 'applying', [], 'shop:1', 'abc123'],
    ['an old effect reports no images', 'applying', undefined, 'shop:1', 'abc123'],
    ['the workloads run something else', 'applying', ['other:9'], 'shop:1', 'abc123'],
    ['cut short while syncing, the workloads run the new image', 'syncing', ['shop:2', 'sidecar:1'], 'shop:2', 'abc123'],
  ] as const)('a stop after an interrupted apply (%s) records the image the workloads run', (_name, at, images, imageRef, sha) => {
    const events = at === 'applying' ? toHealthy(2).slice(0, 3) : toHealthy(2).slice(0, 1);
    const stopping = run([changed(desired(3, { desiredStatus: 'stopped', imageRef: 'shop:2' }))], run([...events], healthy));
    // an action cut short before its render cannot have applied anything
    expect(stopping.context.work?.interrupted).toEqual(at === 'applying' ? { imageRef: 'shop:2', sha: 'abc123', head: 'abc123' } : null);
    const stopped = run([done('scale', { message: 'scaled', images })], stopping);
    expect(stopped.value).toEqual({ stopped: 'idle' });
    expect(stopped.context.deployed).toMatchObject({ imageRef, sha, stopped: true });
    expect(stopped.context.completed).toMatchObject({ action: 'stop', status: 'succeeded', imageRef });
  });

  it('a failed deploy then a stop records the failed image when the workloads run it', () => {
    const failedDeploy = run([...toHealthy(2).slice(0, 3), fail('apply', 'terminal')], healthy);
    expect(failedDeploy.value).toEqual({ failed: 'idle' });
    const stopped = run([changed(desired(3, { desiredStatus: 'stopped', imageRef: 'shop:2' })), done('scale', { message: 'scaled', images: ['shop:2'] })], failedDeploy);
    expect(stopped.context.deployed).toMatchObject({ imageRef: 'shop:2', sha: 'abc123', stopped: true });
  });

  // The chaos suite's kill9 found the row naming the old image after: an apply of shop:2 cut
  // short (a crash, then a newer generation), a rollback that failed, then a stop of workloads
  // running shop:2. A failed action hands what it may have left running to the next one.
  it.each([
    ['an apply cut short, then a rollback with no target', () => run([changed(desired(3, { desiredStatus: 'rollback', imageRef: 'shop:9' })), done('findRollbackTarget', null)], run(toHealthy(2).slice(0, 3), healthy))],
    ['an apply cut short, then a deploy that fails to sync', () => run([changed(desired(3, { imageRef: 'shop:9' })), fail('sync', 'terminal')], run(toHealthy(2).slice(0, 3), healthy))],
    ['a deploy whose verification failed, then a deploy that fails to sync', () => run([changed(desired(3, { imageRef: 'shop:9' })), fail('sync', 'terminal')], run([...toHealthy(2).slice(0, 4), fail('verify', 'terminal')], healthy))],
  ] as const)('a stop after a failed action records what runs: %s', (_name, make) => {
    const failed = make();
    expect(failed.value).toEqual({ failed: 'idle' });
    expect(failed.context.unsettled).toEqual({ imageRef: 'shop:2', sha: 'abc123', head: 'abc123' });
    const stopping = run([changed(desired(4, { desiredStatus: 'stopped', imageRef: 'shop:9' }))], failed);
    expect(stopping.context.work?.interrupted).toEqual({ imageRef: 'shop:2', sha: 'abc123', head: 'abc123' });
    expect(stopping.context.unsettled).toBeNull();
    const stopped = run([done('scale', { message: 'scaled', images: ['shop:2'] })], stopping);
    expect(stopped.context.deployed).toMatchObject({ imageRef: 'shop:2', sha: 'abc123', stopped: true });
    // the workloads ran the release after all: it is kept
    expect(run([done('scale', { message: 'scaled', images: ['shop:1'] })], stopping).context.deployed).toMatchObject({ imageRef: 'shop:1', stopped: true });
  });

  it('a chain of interruptions keeps what the first one may have applied, and a finished apply forgets it', () => {
    const deploying = run([changed(desired(3, { imageRef: 'shop:3' }))], run(toHealthy(2).slice(0, 3), healthy));
    expect(deploying.context.work?.interrupted).toMatchObject({ imageRef: 'shop:2' });
    const stopping = run([changed(desired(4, { desiredStatus: 'stopped', imageRef: 'shop:3' }))], deploying);
    const again = run([changed(desired(5, { desiredStatus: 'stopped', imageRef: 'shop:3' })), done('scale', { message: 'scaled', images: ['shop:2'] })], stopping);
    expect(again.context.deployed).toMatchObject({ imageRef: 'shop:2', stopped: true });
    const applied3 = run([done('sync', { sha: 'def' }), done('render', { plan, files: [] }), done('apply', { applied })], deploying);
    expect(applied3.context.work?.interrupted).toBeNull();
  });

  // The runtime skips a TICK where tickMatters says false: that must be exactly a TICK that
  // would change nothing, checked here against the machine for every resting state.
  it.each([
    ['idle', () => run([])],
    ['healthy, drift check not due', () => healthy],
    ['failed', () => run([...toHealthy(2).slice(0, 3), fail('apply', 'terminal')], healthy)],
    ['stopped', () => run([changed(desired(2, { desiredStatus: 'stopped' })), done('scale', { message: 'scaled', images: ['shop:1'] })], healthy)],
  ] as const)('tickMatters: a TICK it skips (%s) changes nothing', (_name, make) => {
    const snapshot = make();
    const now = T0 + 1_000;
    expect(tickMatters(snapshot, now)).toBe(false);
    // the runtime's schedule does not visit it before then (never, when null)
    const due = tickDueAt(snapshot);
    expect(due === null || due > now).toBe(true);
    const after = transition(deploymentMachine, snapshot, { type: 'TICK', now } as DeploymentEvent)[0];
    expect(after.value).toEqual(snapshot.value);
    expect(after.context).toEqual(snapshot.context);
  });

  it.each([
    ['healthy, drift check due', () => healthy, (s: DeploymentSnapshot) => s.context.driftCheckAt ?? 0],
    ['syncing (retries and deadlines)', () => run(toHealthy(2).slice(0, 1), healthy), () => T0],
    ['degraded (its grace)', () => run([health('Failed')], healthy), () => T0 + 1_000],
  ] as const)('tickMatters: a TICK it sends (%s)', (_name, make, at) => {
    const snapshot = make();
    expect(tickMatters(snapshot, at(snapshot))).toBe(true);
    expect(tickDueAt(snapshot)).toBeLessThanOrEqual(at(snapshot));
  });

  it('tickDueAt: a healthy deployment is due at its drift check, not a moment before', () => {
    const due = healthy.context.driftCheckAt ?? 0;
    expect(tickDueAt(healthy)).toBe(due);
    // before it a TICK changes nothing, at it the check starts
    expect(run([tick(due - 1)], healthy)).toMatchObject({ value: healthy.value, context: healthy.context });
    expect(run([tick(due)], healthy).value).toEqual({ healthy: 'checking' });
  });

  // The runtime runs a resting deployment's routine drift check itself (restingDriftCheck) and
  // moves its next time (checkedUntil); the snapshot's own driftCheckAt counts when later.
  it.each([
    ['healthy, not yet due', () => healthy, (due: number) => due - 1, null, false],
    ['healthy, due', () => healthy, (due: number) => due, null, true],
    ['healthy, checked by the runtime until later', () => healthy, (due: number) => due + 5_000, (due: number) => due + 60_000, false],
    ['healthy, the runtime’s next check due', () => healthy, (due: number) => due + 60_000, (due: number) => due + 60_000, true],
    ['healthy, an older runtime check behind the snapshot’s own', () => healthy, (due: number) => due - 1, (due: number) => due - 30_000, false],
    ['checking (the machine’s own check)', () => run([tick(healthy.context.driftCheckAt ?? 0)], healthy), (due: number) => due + 1, null, false],
    ['degraded', () => run([health('Failed')], healthy), (due: number) => due + 1, null, false],
    ['syncing', () => run(toHealthy(2).slice(0, 1), healthy), (due: number) => due + 1, null, false],
  ] as const)('restingDriftCheck: %s', (_name, make, at, until, expected) => {
    const snapshot = make();
    const due = healthy.context.driftCheckAt ?? 0;
    const checkedUntil = until ? until(due) : null;
    const input = restingDriftCheck(snapshot, at(due), checkedUntil);
    expect(input !== null).toBe(expected);
    if (input) expect(input).toEqual({ deploymentId: snapshot.context.deploymentId, desired: snapshot.context.desired, deployed: snapshot.context.deployed });
    // the schedule visits it exactly when the check is due
    const scheduled = restingDueAt(snapshot, checkedUntil);
    if (restingDriftCheck(snapshot, at(due), checkedUntil) !== null) expect(scheduled).toBeLessThanOrEqual(at(due));
    else if (scheduled !== null && scheduled > Number.NEGATIVE_INFINITY) expect(scheduled).toBeGreaterThan(at(due));
  });

  it('restingDueAt: the later of the snapshot’s drift check and the runtime’s; other states as tickDueAt', () => {
    const due = healthy.context.driftCheckAt ?? 0;
    expect(restingDueAt(healthy, null)).toBe(due);
    expect(restingDueAt(healthy, due + 60_000)).toBe(due + 60_000);
    expect(restingDueAt(healthy, due - 60_000)).toBe(due);
    const syncing = run(toHealthy(2).slice(0, 1), healthy);
    expect(restingDueAt(syncing, due + 60_000)).toBe(Number.NEGATIVE_INFINITY);
    expect(restingDueAt(run([]), due + 60_000)).toBeNull();
  });

  it('checks healthy deployments for drift on TICK and repairs drift', () => {
    expect(healthy.context.driftCheckAt).toBe(T0 + 100 + DEFAULT_MACHINE_CONFIG.driftIntervalMs);
    const due = healthy.context.driftCheckAt ?? 0;
    expect(run([tick(due - 1)], healthy).value).toEqual({ healthy: 'idle' });
    const checking = run([tick(due)], healthy);
    expect(checking.value).toEqual({ healthy: 'checking' });
    const clean = run([done('checkDrift', { drifted: false, reason: null })], checking);
    expect(clean.value).toEqual({ healthy: 'idle' });
    const repaired = run([done('checkDrift', { drifted: true, reason: 'ops repo moved to def456' })], checking);
    expect(repaired.value).toEqual({ syncing: { fetching: 'running' } });
    expect(repaired.context.work).toMatchObject({ action: 'deploy', triggeredBy: 'drift: ops repo moved to def456', generation: 1 });
    // a drift repair does not force a git fetch; a desired-state change does
    expect(run([changed(desired(2))], healthy).context.work?.triggeredBy).toBe('desired-state');
    expect(repaired.context.work?.release).toBeNull();
  });

  it('repairs live drift on the deployed commit (pinned), so a rollback to an older commit stays on it', () => {
    const checking = run([tick(healthy.context.driftCheckAt ?? 0)], healthy);
    const repaired = run([done('checkDrift', { drifted: true, reason: 'Deployment shop changed (.spec.replicas)', pin: 'old' })], checking);
    expect(repaired.context.work).toMatchObject({ action: 'deploy', triggeredBy: 'drift: Deployment shop changed (.spec.replicas)', release: { sha: 'old' } });
    // the sync step renders the pinned commit and reports the head apart
    const synced = run([done('sync', { sha: 'old', head: 'new' })], repaired);
    expect(synced.context.work).toMatchObject({ sha: 'old', head: 'new' });
  });

  it('specKey ignores key order and the parts that do not change what is rendered', () => {
    const a = desired(1, { valuesOverride: { a: 1, b: { c: 2, d: 3 } } });
    const b = desired(7, { imageRef: 'shop:1', valuesOverride: { b: { d: 3, c: 2 }, a: 1 }, autoRollback: true });
    expect(specKey(a)).toBe(specKey(b));
    expect(specKey(a)).not.toBe(specKey({ ...a, imageRef: 'other' }));
  });
});

describe('deployment machine: live health after healthy', () => {
  const GRACE = DEFAULT_MACHINE_CONFIG.degradedGraceMs;
  const degraded = run([health('Failed')], healthy);

  it.each([
    ['a Failed observation of a healthy release degrades it', [health('Failed')], { failed: { degraded: 'watching' } }],
    ['InProgress (a pod rescheduling) does not', [health('InProgress')], { healthy: 'idle' }],
    ['Unknown (the cache is unavailable) does not', [health('Unknown')], { healthy: 'idle' }],
    ['a Current observation after degraded recovers', [health('Failed'), health('Current')], { healthy: 'idle' }],
    ['InProgress while degraded stays degraded', [health('Failed'), health('InProgress')], { failed: { degraded: 'watching' } }],
    // the drift check goes on while degraded (driftCheckAt is due by then)
    ['without auto_rollback the grace never ends it', [health('Failed'), tick(T0 + 1_000 + 10 * GRACE)], { failed: { degraded: 'checking' } }],
    ['a degraded drift check that finds nothing keeps watching', [health('Failed'), tick(T0 + 10 * GRACE), done('checkDrift', { drifted: false, reason: null })], { failed: { degraded: 'watching' } }],
    ['a degraded drift check that finds drift repairs it', [health('Failed'), tick(T0 + 10 * GRACE), done('checkDrift', { drifted: true, reason: 'Deployment shop changed (image)', pin: 'abc123' })], { syncing: { fetching: 'running' } }],
    ['a failed degraded drift check keeps watching', [health('Failed'), tick(T0 + 10 * GRACE), fail('checkDrift', 'transient')], { failed: { degraded: 'watching' } }],
  ] as const)('%s', (_name, events, expected) => {
    expect(run([...events], healthy).value).toEqual(expected);
  });

  it('names the pod and reason in last_error, writes no history record, and clears both on recovery', () => {
    expect(topLevelState(degraded.value)).toBe('failed');
    expect(degraded.context).toMatchObject({ lastError: 'degraded: Deployment shop: pod shop-1 is in CrashLoopBackOff.', degradedSince: T0 + 1_000 });
    // the completed record is still the deploy's: the journal writes a history row only for a new actionId
    expect(degraded.context.completed?.actionId).toBe(healthy.context.completed?.actionId);
    const again = run([health('Failed', 'Deployment shop: pod shop-2 is in ImagePullBackOff.', T0 + 5_000)], degraded);
    expect(again.context).toMatchObject({ lastError: 'degraded: Deployment shop: pod shop-2 is in ImagePullBackOff.', degradedSince: T0 + 1_000 });
    const recovered = run([health('Current', 'ok', T0 + 9_000)], again);
    expect(recovered.context).toMatchObject({ lastError: null, degradedSince: null, driftCheckAt: T0 + 9_000 + DEFAULT_MACHINE_CONFIG.driftIntervalMs });
  });

  it('a degraded release is not failed by an action: a failure of one is failed.idle, and Current does not leave it', () => {
    const failedDeploy = run([changed(desired(1)), done('sync', { sha: 'a' }), fail('render', 'terminal')]);
    expect(run([health('Current')], failedDeploy).value).toEqual({ failed: 'idle' });
  });

  it('with auto_rollback, still degraded after the grace rolls back (not before)', () => {
    const auto = run([health('Failed')], run(toHealthy(1, { autoRollback: true })));
    // not yet: the tick only runs the drift check that is due by then
    expect(run([tick(T0 + 1_000 + GRACE - 1)], auto).value).toEqual({ failed: { degraded: 'checking' } });
    // mid drift check the grace ends it too
    const checking = run([tick(T0 + 1_000 + GRACE - 1)], auto);
    expect(run([tick(T0 + 1_000 + GRACE)], checking).value).toEqual({ 'rolling-back': { finding: 'running' } });
    // and it comes before a drift check that is due at the same tick
    const rolling = run([tick(T0 + 1_000 + GRACE)], auto);
    expect(rolling.value).toEqual({ 'rolling-back': { finding: 'running' } });
    expect(rolling.context.work).toMatchObject({ action: 'auto-rollback', triggeredBy: 'auto-rollback of shop:1: degraded for 120 s' });
    expect(rolling.context).toMatchObject({ completed: null, degradedSince: null, lastError: 'degraded: Deployment shop: pod shop-1 is in CrashLoopBackOff.' });
  });

  it('a new generation with the spec that runs is adopted while degraded; a new spec deploys', () => {
    const adopted = run([changed(desired(2, { imageRef: 'shop:1' }))], degraded);
    expect(adopted.value).toEqual({ failed: { degraded: 'watching' } });
    expect(adopted.context.observedGeneration).toBe(2);
    const redeploy = run([changed(desired(2))], degraded);
    expect(redeploy.value).toEqual({ syncing: { fetching: 'running' } });
    expect(redeploy.context.degradedSince).toBeNull();
  });

  it('migrates version 3: failed becomes failed.idle, nothing is degraded', () => {
    const v3 = { status: 'active', value: 'failed', context: { deploymentId: ID, work: null, lastError: 'x' }, children: {} };
    expect(migratePersistedSnapshot(v3, '3')).toEqual({ ...v3, value: { failed: 'idle' }, context: { ...v3.context, degradedSince: null } });
    const healthyV3 = { ...v3, value: { healthy: 'idle' } };
    expect(migratePersistedSnapshot(healthyV3, '3')).toEqual({ ...healthyV3, context: { ...v3.context, degradedSince: null } });
    expect(migratePersistedSnapshot('garbage', '3')).toBeUndefined();
  });
});


// ---- canaries (version 5) ----

const STEPS: Strategy = { kind: 'canary', steps: [{ setWeight: 1000 }, { pauseMs: 1000 }, { waitHealthy: true }, { setWeight: 5000 }] };
const canaryRender = (strategy: Strategy = STEPS): AnyEvent => done('render', { plan, files: ['shop/deployment.yaml'], strategy });
const revisionRefs = [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'shop-r2', namespace: 'shop-prod' }];
const at = (ms: number) => ({ startedAt: T0 + ms - 10, finishedAt: T0 + ms });
const doneAt = (id: string, value: unknown, ms: number): AnyEvent => done(id, value, at(ms).startedAt, at(ms).finishedAt);
const command = (c: string, when = T0 + 50_000): AnyEvent => ({ type: 'CANARY', command: c, at: when });

/** A first canary over a replaced release: no stable revision, so stage, warm and 100 % at once. */
const toFirstCanary = (): AnyEvent[] => [
  ...toHealthy(1),
  changed(desired(2)),
  done('sync', { sha: 'abc123' }),
  canaryRender(),
  doneAt('stage', { message: 'staged', refs: revisionRefs }, 1_000),
  doneAt('warm', { message: 'warm' }, 2_000),
  doneAt('split', { message: '100 % r2' }, 3_000),
  doneAt('pruneInPlace', { message: 'deleted Deployment shop' }, 3_500),
];
const canaryHealthy = run(toFirstCanary());

/** The next canary (generation 3, revision r3) up to the first split's call. */
const toSecondCanary = (strategy: Strategy = STEPS): AnyEvent[] => [
  changed(desired(3)),
  done('sync', { sha: 'def456' }),
  canaryRender(strategy),
  doneAt('stage', { message: 'staged', refs: [{ ...revisionRefs[0], name: 'shop-r3' }] }, 10_000),
  doneAt('warm', { message: 'warm' }, 11_000),
];

describe('deployment machine: canaries (version 5)', () => {
  it('a replace strategy (or none) applies in place as before', () => {
    const s = run([changed(desired(1)), done('sync', { sha: 'a' }), done('render', { plan, files: [], strategy: { kind: 'replace' } })]);
    expect(s.value).toEqual({ applying: 'running' });
    expect(s.context.work?.strategy).toEqual({ kind: 'replace' });
    expect(s.context.work?.canary ?? null).toBeNull();
  });

  it('a first canary (no stable revision) is stage, warm, 100 %, then the release applied in place goes; the revision is deployed', () => {
    const events = toFirstCanary();
    expect(run(events.slice(0, -4)).value).toEqual({ applying: { staging: 'running' } });
    expect(run(events.slice(0, -3)).value).toEqual({ applying: { warming: 'running' } });
    const promoting = run(events.slice(0, -2));
    expect(promoting.value).toEqual({ verifying: { canary: { promoting: { splitting: 'running' } } } });
    expect(promoting.context.work?.canary?.split).toEqual([{ revision: 'r2', weightBps: 10_000 }]);
    // the in-place release's workload, not its Service (the deployment's Service from now on)
    expect(promoting.context.work?.canary?.inPlace).toEqual(applied);
    expect(run(events.slice(0, -1)).value).toEqual({ verifying: { canary: { promoting: { removing: 'running' } } } });
    expect(canaryHealthy.value).toEqual({ healthy: 'idle' });
    expect(canaryHealthy.context.deployed).toMatchObject({ imageRef: 'shop:2', applied: revisionRefs, revision: { name: 'r2', render: { imageRef: 'shop:2', sha: 'abc123' } } });
    expect(canaryHealthy.context.completed).toMatchObject({ action: 'deploy', status: 'succeeded', inventory: revisionRefs });
    expect(canaryHealthy.context.completed?.phases.map((p) => p.name)).toEqual(['sync', 'render', 'stage', 'warm', 'promote', 'remove in place']);
    expect(topLevelState(canaryHealthy.value)).toBe('healthy');
    // a deployment whose first release is a canary has nothing in place: healthy after the split
    const fresh = run([changed(desired(1)), done('sync', { sha: 'a' }), canaryRender(), done('stage', { message: 'ok', refs: revisionRefs }), done('warm', { message: 'ok' }), done('split', { message: 'ok' })]);
    expect(fresh.value).toEqual({ healthy: 'idle' });
    expect(fresh.context.deployed?.revision?.name).toBe('r1');
  });

  it('resuming a stopped canary deployment: stage, warm, 100 % (the stopped revision serves nothing), then the old revision is drained and archived', () => {
    const stopped = run([changed(desired(3, { desiredStatus: 'stopped' })), done('scale', { message: 'scaled' })], canaryHealthy);
    expect(stopped.value).toEqual({ stopped: 'idle' });
    let s = run([changed(desired(4)), done('sync', { sha: 'abc123' }), canaryRender(), doneAt('stage', { message: 'ok', refs: revisionRefs }, 20_000), doneAt('warm', { message: 'ok' }, 21_000)], stopped);
    expect(s.context.work?.action).toBe('resume');
    expect(s.value).toEqual({ verifying: { canary: { promoting: { splitting: 'running' } } } });
    s = run([doneAt('split', { message: 'ok' }, 22_000)], s);
    expect(s.value).toEqual({ verifying: { canary: { promoting: { draining: 'running' } } } });
    s = run([doneAt('drain', { message: 'ok' }, 23_000), doneAt('archive', { message: 'ok' }, 24_000)], s);
    expect(s.value).toEqual({ healthy: 'idle' });
    expect(s.context.deployed).toMatchObject({ stopped: false, revision: { name: 'r4' } });
  });

  it('goes through every step: split 10 %, pause (TICK-driven), wait healthy, split 50 %, promote, drain and archive the old revision', () => {
    let s = run(toSecondCanary(), canaryHealthy);
    expect(s.value).toEqual({ verifying: { canary: { steps: { splitting: 'running' } } } });
    // recorded before the call: a restored split re-sends exactly this
    expect(s.context.work?.canary).toMatchObject({ revision: 'r3', stable: { name: 'r2' }, split: [{ revision: 'r2', weightBps: 9000 }, { revision: 'r3', weightBps: 1000 }] });
    s = run([doneAt('split', { message: 'ok' }, 12_000)], s);
    expect(s.value).toEqual({ verifying: { canary: { steps: 'pausing' } } });
    expect(s.context.work?.canary?.pauseUntil).toBe(T0 + 13_000);
    expect(run([tick(T0 + 12_999)], s).value).toEqual({ verifying: { canary: { steps: 'pausing' } } });
    s = run([tick(T0 + 13_000)], s);
    expect(s.value).toEqual({ verifying: { canary: { steps: { checking: 'running' } } } });
    expect(s.context.work?.canary?.healthDeadline).toBe(T0 + 13_000 + DEFAULT_MACHINE_CONFIG.verifyTimeoutMs);
    s = run([doneAt('checkRevision', { status: 'ready', message: 'ready' }, 14_000)], s);
    expect(s.context.work?.canary?.split).toEqual([{ revision: 'r2', weightBps: 5000 }, { revision: 'r3', weightBps: 5000 }]);
    s = run([doneAt('split', { message: 'ok' }, 15_000)], s);
    expect(s.value).toEqual({ verifying: { canary: { promoting: { splitting: 'running' } } } });
    expect(s.context.work?.canary?.split).toEqual([{ revision: 'r3', weightBps: 10_000 }]);
    s = run([doneAt('split', { message: 'ok' }, 16_000)], s);
    expect(s.value).toEqual({ verifying: { canary: { promoting: { draining: 'running' } } } });
    s = run([doneAt('drain', { message: 'ok' }, 17_000), doneAt('archive', { message: 'ok' }, 18_000)], s);
    expect(s.value).toEqual({ healthy: 'idle' });
    expect(s.context.deployed?.revision?.name).toBe('r3');
    expect(s.context.completed?.phases.map((p) => p.name)).toEqual([
      'sync', 'render', 'stage', 'warm', 'split 10 %', 'pause 1 s', 'wait-healthy', 'split 50 %', 'promote', 'drain r2', 'archive r2',
    ]);
    expect(s.context.completed?.phases.find((p) => p.name === 'pause 1 s')?.duration_ms).toBe(1000);
  });

  it('a failed step aborts: traffic back to the stable revision, the canary drained and archived, the action fails, the stable release stays deployed', () => {
    const warmFails = [...toSecondCanary().slice(0, -1), fail('warm', 'terminal', 'revision r3 is unhealthy: ImagePullBackOff', T0 + 11_000)];
    let s = run(warmFails, canaryHealthy);
    expect(s.value).toEqual({ verifying: { canary: { aborting: { splitting: 'running' } } } });
    expect(s.context.work?.canary).toMatchObject({ split: [{ revision: 'r2', weightBps: 10_000 }], abortReason: 'revision r3 is unhealthy: ImagePullBackOff' });
    s = run([doneAt('split', { message: 'ok' }, 12_000)], s);
    expect(s.value).toEqual({ verifying: { canary: { aborting: { draining: 'running' } } } });
    s = run([doneAt('drain', { message: 'ok' }, 13_000), doneAt('archive', { message: 'ok' }, 14_000)], s);
    expect(s.value).toEqual({ failed: 'idle' });
    expect(s.context.lastError).toBe('revision r3 is unhealthy: ImagePullBackOff');
    expect(s.context.completed).toMatchObject({ status: 'failed', imageRef: 'shop:3', error: 'revision r3 is unhealthy: ImagePullBackOff', inventory: null });
    expect(s.context.completed?.phases.map((p) => [p.name, p.error !== null])).toEqual([
      ['sync', false], ['render', false], ['stage', false], ['warm', true], ['abort', false], ['drain r3', false], ['archive r3', false],
    ]);
    expect(s.context.deployed).toEqual(canaryHealthy.context.deployed);
  });

  it('with auto_rollback an aborted canary records the failed deploy and rolls back as a revision: all at once, the release written back', () => {
    const auto = run([changed(desired(3, { autoRollback: true })), done('sync', { sha: 'def456' }), canaryRender(),
      doneAt('stage', { message: 'ok', refs: revisionRefs }, 10_000), fail('warm', 'terminal', 'revision r3 is unhealthy', T0 + 11_000),
      doneAt('split', { message: 'ok' }, 12_000), doneAt('drain', { message: 'ok' }, 13_000), doneAt('archive', { message: 'ok' }, 14_000)], canaryHealthy);
    expect(auto.value).toEqual({ 'rolling-back': { finding: 'running' } });
    expect(auto.context.completed).toMatchObject({ action: 'deploy', status: 'failed', error: 'revision r3 is unhealthy' });
    expect(auto.context.work?.action).toBe('auto-rollback');
    let s = run([done('findRollbackTarget', { imageRef: 'shop:2', sha: 'abc123', historyId: 2, valuesOverride: {} }), done('sync', { sha: 'abc123' }), canaryRender()], auto);
    // not applied in place beside the revision: staged as one
    expect(s.value).toEqual({ applying: { staging: 'running' } });
    s = run([doneAt('stage', { message: 'ok', refs: revisionRefs }, 20_000), doneAt('warm', { message: 'ok' }, 21_000)], s);
    expect(s.value).toEqual({ verifying: { canary: { promoting: { splitting: 'running' } } } });
    expect(s.context.work?.canary).toMatchObject({ revision: 'r4', stable: { name: 'r2' }, split: [{ revision: 'r4', weightBps: 10_000 }] });
    s = run([doneAt('split', { message: 'ok' }, 22_000), doneAt('drain', { message: 'ok' }, 23_000), doneAt('archive', { message: 'ok' }, 24_000)], s);
    expect(s.value).toEqual({ healthy: 'idle' });
    expect(s.context.completed).toMatchObject({ action: 'auto-rollback', status: 'succeeded', imageRef: 'shop:2', writeBack: true });
    expect(s.context.deployed).toMatchObject({ imageRef: 'shop:2', revision: { name: 'r4' } });
    // the row's write-back (image shop:2) is adopted without a rollout
    expect(run([changed(desired(4, { imageRef: 'shop:2', autoRollback: true }))], s).value).toEqual({ healthy: 'idle' });
  });

  it('a transient step error retries after its backoff; a stage failure of a first canary aborts without a split', () => {
    const s = run([...toSecondCanary(), fail('split', 'transient', 'API server unreachable', T0 + 12_000)], canaryHealthy);
    expect(s.value).toEqual({ verifying: { canary: { steps: { splitting: 'backoff' } } } });
    expect(run([tick(s.context.work?.retryAt ?? 0)], s).value).toEqual({ verifying: { canary: { steps: { splitting: 'running' } } } });
    const first = run([...toFirstCanary().slice(0, -4), fail('stage', 'terminal', 'invalid plan')]);
    expect(first.value).toEqual({ verifying: { canary: { aborting: { draining: 'running' } } } });
    expect(first.context.completed).toBeNull();
  });

  it('strategy replace after a revision: applied in place and verified, then the revision drained and archived; the release is in place', () => {
    const inputOf = <T>(snapshot: DeploymentSnapshot, id: string) => (snapshot.children[id]?.getSnapshot() as { input?: T } | undefined)?.input;
    let s = run([changed(desired(3)), done('sync', { sha: 'def456' }), done('render', { plan, files: [], strategy: { kind: 'replace' } })], canaryHealthy);
    expect(s.value).toEqual({ applying: 'running' });
    expect(s.context.work?.retire).toMatchObject({ name: 'r2', render: { imageRef: 'shop:2', sha: 'abc123' } });
    // the revision's objects are in the previous inventory: the runtime keeps them out of a prune
    expect(inputOf<ApplyInput>(s, 'apply')?.previous).toEqual(revisionRefs);
    s = run([doneAt('apply', { applied }, 20_000)], s);
    expect(s.value).toEqual({ verifying: 'running' });
    s = run([doneAt('verify', { message: 'all 1 workload(s) are current' }, 21_000)], s);
    expect(s.value).toEqual({ verifying: { retiring: { draining: 'running' } } });
    // the revision alone, no split: nothing sends it traffic any more
    expect(inputOf<TargetInput>(s, 'drain')).toEqual({
      deploymentId: ID,
      namespace: 'shop-prod',
      revision: 'r2',
      revisions: [{ name: 'r2', plan: null, render: { deploymentId: ID, desired: desired(2), imageRef: 'shop:2', sha: 'abc123' } }],
      split: null,
    });
    s = run([doneAt('drain', { message: 'r2 drained' }, 22_000)], s);
    expect(s.value).toEqual({ verifying: { retiring: { archiving: 'running' } } });
    const retiring = s;
    s = run([doneAt('archive', { message: 'r2 archived' }, 23_000)], s);
    expect(s.value).toEqual({ healthy: 'idle' });
    expect(s.context.deployed).toMatchObject({ imageRef: 'shop:3', applied, revision: null, deployedAt: new Date(T0 + 23_000).toISOString() });
    expect(s.context.completed).toMatchObject({ action: 'deploy', status: 'succeeded', inventory: applied });
    expect(s.context.completed?.phases.map((p) => p.name)).toEqual(['sync', 'render', 'apply', 'verify', 'drain r2', 'archive r2']);
    // the next replace deploy has nothing to retire
    expect(run([changed(desired(4))], s).context.work?.retire).toBeNull();

    // a newer generation while it archives: the in-place release is deployed (superseded), and
    // the revision is still to go with the next action
    const cut = run([changed(desired(4))], retiring);
    expect(cut.context.deployed?.imageRef).toBe('shop:3');
    expect(cut.context.deployed?.revision ?? null).toBeNull();
    expect(cut.context.completed).toMatchObject({ status: 'superseded' });
    expect(cut.context.work?.retire?.name).toBe('r2');
    // a terminal failure of the archive fails the action naming the step; the revision stays deployed
    const failed = run([fail('archive', 'terminal', 'forbidden')], retiring);
    expect(failed.value).toEqual({ failed: 'idle' });
    expect(failed.context.completed?.phases.at(-1)).toMatchObject({ name: 'archive r2', error: 'forbidden' });
    expect(failed.context.deployed?.revision?.name).toBe('r2');
  });

  it('a canary cutting short a replace deploy\'s retire ends by sweeping: its last step carries the canary, whose inventory does not name the retiring revision', () => {
    const inputOf = <T>(snapshot: DeploymentSnapshot, id: string) => (snapshot.children[id]?.getSnapshot() as { input?: T } | undefined)?.input;
    const retiring = run([changed(desired(3)), done('sync', { sha: 'def456' }), done('render', { plan, files: [], strategy: { kind: 'replace' } }),
      doneAt('apply', { applied }, 20_000), doneAt('verify', { message: 'ok' }, 21_000)], canaryHealthy);
    expect(retiring.value).toEqual({ verifying: { retiring: { draining: 'running' } } });
    // the canary: the in-place release is deployed (superseded), so it is a first canary over it
    let s = run([changed(desired(4)), done('sync', { sha: 'fff000' }), canaryRender(),
      doneAt('stage', { message: 'staged', refs: [{ ...revisionRefs[0], name: 'shop-r4' }] }, 30_000), doneAt('warm', { message: 'warm' }, 31_000)], retiring);
    expect(s.context.work?.canary).toMatchObject({ revision: 'r4', stable: null, inPlace: applied });
    expect(s.context.work?.retire?.name).toBe('r2');
    // the promotion's split is not its last step here: the release in place goes after it
    expect(s.value).toEqual({ verifying: { canary: { promoting: { splitting: 'running' } } } });
    expect(inputOf<TargetInput>(s, 'split')?.sweep).toBeUndefined();
    s = run([doneAt('split', { message: 'ok' }, 32_000)], s);
    expect(s.value).toEqual({ verifying: { canary: { promoting: { removing: 'running' } } } });
    const r4 = { name: 'r4', plan, render: { deploymentId: ID, desired: desired(4), imageRef: 'shop:4', sha: 'fff000' } };
    // the last step: the in-place workload, and the canary whose end sweeps what it does not name (r2)
    expect(inputOf<PruneInput>(s, 'pruneInPlace')).toEqual({
      deploymentId: ID,
      refs: applied,
      canary: { deploymentId: ID, namespace: 'shop-prod', revision: 'r4', revisions: [r4], split: [{ revision: 'r4', weightBps: 10_000 }] },
    });
    expect(run([doneAt('pruneInPlace', { message: 'deleted Deployment shop-prod/shop; swept r2' }, 33_000)], s).value).toEqual({ healthy: 'idle' });

    // with nothing in place to remove and no stable revision (a deployment whose first release in
    // place failed), the promotion's split is the last step and sweeps
    const fresh = run([changed(desired(1)), done('sync', { sha: 'a' }), canaryRender(), done('stage', { message: 'ok', refs: revisionRefs }), done('warm', { message: 'ok' })]);
    expect(fresh.value).toEqual({ verifying: { canary: { promoting: { splitting: 'running' } } } });
    expect(inputOf<TargetInput>(fresh, 'split')).toMatchObject({ revision: 'r1', split: [{ revision: 'r1', weightBps: 10_000 }], sweep: true });
    // a canary over a stable revision ends with its archive, which sweeps: no sweep at the split
    const over = run([...toSecondCanary({ kind: 'canary', steps: [] })], canaryHealthy);
    expect(over.value).toEqual({ verifying: { canary: { promoting: { splitting: 'running' } } } });
    expect(inputOf<TargetInput>(over, 'split')?.sweep).toBeUndefined();
  });

  it('a failed replace deploy over a revision with auto_rollback rolls back as a new revision; its archive gets the split giving it all traffic', () => {
    const inputOf = <T>(snapshot: DeploymentSnapshot, id: string) => (snapshot.children[id]?.getSnapshot() as { input?: T } | undefined)?.input;
    let s = run([changed(desired(3, { autoRollback: true })), done('sync', { sha: 'def456' }), done('render', { plan, files: [], strategy: { kind: 'replace' } }),
      doneAt('apply', { applied }, 20_000), fail('verify', 'terminal', 'Deployment shop: CrashLoopBackOff', T0 + 21_000)], canaryHealthy);
    expect(s.value).toEqual({ 'rolling-back': { finding: 'running' } });
    expect(s.context.completed).toMatchObject({ action: 'deploy', status: 'failed', inventory: applied });
    s = run([done('findRollbackTarget', { imageRef: 'shop:2', sha: 'abc123', historyId: 2, valuesOverride: {} }), done('sync', { sha: 'abc123' }), canaryRender(),
      doneAt('stage', { message: 'ok', refs: revisionRefs }, 30_000), doneAt('warm', { message: 'ok' }, 31_000), doneAt('split', { message: 'ok' }, 32_000), doneAt('drain', { message: 'ok' }, 33_000)], s);
    expect(s.value).toEqual({ verifying: { canary: { promoting: { archiving: 'running' } } } });
    expect(s.context.work?.canary).toMatchObject({ revision: 'r4', stable: { name: 'r2' }, inPlace: [] });
    // the runtime's archive removes the failed in-place workload when one revision has all traffic
    expect(inputOf<TargetInput>(s, 'archive')).toMatchObject({ revision: 'r2', split: [{ revision: 'r4', weightBps: 10_000 }] });
    s = run([doneAt('archive', { message: 'r2 archived; removed Deployment shop-prod/shop in place' }, 34_000)], s);
    expect(s.value).toEqual({ healthy: 'idle' });
    expect(s.context.deployed).toMatchObject({ imageRef: 'shop:2', revision: { name: 'r4' } });
  });

  it('a rollback in place over a revision retires the revision too', () => {
    let s = run([changed(desired(3, { desiredStatus: 'rollback' })), done('findRollbackTarget', { imageRef: 'shop:1', sha: 'abc123', historyId: 1, valuesOverride: {} }),
      done('sync', { sha: 'abc123' }), done('render', { plan, files: [] }), done('apply', { applied }), done('verify', { message: 'ok' })], canaryHealthy);
    expect(s.value).toEqual({ 'rolling-back': { retiring: { draining: 'running' } } });
    s = run([done('drain', { message: 'ok' }), done('archive', { message: 'ok' })], s);
    expect(s.value).toEqual({ healthy: 'idle' });
    expect(s.context.completed).toMatchObject({ action: 'rollback', status: 'succeeded', writeBack: true });
    expect(s.context.completed?.phases.map((p) => p.name)).toEqual(['find-target', 'sync', 'render', 'apply', 'verify', 'drain r2', 'archive r2']);
    expect(s.context.deployed?.revision).toBeNull();
  });

  it('a live drift repair of a revision re-applies that revision (stage, warm, 100 %), never a new canary; a failure fails the repair, nothing is aborted', () => {
    const checkAt = canaryHealthy.context.driftCheckAt ?? 0;
    const drift = [tick(checkAt), done('checkDrift', { drifted: true, reason: 'Deployment shop-r2 changed (.spec.template.spec.containers[name="web"].image)', pin: 'abc123' }, checkAt, checkAt + 10)];
    let s = run([...drift, done('sync', { sha: 'abc123', head: 'abc123' }), canaryRender()], canaryHealthy);
    expect(s.value).toEqual({ applying: { staging: 'running' } });
    expect(s.context.work).toMatchObject({ repair: true, triggeredBy: expect.stringMatching(/^drift: Deployment shop-r2 changed/) });
    expect(s.context.work?.canary).toMatchObject({ revision: 'r2', stable: null, stableServing: false, inPlace: [] });
    const staging = s;
    s = run([doneAt('stage', { message: 'staged', refs: revisionRefs }, 30_000), doneAt('warm', { message: 'warm' }, 31_000)], s);
    expect(s.value).toEqual({ verifying: { canary: { promoting: { splitting: 'running' } } } });
    expect(s.context.work?.canary?.split).toEqual([{ revision: 'r2', weightBps: 10_000 }]);
    s = run([doneAt('split', { message: 'traffic r2 100 %' }, 32_000)], s);
    expect(s.value).toEqual({ healthy: 'idle' });
    expect(s.context.deployed).toMatchObject({ imageRef: 'shop:2', revision: { name: 'r2' }, applied: revisionRefs });
    expect(s.context.completed?.phases.map((p) => p.name)).toEqual(['sync', 'render', 'stage', 'warm', 'promote']);

    const failed = run([doneAt('stage', { message: 'staged', refs: revisionRefs }, 30_000), fail('warm', 'terminal', 'revision r2 is unhealthy: CrashLoopBackOff')], staging);
    expect(failed.value).toEqual({ failed: 'idle' });
    expect(failed.context.completed?.phases.at(-1)).toMatchObject({ name: 'warm', error: 'revision r2 is unhealthy: CrashLoopBackOff' });
    expect(failed.context.deployed).toEqual(canaryHealthy.context.deployed);
    // the branch moving is no repair: a new canary beside the revision, as any deploy
    const moved = run([tick(checkAt), done('checkDrift', { drifted: true, reason: 'ops repo moved' }), done('sync', { sha: 'fff000' }), canaryRender()], canaryHealthy);
    expect(moved.context.work?.canary).toMatchObject({ revision: 'r3', stable: { name: 'r2' } });
  });

  it('a new generation after the promotion split: the new revision is deployed (the old may run nothing), the canary recorded as superseded', () => {
    const promoteSteps: Strategy = { kind: 'canary', steps: [{ setWeight: 1000 }] };
    const draining = run([...toSecondCanary(promoteSteps), doneAt('split', { message: 'ok' }, 12_000), doneAt('split', { message: 'ok' }, 13_000)], canaryHealthy);
    expect(draining.value).toEqual({ verifying: { canary: { promoting: { draining: 'running' } } } });
    const next = run([changed(desired(4))], draining);
    expect(next.context.deployed).toMatchObject({ imageRef: 'shop:3', revision: { name: 'r3' } });
    expect(next.context.completed).toMatchObject({ status: 'superseded', imageRef: 'shop:3' });
    expect(next.context.completed?.error).toMatch(/superseded by generation 4 \(deploy\) after the promotion of canary r3/);
    // before the promotion split nothing changes hands: the stable revision stays deployed
    const beforePromotion = run([...toSecondCanary(promoteSteps), changed(desired(4))], canaryHealthy);
    expect(beforePromotion.context.deployed?.revision?.name).toBe('r2');
    expect(beforePromotion.context.completed).toBeNull();
  });

  it('wait healthy: progressing is checked again at the interval, failed or a deadline aborts', () => {
    const waitFirst: Strategy = { kind: 'canary', steps: [{ waitHealthy: true }] };
    let s = run([...toSecondCanary(waitFirst), doneAt('checkRevision', { status: 'progressing', message: '0/1 ready' }, 12_000)], canaryHealthy);
    expect(s.value).toEqual({ verifying: { canary: { steps: 'waiting' } } });
    expect(run([tick(T0 + 12_000 + DEFAULT_MACHINE_CONFIG.canaryCheckMs - 1)], s).value).toEqual({ verifying: { canary: { steps: 'waiting' } } });
    s = run([tick(T0 + 12_000 + DEFAULT_MACHINE_CONFIG.canaryCheckMs)], s);
    expect(s.value).toEqual({ verifying: { canary: { steps: { checking: 'running' } } } });
    // the deadline counts from the step's start, not from each check
    expect(s.context.work?.canary?.healthDeadline).toBe(T0 + 11_000 + DEFAULT_MACHINE_CONFIG.verifyTimeoutMs);
    const failed = run([doneAt('checkRevision', { status: 'failed', message: 'CrashLoopBackOff' }, 20_000)], s);
    expect(failed.value).toEqual({ verifying: { canary: { aborting: { splitting: 'running' } } } });
    expect(failed.context.lastError).toBe('canary r3 is failed: CrashLoopBackOff');
    const waiting = run([doneAt('checkRevision', { status: 'progressing', message: '0/1' }, 20_000)], s);
    const late = run([tick(T0 + 11_000 + DEFAULT_MACHINE_CONFIG.verifyTimeoutMs)], waiting);
    expect(late.value).toEqual({ verifying: { canary: { aborting: { splitting: 'running' } } } });
    expect(late.context.lastError).toMatch(/canary r3 did not become ready within 300 s/);
  });

  it('pause holds the next step until resume; promote and abort act from any step', () => {
    // paused while the 10 % split is in flight: the split finishes, the pause step waits
    const held = run([...toSecondCanary(), command('pause', T0 + 11_500), doneAt('split', { message: 'ok' }, 12_000)], canaryHealthy);
    expect(held.value).toEqual({ verifying: { canary: { steps: 'held' } } });
    expect(run([tick(T0 + 99_000)], held).value).toEqual({ verifying: { canary: { steps: 'held' } } });
    // resumed: the pause step counts from the resume
    const resumed = run([command('resume', T0 + 50_000)], held);
    expect(resumed.value).toEqual({ verifying: { canary: { steps: 'pausing' } } });
    expect(resumed.context.work?.canary?.pauseUntil).toBe(T0 + 51_000);
    // paused during a pause step: it ends, the next step waits; resumed before it ends: nothing held
    const pausing = run([...toSecondCanary(), doneAt('split', { message: 'ok' }, 12_000)], canaryHealthy);
    expect(run([command('pause', T0 + 12_500), tick(T0 + 13_000)], pausing).value).toEqual({ verifying: { canary: { steps: 'held' } } });
    expect(run([command('pause', T0 + 12_500), command('resume', T0 + 12_600), tick(T0 + 13_000)], pausing).value).toEqual({
      verifying: { canary: { steps: { checking: 'running' } } },
    });
    const promoted = run([command('promote')], held);
    expect(promoted.value).toEqual({ verifying: { canary: { promoting: { splitting: 'running' } } } });
    expect(promoted.context.work?.canary?.split).toEqual([{ revision: 'r3', weightBps: 10_000 }]);
    const aborted = run([command('abort')], pausing);
    expect(aborted.value).toEqual({ verifying: { canary: { aborting: { splitting: 'running' } } } });
    expect(aborted.context.lastError).toBe('canary r3 aborted by command');
    expect(aborted.context.work?.canary?.split).toEqual([{ revision: 'r2', weightBps: 10_000 }]);
    // promoting or aborting already: a command changes nothing; no canary: ignored
    expect(run([command('abort')], promoted).value).toEqual(promoted.value);
    expect(run([command('abort')], canaryHealthy).value).toEqual({ healthy: 'idle' });
  });

  // issue #16: what a commanded canary leaves in history. The step in flight when promote or
  // abort arrives (T0 + 12_400 below, or 13_500 in a health wait) is a phase of its own, cut short.
  const inSplit = toSecondCanary(); // the 10 % split running since warm ended (T0 + 11_000)
  const inSplitBackoff = [...inSplit, fail('split', 'transient', 'route conflict', T0 + 11_200)];
  const inPause = [...inSplit, doneAt('split', { message: 'ok' }, 12_000)]; // the 1 s pause from T0 + 12_000
  const inCheck = [...inPause, tick(T0 + 13_000)]; // wait-healthy from T0 + 13_000, its check in flight
  const inWait = [...inCheck, doneAt('checkRevision', { status: 'progressing', message: '0/1' }, 13_200)];
  const inHeld = [...inSplit, command('pause', T0 + 11_500), doneAt('split', { message: 'ok' }, 12_000)];
  const cutCases: Array<[string, AnyEvent[], number, { name: string; started: number; verb: string } | null]> = [
    ['a split in flight', inSplit, 12_400, { name: 'split 10 %', started: 11_000, verb: 'cancelled' }],
    ['a split retrying after a transient error', inSplitBackoff, 12_400, { name: 'split 10 %', started: 11_000, verb: 'cancelled' }],
    ['a pause step', inPause, 12_400, { name: 'pause 1 s', started: 12_000, verb: 'ended' }],
    ['a health check in flight', inCheck, 13_500, { name: 'wait-healthy', started: 13_000, verb: 'ended' }],
    ['a health wait between checks', inWait, 13_500, { name: 'wait-healthy', started: 13_000, verb: 'ended' }],
    // held by `pause`: no step in flight, nothing cut short
    ['a held canary', inHeld, 12_400, null],
  ];
  for (const [what, events, when, cut] of cutCases) {
    for (const c of ['promote', 'abort'] as const) {
      it(`${c} during ${what}: ${cut ? `${cut.name} is recorded ${cut.verb} by ${c}, with the time it lasted` : 'no step phase'}`, () => {
        const before = run(events, canaryHealthy);
        const s = run([command(c, T0 + when)], before);
        expect(s.value).toEqual({ verifying: { canary: c === 'promote' ? { promoting: { splitting: 'running' } } : { aborting: { splitting: 'running' } } } });
        const added = (s.context.work?.phases ?? []).slice(before.context.work?.phases.length ?? 0);
        const marker = c === 'abort' ? [{ name: 'abort (command)', started_at: new Date(T0 + when).toISOString(), duration_ms: 0, detail: null, error: null }] : [];
        const step = cut
          ? [{ name: cut.name, started_at: new Date(T0 + cut.started).toISOString(), finished_at: new Date(T0 + when).toISOString(), duration_ms: when - cut.started, detail: `${cut.verb} by ${c}`, error: null }]
          : [];
        expect(added).toMatchObject([...step, ...marker]);
        expect(added).toHaveLength(step.length + marker.length);
      });
    }
  }

  it('a commanded abort: the command and the split back are distinct phases, as after a failed step; its history row keeps the cut-short pause', () => {
    const s = run([command('abort', T0 + 12_400), doneAt('split', { message: 'r2 100 %' }, 13_000), doneAt('drain', { message: 'ok' }, 14_000), doneAt('archive', { message: 'ok' }, 15_000)], run(inPause, canaryHealthy));
    expect(s.value).toEqual({ failed: 'idle' });
    expect(s.context.completed?.phases.map((p) => [p.name, p.detail])).toEqual([
      ['sync', expect.anything()], ['render', expect.anything()], ['stage', 'staged'], ['warm', 'warm'], ['split 10 %', 'ok'],
      ['pause 1 s', 'ended by abort'], ['abort (command)', null], ['abort', 'r2 100 %'], ['drain r3', 'ok'], ['archive r3', 'ok'],
    ]);
    // a name appears once: the visualizer's history tells each phase apart by it
    const names = s.context.completed?.phases.map((p) => p.name) ?? [];
    expect(new Set(names).size).toBe(names.length);
    // the split cut short by abort is recorded, never an error: the action's error is the command
    const cancelled = run([command('abort', T0 + 12_400)], run(inSplit, canaryHealthy));
    expect(cancelled.context.work?.phases.filter((p) => p.error !== null)).toEqual([]);
    expect(cancelled.context.lastError).toBe('canary r3 aborted by command');
  });

  it('every verb gets the inventory by reference and the recorded split; a restored snapshot re-runs the verb in flight', async () => {
    const calls: Array<[string, TargetInput]> = [];
    const verb = (name: string, value: unknown) =>
      fromPromise(async ({ input }: { input: TargetInput }) => {
        calls.push([name, input]);
        return { value, startedAt: Date.now(), finishedAt: Date.now() };
      });
    let hold = true;
    const machine = deploymentMachine.provide({
      actors: {
        sync: fromPromise(async () => ({ value: { sha: 'def456' }, startedAt: T0, finishedAt: T0 + 1 })),
        render: fromPromise(async () => ({ value: { plan, files: [], strategy: { kind: 'canary', steps: [{ setWeight: 1000 }] } }, startedAt: T0, finishedAt: T0 + 1 })),
        stage: verb('stage', { message: 'staged', refs: revisionRefs }),
        warm: verb('warm', { message: 'warm' }),
        split: fromPromise(async ({ input }: { input: TargetInput }) => {
          calls.push(['split', input]);
          if (hold) return new Promise<never>(() => {});
          return { value: { message: 'ok' }, startedAt: T0, finishedAt: T0 + 1 };
        }),
        drain: verb('drain', { message: 'ok' }),
        archive: verb('archive', { message: 'ok' }),
      } as never,
    });
    const until = (actor: { subscribe: (f: (s: DeploymentSnapshot) => void) => { unsubscribe(): void } }, value: unknown) =>
      new Promise<void>((resolve) => {
        const sub = actor.subscribe((snapshot) => {
          if (JSON.stringify(snapshot.value) === JSON.stringify(value)) {
            sub.unsubscribe();
            resolve();
          }
        });
      });
    const first = createActor(machine, { snapshot: canaryHealthy, input: { deploymentId: ID } }).start();
    const splitting = until(first, { verifying: { canary: { steps: { splitting: 'running' } } } });
    first.send(changed(desired(3)) as DeploymentEvent);
    await splitting;
    const persisted = structuredClone(first.getPersistedSnapshot());
    first.stop();
    const stable = { name: 'r2', plan: null, render: { deploymentId: ID, desired: desired(2), imageRef: 'shop:2', sha: 'abc123' } };
    const fresh = { name: 'r3', plan, render: { deploymentId: ID, desired: desired(3), imageRef: 'shop:3', sha: 'def456' } };
    expect(calls.map(([name]) => name)).toEqual(['stage', 'warm', 'split']);
    expect(calls[0]?.[1]).toEqual({ deploymentId: ID, namespace: 'shop-prod', revision: 'r3', revisions: [stable, fresh], split: null });
    expect(calls[2]?.[1].split).toEqual([{ revision: 'r2', weightBps: 9000 }, { revision: 'r3', weightBps: 1000 }]);

    // restored (a new process): the split in flight is sent again with the same weights
    hold = false;
    const restored = createActor(machine, { snapshot: persisted as never, input: { deploymentId: ID } });
    const healthyAgain = until(restored, { healthy: 'idle' });
    restored.start();
    await healthyAgain;
    restored.stop();
    expect(calls.slice(3).map(([name, input]) => [name, input.revision, input.split])).toEqual([
      ['split', 'r3', [{ revision: 'r2', weightBps: 9000 }, { revision: 'r3', weightBps: 1000 }]],
      ['split', 'r3', [{ revision: 'r3', weightBps: 10_000 }]],
      ['drain', 'r2', [{ revision: 'r3', weightBps: 10_000 }]],
      ['archive', 'r2', [{ revision: 'r3', weightBps: 10_000 }]],
    ]);
  });

  it('migrates version 4: no strategy, no canary, no revision; the state value is kept and a restored apply still runs', () => {
    const v4 = {
      status: 'active',
      value: { applying: 'running' },
      context: { deploymentId: ID, config: DEFAULT_MACHINE_CONFIG, work: { actionId: '1-1-deploy', plan }, deployed: { imageRef: 'shop:0' }, degradedSince: null },
      children: {},
    };
    const { canaryCheckMs: _c, ...oldConfig } = DEFAULT_MACHINE_CONFIG;
    const migrated = migratePersistedSnapshot({ ...v4, context: { ...v4.context, config: oldConfig } }, '4') as typeof v4;
    expect(migrated.value).toEqual({ applying: 'running' });
    expect(migrated.context.work).toEqual({ actionId: '1-1-deploy', plan, strategy: null, canary: null });
    expect(migrated.context.deployed).toEqual({ imageRef: 'shop:0', revision: null });
    expect(migrated.context.config).toEqual(DEFAULT_MACHINE_CONFIG);
    expect(migratePersistedSnapshot('garbage', '4')).toBeUndefined();
    // a whole version-4 actor mid-apply (its work without the version-5 fields) goes on as a replace
    const current = run(toHealthy().slice(0, 3));
    const { strategy: _s, canary: _k, ...v4work } = current.context.work!;
    const persisted = migratePersistedSnapshot({ value: current.value, context: { ...current.context, work: v4work } }, '4') as { value: never; context: never };
    const restored = deploymentMachine.resolveState(persisted);
    expect(restored.context.work).toMatchObject({ strategy: null, canary: null, plan });
    expect(run([done('apply', { applied }), done('verify', { message: 'ok' })], restored).value).toEqual({ healthy: 'idle' });
  });
});

// ---- coverage: every transition of the machine must be reached by the walk below ----

function allTransitions(): Map<TransitionDefinition<never, never>, string> {
  const result = new Map<TransitionDefinition<never, never>, string>();
  const visit = (node: typeof deploymentMachine.root) => {
    for (const [eventType, list] of node.transitions) {
      list.forEach((t, i) => result.set(t as never, `${node.id} --${eventType}#${i}--> ${(t.target ?? []).map((s) => s.id).join(',')}`));
    }
    for (const t of node.always ?? []) result.set(t as never, `${node.id} --always--> ${(t.target ?? []).map((s) => s.id).join(',')}`);
    for (const child of Object.values(node.states)) visit(child);
  };
  visit(deploymentMachine.root);
  return result;
}

/** The events worth trying in a state: desired changes, ticks, and each running effect's outcomes. */
function eventsFor(snapshot: DeploymentSnapshot): AnyEvent[] {
  const g = snapshot.context.observedGeneration;
  const events: AnyEvent[] = [
    changed(desired(g + 1)),
    changed(desired(g + 1, { autoRollback: true })),
    changed(desired(g + 1, { desiredStatus: 'stopped' })),
    changed(desired(g + 1, { desiredStatus: 'rollback' })),
    changed(desired(g + 1, { desiredStatus: 'deleted' })),
    changed(desired(g)),
    tick(0),
    tick(T0 + 10 * 365 * 86_400_000),
  ];
  // a retry that falls due before the verify deadline
  if (snapshot.context.work?.retryAt != null) events.push(tick(snapshot.context.work.retryAt));
  if (snapshot.context.deployed) {
    const d = snapshot.context.deployed;
    events.push(changed(desired(g + 1, { imageRef: d.imageRef })));
  }
  for (const id of Object.keys(snapshot.children)) {
    events.push(fail(id, 'transient'), fail(id, 'terminal'));
    if (id === 'sync') events.push(done(id, { sha: 'abc' }));
    if (id === 'render') events.push(done(id, { plan, files: [] }), canaryRender());
    if (id === 'stage') events.push(done(id, { message: 'ok', refs: revisionRefs }));
    if (id === 'warm' || id === 'split' || id === 'drain' || id === 'archive' || id === 'pruneInPlace') events.push(done(id, { message: 'ok' }));
    if (id === 'checkRevision') {
      for (const status of ['ready', 'progressing', 'failed']) events.push(done(id, { status, message: status }));
    }
    if (id === 'apply') events.push(done(id, { applied }));
    if (id === 'verify' || id === 'scale' || id === 'teardown') events.push(done(id, { message: 'ok' }));
    if (id === 'findRollbackTarget') events.push(done(id, null), done(id, { imageRef: 'shop:0', sha: null }));
    if (id === 'checkDrift') events.push(done(id, { drifted: true, reason: 'x' }), done(id, { drifted: true, reason: 'x', pin: 'abc' }), done(id, { drifted: false, reason: null }));
  }
  events.push(health('Failed'), health('Current'));
  for (const c of ['pause', 'resume', 'promote', 'abort']) events.push(command(c));
  return events;
}

describe('deployment machine: plans, and restoring version 1 snapshots', () => {
  const SECRET = 'canary-s3cr3t-value';
  const secretObject = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db' }, stringData: { password: SECRET } };

  it('holds the render\'s plan handle until apply, then drops it', () => {
    const rendered = run(toHealthy().slice(0, 3));
    expect(rendered.context.work?.plan).toEqual(plan);
    expect(run(toHealthy().slice(0, 4)).context.work?.plan).toBeNull();
  });

  /** What these tests read of a persisted snapshot. */
  interface Persisted {
    context: { work: Record<string, unknown> };
    children: { apply: { snapshot: { input: Record<string, unknown> } } };
  }

  /** A persisted snapshot in applying.running, whose apply never resolves, by a real actor. */
  async function applyingSnapshot(): Promise<Persisted> {
    const machine = deploymentMachine.provide({
      actors: {
        sync: fromPromise(async () => ({ value: { sha: 'abc123' }, startedAt: T0, finishedAt: T0 + 1 })),
        render: fromPromise(async () => ({ value: { plan, files: [] }, startedAt: T0, finishedAt: T0 + 1 })),
        apply: fromPromise(() => new Promise<never>(() => {})),
      } as never,
    });
    const actor = createActor(machine, { input: { deploymentId: ID } }).start();
    actor.send(changed(desired(1)) as DeploymentEvent);
    await new Promise<void>((resolve) => {
      const sub = actor.subscribe((snapshot) => {
        if (JSON.stringify(snapshot.value) === JSON.stringify({ applying: 'running' })) {
          sub.unsubscribe();
          resolve();
        }
      });
    });
    const persisted = structuredClone(actor.getPersistedSnapshot()) as unknown as Persisted;
    actor.stop();
    return persisted;
  }

  it('migrates a version 1 snapshot mid-apply: no rendered objects left, and the restored apply renders again from the same inputs', async () => {
    const current = await applyingSnapshot();
    expect(current.children.apply.snapshot.input).toMatchObject({ plan, render: { imageRef: 'shop:1', sha: 'abc123', desired: desired(1) } });
    // what version 1 persisted: the objects in context and in apply's input
    const v1 = structuredClone(current);
    delete v1.context.work.plan;
    v1.context.work.rendered = [secretObject];
    const { plan: _plan, render: _render, ...inputRest } = v1.children.apply.snapshot.input;
    v1.children.apply.snapshot.input = { ...inputRest, objects: [secretObject] };
    expect(JSON.stringify(v1)).toContain(SECRET);

    const migrated = migratePersistedSnapshot(v1, '1') as Persisted;
    expect(JSON.stringify(migrated)).not.toContain(SECRET);
    expect(migrated.context.work.plan).toBeNull();
    expect('rendered' in migrated.context.work).toBe(false);

    // restored as the runtime restores it: the in-flight apply runs again with the migrated input
    let input: ApplyInput | undefined;
    const machine = deploymentMachine.provide({
      actors: {
        apply: fromPromise(async ({ input: given }: { input: ApplyInput }) => {
          input = given;
          return { value: { applied }, startedAt: T0, finishedAt: T0 + 1 };
        }),
        verify: fromPromise(() => new Promise<never>(() => {})),
      } as never,
    });
    const actor = createActor(machine, { snapshot: migrated as never, input: { deploymentId: ID } }).start();
    await new Promise<void>((resolve) => {
      const sub = actor.subscribe((snapshot) => {
        if (topLevelState(snapshot.value) === 'verifying') {
          sub.unsubscribe();
          resolve();
        }
      });
    });
    actor.stop();
    expect(input).toEqual({
      deploymentId: ID,
      namespace: 'shop-prod',
      plan: null,
      render: { deploymentId: ID, desired: desired(1), imageRef: 'shop:1', sha: 'abc123' },
      previous: [],
      prune: false,
      previousNamespace: null,
    });
  });

  it.each([
    ['the current version', MACHINE_VERSION, 'same'],
    ['an unknown version', '0', undefined],
    ['not a snapshot', '1', undefined],
  ] as const)('%s', (name, version, expected) => {
    const snapshot = name === 'not a snapshot' ? 'garbage' : { status: 'active', value: 'idle', context: { deploymentId: ID, work: null } };
    const result = migratePersistedSnapshot(snapshot, version);
    if (expected === 'same') expect(result).toBe(snapshot);
    else expect(result).toBe(expected);
  });

  it('restores a version 2 actor at rest and mid-rollback: drift compares as before, rollbacks render the release exactly', async () => {
    const syncs: unknown[] = [];
    const renders: unknown[] = [];
    let holdSync = false;
    const machine = deploymentMachine.provide({
      actors: {
        sync: fromPromise(async ({ input }: { input: { pin?: string | null } }) => {
          syncs.push(input);
          if (holdSync) return await new Promise<never>(() => {});
          return { value: input.pin ? { sha: input.pin, head: 'head2' } : { sha: 'abc123' }, startedAt: T0, finishedAt: T0 + 1 };
        }),
        render: fromPromise(async ({ input }: { input: unknown }) => {
          renders.push(input);
          return { value: { plan, files: [], values: { hash: 'sha256:v', redacted: {} } }, startedAt: T0, finishedAt: T0 + 1 };
        }),
        apply: fromPromise(async () => ({ value: { applied: [] }, startedAt: T0, finishedAt: T0 + 1 })),
        verify: fromPromise(async () => ({ value: { message: 'ok' }, startedAt: T0, finishedAt: T0 + 2 })),
        findRollbackTarget: fromPromise(async () => ({
          value: { imageRef: 'shop:0', sha: 'old000', historyId: 7, valuesOverride: { replicas: 5 } },
          startedAt: T0,
          finishedAt: T0 + 1,
        })),
      } as never,
    });
    const settle = (actor: ReturnType<typeof createActor<typeof machine>>, state: string) =>
      new Promise<void>((resolve) => {
        const check = (snapshot: DeploymentSnapshot) => JSON.stringify(snapshot.value).includes(state);
        if (check(actor.getSnapshot() as DeploymentSnapshot)) return resolve();
        const sub = actor.subscribe((snapshot) => {
          if (check(snapshot as DeploymentSnapshot)) {
            sub.unsubscribe();
            resolve();
          }
        });
      });
    /** what version 2 persisted: none of the release fields */
    type Loose = Record<string, Record<string, unknown> | null | undefined>;
    const asVersion2 = (persisted: unknown) => {
      const v2 = structuredClone(persisted) as { context: Loose; children?: Record<string, unknown> };
      for (const key of ['head', 'release', 'values']) if (v2.context.work) delete v2.context.work[key];
      if (v2.context.deployed) delete v2.context.deployed.head;
      for (const key of ['valuesHash', 'valuesRedacted', 'valuesOverride', 'inventory']) if (v2.context.completed) delete v2.context.completed[key];
      if (v2.context.desired) delete v2.context.desired.rollbackTo;
      for (const child of Object.values(v2.children ?? {}) as Array<{ snapshot?: { input?: Record<string, unknown> } }>) {
        delete child.snapshot?.input?.pin;
        delete child.snapshot?.input?.release;
      }
      return v2;
    };

    // at rest, healthy
    const first = createActor(machine, { input: { deploymentId: ID } }).start();
    first.send(changed(desired(1)) as DeploymentEvent);
    await settle(first, 'healthy');
    const healthyV2 = asVersion2(first.getPersistedSnapshot() as never);
    first.stop();
    const restored = migratePersistedSnapshot(healthyV2, '2') as { context: DeploymentSnapshot['context'] };
    // the drift check compares the head against the deployed commit, as version 2 did
    expect(restored.context.deployed).toMatchObject({ sha: 'abc123', head: 'abc123' });
    const actor = createActor(machine, { snapshot: restored as never, input: { deploymentId: ID } }).start();
    actor.send(changed(desired(2, { desiredStatus: 'rollback', imageRef: 'shop:1' })) as DeploymentEvent);
    await settle(actor, 'healthy');
    const after = actor.getSnapshot();
    actor.stop();
    // the release's commit and values were rendered, and the deployment stays pinned to them
    expect(syncs.at(-1)).toMatchObject({ pin: 'old000' });
    expect(renders.at(-1)).toMatchObject({ sha: 'old000', imageRef: 'shop:0', desired: { valuesOverride: { replicas: 5 } } });
    expect(after.context.deployed).toMatchObject({ imageRef: 'shop:0', sha: 'old000', head: 'head2' });
    expect(after.context.completed).toMatchObject({ action: 'rollback', status: 'succeeded', valuesOverride: { replicas: 5 }, valuesHash: 'sha256:v', writeBack: true });

    // mid-rollback: version 2 found its target by image; its in-flight sync (no pin) runs again
    holdSync = true;
    const second = createActor(machine, { snapshot: restored as never, input: { deploymentId: ID } }).start();
    second.send(changed(desired(3, { desiredStatus: 'rollback' })) as DeploymentEvent);
    await settle(second, 'fetching');
    const fetchingV2 = asVersion2(second.getPersistedSnapshot() as never);
    second.stop();
    holdSync = false;
    const resumed = createActor(machine, { snapshot: migratePersistedSnapshot(fetchingV2, '2') as never, input: { deploymentId: ID } }).start();
    await settle(resumed, 'healthy');
    resumed.stop();
    expect(syncs.at(-1)).not.toHaveProperty('pin');
    expect(renders.at(-1)).toMatchObject({ sha: 'abc123', imageRef: 'shop:0', desired: { valuesOverride: {} } });
  });

  it('migrates a version 1 snapshot at rest (no work, no children in flight) unchanged but for its shape', () => {
    const atRest = { status: 'active', value: { healthy: 'idle' }, context: { deploymentId: ID, work: null }, children: {} };
    expect(migratePersistedSnapshot(atRest, '1')).toEqual({ ...atRest, context: { ...atRest.context, degradedSince: null } });
  });
});

describe('deployment machine: coverage', () => {
  it('walks every transition of the machine', () => {
    const adjacency = getAdjacencyMap(deploymentMachine, {
      input: { deploymentId: ID },
      events: (s) => eventsFor(s as DeploymentSnapshot) as DeploymentEvent[],
      // collapse unbounded context (generations, counters, times) into what guards look at
      serializeState: (s) => {
        const { context, value } = s as DeploymentSnapshot;
        return JSON.stringify({
          value,
          work: context.work && { action: context.work.action, retry: context.work.retryAt !== null, verify: context.work.verifyDeadline !== null },
          deployed: context.deployed && { stopped: context.deployed.stopped },
          autoRollback: context.desired?.autoRollback ?? false,
          drift: context.driftCheckAt !== null,
          degraded: context.degradedSince !== null,
          revision: context.deployed?.revision != null,
          retire: context.work?.retire != null,
          repair: context.work?.repair === true,
          canary: context.work?.canary && {
            step: context.work.canary.step,
            paused: context.work.canary.paused,
            aborting: context.work.canary.abortReason !== null,
            stable: context.work.canary.stable !== null,
            serving: context.work.canary.stableServing,
            inPlace: (context.work.canary.inPlace?.length ?? 0) > 0,
          },
        });
      },
    });
    for (const { state } of Object.values(adjacency)) {
      for (const event of eventsFor(state as DeploymentSnapshot)) {
        for (const t of deploymentMachine.getTransitionData(state as DeploymentSnapshot, event as DeploymentEvent)) covered.add(t as never);
        coverEventless(state as DeploymentSnapshot, event);
      }
    }
    const missing = [...allTransitions()].filter(([t]) => !covered.has(t)).map(([, label]) => label);
    expect(missing).toEqual([]);
    // every state of the machine is reachable
    const reached = new Set(Object.values(adjacency).map(({ state }) => JSON.stringify((state as DeploymentSnapshot).value)));
    expect(reached.size).toBeGreaterThanOrEqual(20);
  });
});
