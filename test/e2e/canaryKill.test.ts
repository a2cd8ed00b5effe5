// End to end (issue #16's proof): a canary's runtime is killed with SIGKILL at every step — stage,
// warm, split 10 %, pause, wait-healthy, split 50 %, the second pause, promote, drain, archive, and
// an aborted canary's split, drain and archive — and the next process resumes at that step with
// the weights unchanged meanwhile. Then pause, resume, promote and abort over the HTTP API.
//
// The runtime runs in a child process with the real effects (fixtures/realRuntimeProcess.ts),
// against the in-process simulator through a proxy (test/kube/recordingProxy.ts) that can hold a
// chosen cluster request: a kill "mid-effect" waits until the effect's request is held, so it
// lands while the effect is in flight, deterministically, with no latency or timing involved.
// Held at `request`, the write never reached the cluster; held at `response`, it did and the
// effect never learnt it. Pauses are between effects: nothing is in flight, the kill lands on
// the journaled state alone.
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { sql } from 'slonik';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, type ApiApp } from '../../src/api/app.ts';
import { createToken } from '../../src/api/tokens.ts';
import type { StoreEvent } from '../../src/sim/store.ts';
import { createMetrics } from '../../src/metrics.ts';
import { sleepUntil } from '../helpers.ts';
import { startRecordingProxy, type Hold, type HoldRule, type RecordedRequest, type RecordingProxy } from '../kube/recordingProxy.ts';
import { installGatewayApi } from '../sim/gatewayApi.ts';
import { admitRoutes, canarySteps, ROUTE_TEMPLATE, routeWeights, waitRouteWeights } from './canarySupport.ts';
import {
  createOpsRepo, history, insertRow, log, row, simDeployment, simList, spawnRealRuntime, startE2e, waitStatus,
  type E2e, type OpsRepo, type RuntimeProcess,
} from './support.ts';

let e2e: E2e;
let repo: OpsRepo;
let proxy: RecordingProxy;
let kubeconfigFile: string;
const processes: RuntimeProcess[] = [];

beforeAll(async () => {
  // 100 simulated seconds per second: pods start in ~10 ms, an unpullable image backs off within ~60 ms
  e2e = await startE2e({ sim: { timeScale: 100, podStartupDelayMs: 1000 } });
  await installGatewayApi(e2e.sim);
  repo = await createOpsRepo(e2e, 'platform', {
    'values.yaml': 'replicas: 2\n',
    'walk/deployment.yaml': ROUTE_TEMPLATE,
    'walk/values.yaml': canarySteps(['2s', '2s']),
    'fall/deployment.yaml': ROUTE_TEMPLATE,
    'fall/values.yaml': canarySteps(['2s', '2s']),
    'knob/deployment.yaml': ROUTE_TEMPLATE,
    'knob/values.yaml': canarySteps(['2s', '60s']),
  });
  proxy = await startRecordingProxy(e2e.sim.url);
  kubeconfigFile = path.join(e2e.dir, 'kubeconfig-proxy');
  await writeFile(kubeconfigFile, proxy.kubeconfig(e2e.sim.kubeconfigYaml()));
});

afterEach(async () => {
  await Promise.all(processes.splice(0).map((p) => p.kill('SIGKILL')));
});

afterAll(async () => {
  await Promise.all(processes.splice(0).map((p) => p.kill('SIGKILL')));
  await proxy?.close();
  await e2e?.stop();
});

/** A real-effects runtime in a child process; `instanceId` again is a restarted pod, a new one another replica. */
async function start(instanceId: string = randomUUID()): Promise<RuntimeProcess> {
  // a busy machine starts a Node process slowly: the readiness wait is generous
  const p = await spawnRealRuntime(e2e, { KUBECONFIG_FILE: kubeconfigFile, INSTANCE_ID: instanceId, LEASE_TTL_MS: '1500', TICK_MS: '100', FAIL_FAST_GRACE_MS: '1000' }, { readyTimeoutMs: 60_000 });
  processes.push(p);
  return p;
}

async function kill(p: RuntimeProcess): Promise<void> {
  await p.kill('SIGKILL');
  processes.splice(processes.indexOf(p), 1);
}

const Transition = z.object({ seq: z.number(), from_state: z.string().nullable(), to_state: z.string(), action_id: z.string().nullable() });

async function transitionsOf(id: string, afterSeq = 0) {
  return await e2e.db.any(sql.type(Transition)`
    select seq::int, from_state, to_state, action_id from deployment_transitions where deployment_id = ${id} and seq > ${afterSeq} order by seq`);
}

async function lastSeq(id: string): Promise<number> {
  return (await transitionsOf(id)).at(-1)?.seq ?? 0;
}

const leaseHolder = async (id: string) =>
  await e2e.db.maybeOneFirst(sql.type(z.object({ instance_id: z.string() }))`
    select instance_id::text from deployment_leases where deployment_id = ${id} and expires_at > now()`);

/**
 * Every change of one HTTPRoute's backends in the simulator's store, as it happened (a store
 * subscription, so no intermediate state is missed between polls), with whether a runtime was
 * running at the time.
 */
function watchRoute(namespace: string, name: string) {
  const seen: Array<{ backends: string[]; down: boolean }> = [];
  let previous = JSON.stringify(routeWeights(e2e.sim, namespace, name) ?? []);
  let down = false;
  const unsubscribe = e2e.sim.store.subscribe((event: StoreEvent) => {
    if (event.resource.kind !== 'HTTPRoute' || event.object.metadata.namespace !== namespace || event.object.metadata.name !== name) return;
    const rules = (event.object.spec as { rules?: Array<{ backendRefs?: Array<{ name: string; weight?: number }> }> }).rules ?? [];
    const backends = event.type === 'DELETED' ? [] : (rules[0]?.backendRefs ?? []).map((b) => `${b.name}:${b.weight ?? 1}`);
    if (JSON.stringify(backends) === previous) return;
    previous = JSON.stringify(backends);
    seen.push({ backends, down });
  });
  return {
    seen,
    setDown: (value: boolean) => {
      down = value;
    },
    stop: unsubscribe,
  };
}

/** The share of the route's weight that goes to `revision` (0 … 1). */
function share(backends: string[], service: string): number {
  const parsed = backends.map((b) => {
    const [name, weight] = b.split(':');
    return { name, weight: Number(weight) };
  });
  const total = parsed.reduce((sum, b) => sum + b.weight, 0);
  return total === 0 ? 0 : (parsed.find((b) => b.name === service)?.weight ?? 0) / total;
}

/** Deployments and Services named `<project>-r<N>` in the namespace: the revisions the cluster holds. */
function revisionObjects(namespace: string, project: string): string[] {
  const pattern = new RegExp(`^${project}-r\\d+$`);
  return ['Deployment', 'Service']
    .flatMap((kind) => simList(e2e.sim, kind, namespace).map((o) => `${kind}/${o.metadata.name}`))
    .filter((name) => pattern.test(name.split('/')[1] ?? ''))
    .sort();
}

// ---- kill points ----

interface Kill {
  readonly point: KillPoint;
  readonly at: Date;
  /** the route's backends at the kill */
  readonly weights: string[] | undefined;
  readonly held: Hold | undefined;
  /** where the proxy's request log stood at the kill */
  readonly requestsBefore: number;
}

interface KillPoint {
  /** the step, as the history phase names it */
  readonly step: string;
  /** the journaled state the kill waits for (deployment_transitions.to_state) */
  readonly state: string;
  /** the cluster request in flight at the kill; none: the kill lands between effects */
  readonly hold?: HoldRule;
}

const isWrite = (r: RecordedRequest) => r.verb === 'patch' || r.verb === 'create' || r.verb === 'update' || r.verb === 'delete';
const realWrite = (r: RecordedRequest) => isWrite(r) && !r.query.has('dryRun');

/** A write (dry-run or real) to one object (or its scale subresource), or only its real write. */
function writeTo(namespace: string, plural: string, name: string, options: { real?: boolean; scale?: boolean } = {}) {
  const suffix = `/namespaces/${namespace}/${plural}/${name}${options.scale ? '/scale' : ''}`;
  return (r: RecordedRequest) => (options.real ? realWrite(r) : isWrite(r)) && r.path.endsWith(suffix);
}

/**
 * Walks one deployment's action through `points`: at each, waits until the process is there
 * (the journaled state, and the held request when the point has one), SIGKILLs it, and lets the
 * next process go on: every fourth kill (the first included) a restart with the same instance
 * id (a crash-looping pod, which reclaims its leases at once), else a standby started beforehand
 * with a new one (another replica, which takes the leases over once they expire). Checks that nothing moved the route
 * while no process held the deployment, and that the first thing the next process journals is
 * the end of the very step it was killed in: it resumed there, it did not start over.
 */
async function walk(
  id: string,
  route: ReturnType<typeof watchRoute>,
  first: RuntimeProcess,
  points: readonly KillPoint[],
  /** starts the action; calls `arm` when the first point's hold may catch requests (when it returns, at the latest) */
  trigger: (arm: () => void) => Promise<void>,
): Promise<{ kills: Kill[]; process: RuntimeProcess }> {
  const { project } = await row(e2e.db, id);
  const namespace = `${project}-prod`;
  let current = first;
  let afterSeq = await lastSeq(id);
  // only the requests of the process that hosts the deployment are held (a standby's are not)
  const holdFor = (point: KillPoint | undefined): Hold | undefined =>
    point?.hold && proxy.hold({ ...point.hold, match: (r) => r.headers['x-keelson-client'] === current.instanceId && point.hold!.match(r) });
  let hold: Hold | undefined;
  const arm = () => {
    hold ??= holdFor(points[0]);
  };
  const kills: Kill[] = [];
  let standby: Promise<RuntimeProcess> | undefined;
  const started = Date.now();
  await trigger(arm);
  arm();
  for (const [i, point] of points.entries()) {
    const takeover = i % 4 !== 0;
    if (takeover) standby ??= start();
    await sleepUntil(async () => {
      const last = (await transitionsOf(id, afterSeq)).at(-1);
      return last?.to_state === point.state && (hold === undefined || hold.held.length > 0);
    }, { timeoutMs: 60_000, intervalMs: 10, message: `${project} at ${point.step} (${point.state}${hold ? ', its request held' : ''})` });
    console.log(`${project}: killing in ${point.step} after ${Date.now() - started} ms`);
    await kill(current);
    route.setDown(true);
    const at = new Date();
    const killSeq = await lastSeq(id);
    // the kill landed in that step: nothing journaled after it
    expect((await transitionsOf(id, afterSeq)).at(-1)?.to_state, `${project} killed in ${point.step}`).toBe(point.state);
    const atKill = routeWeights(e2e.sim, namespace, project);
    kills.push({ point, at, weights: atKill, held: hold, requestsBefore: proxy.requests.length });
    hold?.stop();

    // the kill does not wait for the standby to be ready: a pause would run out meanwhile
    current = takeover ? await standby! : await start(current.instanceId);
    standby = undefined;
    hold = holdFor(points[i + 1]);
    // The successor acts only once it holds the lease, and its first cluster write comes after
    // it rendered the plan again (a render process): polled every 5 ms, the lease is seen first.
    await sleepUntil(async () => (await leaseHolder(id)) === current.instanceId, { timeoutMs: 60_000, intervalMs: 5, message: `${project}: the next process holds the lease` });
    route.setDown(false);
    const leased = Date.now();
    // no process held it in between: the route is as the kill left it
    expect(routeWeights(e2e.sim, namespace, project), `${project}: weights while down after a kill in ${point.step}`).toEqual(atKill);
    const resumed = await sleepUntil(async () => (await transitionsOf(id, killSeq))[0], { timeoutMs: 60_000, intervalMs: 10, message: `${project}: a transition after the kill in ${point.step}` });
    expect(resumed.from_state, `${project}: the next process resumed in ${point.step}`).toBe(point.state);
    console.log(`${project}: ${point.step}: ${takeover ? 'taken over' : 'restarted'} ${leased - at.getTime()} ms after the kill; its first transition ${Date.now() - leased} ms later`);
    afterSeq = killSeq;
  }
  return { kills, process: current };
}

/**
 * Re-run idempotently: the effect in flight at each kill ran again in the next process. A write
 * held before the cluster saw it is sent again; one the cluster took (its answer held) is found
 * done and not repeated — the cluster got it once.
 */
function expectReRuns(kills: readonly Kill[]): void {
  for (const [i, { point, held, requestsBefore }] of kills.entries()) {
    if (!point.hold || !held) continue;
    // what the next process sent, until the next kill
    const sent = proxy.requests.slice(requestsBefore, kills[i + 1]?.requestsBefore).filter(point.hold.match).length;
    if (point.hold.at === 'request') expect(sent, `${point.step}: its held request sent again after the kill`).toBeGreaterThan(0);
    else expect(sent, `${point.step}: the write the cluster took is not repeated`).toBe(0);
  }
}

// the canary's steps as an uninterrupted run journals them (test/e2e/canary.test.ts walks the same)
const PROMOTED_PHASES = (stable: string, pause: string) => [
  'sync', 'render', 'stage', 'warm', 'split 10 %', `pause ${pause}`, 'wait-healthy', 'split 50 %', `pause ${pause}`, 'promote', `drain ${stable}`, `archive ${stable}`,
];
const PROMOTED_STATES = [
  'syncing.fetching.running', 'syncing.rendering.running', 'applying.staging.running', 'applying.warming.running',
  'verifying.canary.steps.splitting.running', 'verifying.canary.steps.pausing', 'verifying.canary.steps.checking.running',
  'verifying.canary.steps.splitting.running', 'verifying.canary.steps.pausing',
  'verifying.canary.promoting.splitting.running', 'verifying.canary.promoting.draining.running', 'verifying.canary.promoting.archiving.running',
  'healthy',
];

const ABORTED_STATES = (inWarm: boolean) => [
  'syncing.fetching.running', 'syncing.rendering.running', 'applying.staging.running', 'applying.warming.running',
  ...(inWarm ? [] : ['verifying.canary.steps.splitting.running', 'verifying.canary.steps.pausing']),
  'verifying.canary.aborting.splitting.running', 'verifying.canary.aborting.draining.running', 'verifying.canary.aborting.archiving.running',
  'failed',
];

describe('SIGKILL at every canary step', () => {
  it('a canary 10 % → 50 % → 100 % killed in each of its steps resumes at that step, weights untouched while down and never backwards', async () => {
    await admitRoutes(e2e.db, 'walk');
    const ns = 'walk-prod';
    const p1 = await start();
    const id = await insertRow(e2e.db, { project: 'walk', image: 'registry.example/walk:1', opsRepoId: repo.id });
    await waitStatus(e2e.db, id, 'healthy', 60_000);
    expect(routeWeights(e2e.sim, ns, 'walk')).toEqual(['walk-r1:1']);
    const route = watchRoute(ns, 'walk');
    const before = await lastSeq(id);

    const points: KillPoint[] = [
      // mid-effect: the revision's Deployment is applied at 0 replicas, its Service's write is held
      { step: 'stage', state: 'applying.staging.running', hold: { at: 'request', match: writeTo(ns, 'services', 'walk-r2') } },
      // mid-effect: the scale-up reached the cluster, its answer is held (the pods start meanwhile)
      { step: 'warm', state: 'applying.warming.running', hold: { at: 'response', match: writeTo(ns, 'deployments', 'walk-r2', { scale: true }) } },
      // mid-effect: the route's write never reaches the cluster (all traffic still on r1)
      { step: 'split 10 %', state: 'verifying.canary.steps.splitting.running', hold: { at: 'request', match: writeTo(ns, 'httproutes', 'walk') } },
      // between effects: the pause's deadline is in the snapshot
      { step: 'pause 2 s', state: 'verifying.canary.steps.pausing' },
      // mid-effect: a fresh process's first read of Deployments (the check reads the cluster
      // cache, which a new process fills with a list first) is held
      {
        step: 'wait-healthy', state: 'verifying.canary.steps.checking.running',
        hold: { at: 'request', match: (r) => r.verb === 'list' && r.path.endsWith('/deployments') },
      },
      // mid-effect: the route is at 50/50 in the cluster, the split's record (the Service's annotation) is held
      { step: 'split 50 %', state: 'verifying.canary.steps.splitting.running', hold: { at: 'request', match: writeTo(ns, 'services', 'walk') } },
      { step: 'pause 2 s', state: 'verifying.canary.steps.pausing' },
      // mid-effect: the route went to 100 % r2 in the cluster; its answer is held
      { step: 'promote', state: 'verifying.canary.promoting.splitting.running', hold: { at: 'response', match: writeTo(ns, 'httproutes', 'walk', { real: true }) } },
      // mid-effect: r1 is not scaled down yet
      { step: 'drain r1', state: 'verifying.canary.promoting.draining.running', hold: { at: 'request', match: writeTo(ns, 'deployments', 'walk-r1', { scale: true }) } },
      // mid-effect: r1's deletion is held
      { step: 'archive r1', state: 'verifying.canary.promoting.archiving.running', hold: { at: 'request', match: writeTo(ns, 'deployments', 'walk-r1') } },
    ];
    const { kills, process: last } = await walk(id, route, p1, points, async (arm) => {
      arm();
      await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/walk:2' where id = ${id}`);
    });

    const done = await waitStatus(e2e.db, id, 'healthy', 60_000);
    route.stop();
    expect(done.current_image_ref).toBe('registry.example/walk:2');
    expect(routeWeights(e2e.sim, ns, 'walk')).toEqual(['walk-r2:1']);
    expect(revisionObjects(ns, 'walk')).toEqual(['Deployment/walk-r2', 'Service/walk-r2']);
    expect(simDeployment(e2e.sim, ns, 'walk-r2')).toMatchObject({ image: 'registry.example/walk:2', replicas: 2, readyReplicas: 2 });

    // exactly once: every state of the action journaled once, as an uninterrupted run journals them
    // (the sync too: nothing started over), and every step once in the history row
    expect((await transitionsOf(id, before)).map((t) => t.to_state)).toEqual(PROMOTED_STATES);
    const records = await history(e2e.db, id);
    expect(records.map((r) => [r.action, r.status, r.image_ref])).toEqual([
      ['deploy', 'succeeded', 'registry.example/walk:1'],
      ['deploy', 'succeeded', 'registry.example/walk:2'],
    ]);
    const phases = records.at(-1)?.phases ?? [];
    expect(phases.map((p) => p.name)).toEqual(PROMOTED_PHASES('r1', '2 s'));
    expect(phases.every((p) => p.error === null)).toBe(true);
    // a pause killed is not restarted: it counts from when it began, before the kill
    const pauses = phases.filter((p) => p.name === 'pause 2 s');
    const pauseKills = kills.filter((k) => k.point.step === 'pause 2 s');
    expect(pauses).toHaveLength(2);
    for (const [i, pause] of pauses.entries()) {
      expect(new Date(pause.started_at).getTime()).toBeLessThan(pauseKills[i]!.at.getTime());
      expect(pause.duration_ms).toBeGreaterThanOrEqual(2_000);
    }
    expectReRuns(kills);

    // the weights, as the store saw every change: 90/10, 50/50, 100 % r2 — each once, the share of
    // r2 never going down, and nothing changed while no process ran
    expect(route.seen.map((s) => s.backends)).toEqual([['walk-r1:9', 'walk-r2:1'], ['walk-r1:1', 'walk-r2:1'], ['walk-r2:1']]);
    const shares = route.seen.map((s) => share(s.backends, 'walk-r2'));
    expect(shares).toEqual([...shares].sort((a, b) => a - b));
    expect(route.seen.filter((s) => s.down)).toEqual([]);
    // while down, the route was what the kill left: r1 only until the split's write, then 90/10 …
    expect(kills.map((k) => [k.point.step, k.weights?.join(' ')])).toEqual([
      ['stage', 'walk-r1:1'],
      ['warm', 'walk-r1:1'],
      ['split 10 %', 'walk-r1:1'],
      ['pause 2 s', 'walk-r1:9 walk-r2:1'],
      ['wait-healthy', 'walk-r1:9 walk-r2:1'],
      ['split 50 %', 'walk-r1:1 walk-r2:1'],
      ['pause 2 s', 'walk-r1:1 walk-r2:1'],
      ['promote', 'walk-r2:1'],
      ['drain r1', 'walk-r2:1'],
      ['archive r1', 'walk-r2:1'],
    ]);
    await kill(last);
  }, 400_000);

  it('an aborted canary killed in its abort split, drain and archive: traffic back on the stable revision, no canary workload left', async () => {
    await admitRoutes(e2e.db, 'fall');
    const ns = 'fall-prod';
    const p1 = await start();
    const id = await insertRow(e2e.db, { project: 'fall', image: 'registry.example/fall:1', opsRepoId: repo.id });
    await waitStatus(e2e.db, id, 'healthy', 60_000);
    const route = watchRoute(ns, 'fall');

    // a canary that fails to warm (its image cannot be pulled): aborted before any traffic
    let before = await lastSeq(id);
    const failed = await walk(id, route, p1, [
      // mid-effect: the scale-up of the unpullable image reached the cluster, its answer is held
      { step: 'warm', state: 'applying.warming.running', hold: { at: 'response', match: writeTo(ns, 'deployments', 'fall-r2', { scale: true }) } },
      // mid-effect: the split back to r1 only (r2 never got traffic) is held; a new process does
      // not know the route it finds and asks the cluster with a dry-run first, which is held
      { step: 'abort', state: 'verifying.canary.aborting.splitting.running', hold: { at: 'request', match: writeTo(ns, 'httproutes', 'fall') } },
      // mid-effect: r2's scale-down is held
      { step: 'drain r2', state: 'verifying.canary.aborting.draining.running', hold: { at: 'request', match: writeTo(ns, 'deployments', 'fall-r2', { scale: true }) } },
      // mid-effect: r2's deletion reached the cluster, its answer is held
      { step: 'archive r2', state: 'verifying.canary.aborting.archiving.running', hold: { at: 'response', match: writeTo(ns, 'deployments', 'fall-r2') } },
    ], async (arm) => {
      arm();
      await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/fall:doesnotexist' where id = ${id}`);
    });
    const down = await waitStatus(e2e.db, id, 'failed', 60_000);
    expect(down).toMatchObject({ current_image_ref: 'registry.example/fall:1', image_ref: 'registry.example/fall:doesnotexist' });
    expect(down.last_error).toMatch(/ImagePullBackOff/);
    expect(routeWeights(e2e.sim, ns, 'fall')).toEqual(['fall-r1:1']);
    expect(revisionObjects(ns, 'fall')).toEqual(['Deployment/fall-r1', 'Service/fall-r1']);
    expect(simDeployment(e2e.sim, ns, 'fall-r1')).toMatchObject({ image: 'registry.example/fall:1', readyReplicas: 2 });
    expect((await transitionsOf(id, before)).map((t) => t.to_state)).toEqual(ABORTED_STATES(true));
    expect((await history(e2e.db, id)).at(-1)?.phases.map((p) => [p.name, p.error === null ? 'ok' : 'error'])).toEqual([
      ['sync', 'ok'], ['render', 'ok'], ['stage', 'ok'], ['warm', 'error'], ['abort', 'ok'], ['drain r2', 'ok'], ['archive r2', 'ok'],
    ]);
    expectReRuns(failed.kills);
    // the route never moved: r2 never had traffic, and the abort's split re-sent r1 only
    expect(route.seen).toEqual([]);

    // a canary at 10 % aborted by command, killed while its split back to r1 is held before the
    // cluster: the 10 % stays on r3 while no process runs, then goes back to r1
    before = await lastSeq(id);
    const commanded = await walk(id, route, failed.process, [
      // mid-effect: the route's write back to r1 only never reaches the cluster
      { step: 'abort', state: 'verifying.canary.aborting.splitting.running', hold: { at: 'request', match: writeTo(ns, 'httproutes', 'fall') } },
    ], async (arm) => {
      await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/fall:3' where id = ${id}`);
      await waitRouteWeights(e2e.sim, ns, 'fall', ['fall-r1:9', 'fall-r3:1'], 60_000);
      await sleepUntil(async () => (await transitionsOf(id, before)).at(-1)?.to_state === 'verifying.canary.steps.pausing', { message: 'fall in its pause at 10 %' });
      // the split to 10 % is done: the next write to the route is the abort's
      arm();
      await e2e.db.query(sql.unsafe`update deployments set canary_command = 'abort' where id = ${id}`);
    });
    const aborted = await waitStatus(e2e.db, id, 'failed', 60_000);
    route.stop();
    expect(aborted).toMatchObject({ current_image_ref: 'registry.example/fall:1', last_error: 'canary r3 aborted by command', canary_command: null });
    expect(commanded.kills.map((k) => k.weights)).toEqual([['fall-r1:9', 'fall-r3:1']]);
    expect(routeWeights(e2e.sim, ns, 'fall')).toEqual(['fall-r1:1']);
    expect(revisionObjects(ns, 'fall')).toEqual(['Deployment/fall-r1', 'Service/fall-r1']);
    expect((await transitionsOf(id, before)).map((t) => t.to_state)).toEqual(ABORTED_STATES(false));
    // the pause the command cut short, the command, then the split back (`abort`, as after a failed step)
    const commandedPhases = (await history(e2e.db, id)).at(-1)?.phases ?? [];
    expect(commandedPhases.map((p) => p.name)).toEqual([
      'sync', 'render', 'stage', 'warm', 'split 10 %', 'pause 2 s', 'abort (command)', 'abort', 'drain r3', 'archive r3',
    ]);
    expect(commandedPhases.find((p) => p.name === 'pause 2 s')).toMatchObject({ detail: 'ended by abort', error: null });
    expectReRuns(commanded.kills);
    // the canary's share went up to 10 % and back to 0, never up again, never while down
    expect(route.seen.map((s) => s.backends)).toEqual([['fall-r1:9', 'fall-r3:1'], ['fall-r1:1']]);
    expect(route.seen.filter((s) => s.down)).toEqual([]);
    expect((await history(e2e.db, id)).map((h) => h.status)).toEqual(['succeeded', 'failed', 'failed']);
    await kill(commanded.process);
  }, 400_000);
});

describe('canary commands over the HTTP API', () => {
  let api: ApiApp;
  let server: Server;
  let baseUrl: string;

  beforeAll(async () => {
    // the API as serve wires it, on the same database as the runtime
    api = createApp({ db: e2e.db, databaseUrl: e2e.t.url, log, metrics: createMetrics() });
    server = api.app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await api?.close();
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  async function post(command: string, token: string) {
    const response = await fetch(`${baseUrl}/api/projects/knob/deployments/prod/canary/${command}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    const text = await response.text();
    return { status: response.status, text, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  }

  async function consumed(id: string): Promise<void> {
    await sleepUntil(async () => (await row(e2e.db, id)).canary_command === null, { timeoutMs: 60_000, message: 'the command consumed' });
  }

  async function waitState(id: string, state: string, afterSeq: number): Promise<void> {
    await sleepUntil(async () => (await transitionsOf(id, afterSeq)).some((t) => t.to_state === state), { timeoutMs: 60_000, message: `transition to ${state}` });
  }

  const auditRows = async () =>
    await e2e.db.any(sql.type(z.object({ actor: z.string(), action: z.string(), payload: z.record(z.string(), z.unknown()) }))`
      select actor, action, payload from audit_log where target = 'knob/prod' and action like 'deployment.canary.%' order by id`);

  it('pause, resume, promote and abort over HTTP with a project token; another project\'s token and an unknown command change nothing', async () => {
    await admitRoutes(e2e.db, 'knob');
    const ns = 'knob-prod';
    await start();
    const id = await insertRow(e2e.db, { project: 'knob', image: 'registry.example/knob:1', opsRepoId: repo.id });
    await waitStatus(e2e.db, id, 'healthy', 60_000);
    const { token } = await createToken(e2e.db, { name: 'knob-ci', permissions: ['deploy:read', 'deploy:promote'], project: 'knob' });
    const { token: foreign } = await createToken(e2e.db, { name: 'other-ci', permissions: ['deploy:promote'], project: 'other' });

    let before = await lastSeq(id);
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/knob:2' where id = ${id}`);
    await waitRouteWeights(e2e.sim, ns, 'knob', ['knob-r1:9', 'knob-r2:1'], 60_000);

    // a token of another project: refused, nothing written, nothing audited
    const refused = await post('abort', foreign);
    // a token of another project does not see this one: 404, as for a deployment that is not there
    expect(refused.status).toBe(404);
    expect(refused.body).toMatchObject({ error: { code: 'not_found', message: 'No project "knob" is visible to this token.' } });
    // an unknown command: 400 naming the parameter and what it accepts
    const unknown = await post('skip', token);
    expect(unknown.status).toBe(400);
    expect(unknown.text).toMatch(/command/);
    expect(unknown.text).toMatch(/pause.*resume.*promote.*abort/);
    expect(unknown.text).toContain('unknown command \\"skip\\"');
    expect((await row(e2e.db, id)).canary_command).toBeNull();
    expect(await auditRows()).toEqual([]);

    // pause (in the 2 s pause at 10 %): when it ends, the next step waits
    const paused = await post('pause', token);
    expect(paused).toMatchObject({ status: 202, body: { command: 'pause', generation: 2 } });
    await consumed(id);
    await waitState(id, 'verifying.canary.steps.held', before);
    expect(routeWeights(e2e.sim, ns, 'knob')).toEqual(['knob-r1:9', 'knob-r2:1']);
    const detail = await fetch(`${baseUrl}/api/projects/knob/deployments/prod`, { headers: { authorization: `Bearer ${token}` } });
    const shown = (await detail.json()) as { snapshot?: { canary: unknown } };
    expect(detail.status, JSON.stringify(shown)).toBe(200);
    expect(shown.snapshot?.canary).toMatchObject({ revision: 'r2', stable: 'r1', paused: true });

    expect(await post('resume', token)).toMatchObject({ status: 202, body: { command: 'resume' } });
    await waitRouteWeights(e2e.sim, ns, 'knob', ['knob-r1:1', 'knob-r2:1'], 60_000);
    // in the 60 s pause at 50 %: promote ends it now
    await waitState(id, 'verifying.canary.steps.pausing', (await transitionsOf(id, before)).find((t) => t.to_state === 'verifying.canary.steps.held')!.seq);
    expect(await post('promote', token)).toMatchObject({ status: 202, body: { command: 'promote' } });
    await waitRouteWeights(e2e.sim, ns, 'knob', ['knob-r2:1'], 60_000);
    const promoted = await waitStatus(e2e.db, id, 'healthy', 60_000);
    expect(promoted).toMatchObject({ current_image_ref: 'registry.example/knob:2', generation: 2, canary_command: null });
    expect(revisionObjects(ns, 'knob')).toEqual(['Deployment/knob-r2', 'Service/knob-r2']);
    // the 60 s pause is a phase, ended by the promote
    const promotedPhases = (await history(e2e.db, id)).at(-1)?.phases ?? [];
    expect(promotedPhases.map((p) => [p.name, p.detail])).toEqual([
      ['sync', expect.anything()], ['render', expect.anything()], ['stage', expect.anything()], ['warm', expect.anything()], ['split 10 %', expect.anything()],
      ['pause 2 s', null], ['wait-healthy', expect.anything()], ['split 50 %', expect.anything()], ['pause 60 s', 'ended by promote'], ['promote', expect.anything()],
      ['drain r1', expect.anything()], ['archive r1', expect.anything()],
    ]);

    before = await lastSeq(id);
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/knob:3' where id = ${id}`);
    await waitRouteWeights(e2e.sim, ns, 'knob', ['knob-r2:9', 'knob-r3:1'], 60_000);
    expect(await post('abort', token)).toMatchObject({ status: 202, body: { command: 'abort', generation: 3 } });
    const aborted = await waitStatus(e2e.db, id, 'failed', 60_000);
    expect(aborted).toMatchObject({ current_image_ref: 'registry.example/knob:2', generation: 3, last_error: 'canary r3 aborted by command', canary_command: null });
    expect(routeWeights(e2e.sim, ns, 'knob')).toEqual(['knob-r2:1']);
    expect(revisionObjects(ns, 'knob')).toEqual(['Deployment/knob-r2', 'Service/knob-r2']);
    // aborted from its pause at 10 %: straight to the split back, never promoting
    const states = (await transitionsOf(id, before)).map((t) => t.to_state);
    expect(states).toContain('verifying.canary.aborting.splitting.running');
    expect(states.filter((s) => s.includes('promoting'))).toEqual([]);

    // no canary in flight: accepted, consumed, and nothing changes
    const seq = await lastSeq(id);
    const idle = await post('promote', token);
    expect(idle).toMatchObject({ status: 202, body: { command: 'promote', generation: 3, current_status: 'failed' } });
    await consumed(id);
    expect(await row(e2e.db, id)).toMatchObject({ current_status: 'failed', generation: 3, current_image_ref: 'registry.example/knob:2' });
    expect(await lastSeq(id)).toBe(seq);
    expect(routeWeights(e2e.sim, ns, 'knob')).toEqual(['knob-r2:1']);
    expect((await history(e2e.db, id)).map((h) => h.status)).toEqual(['succeeded', 'succeeded', 'failed']);

    // each accepted command audited once, under the token's name; the refused ones not at all
    expect((await auditRows()).map((a) => [a.actor, a.action, a.payload])).toEqual([
      ['knob-ci', 'deployment.canary.pause', { generation: 2 }],
      ['knob-ci', 'deployment.canary.resume', { generation: 2 }],
      ['knob-ci', 'deployment.canary.promote', { generation: 2 }],
      ['knob-ci', 'deployment.canary.abort', { generation: 3 }],
      ['knob-ci', 'deployment.canary.promote', { generation: 3 }],
    ]);
  }, 300_000);
});
