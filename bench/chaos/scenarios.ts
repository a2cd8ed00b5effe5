// The chaos scenarios of issue #12: each builds a world (harness.ts), disturbs it, lets it
// settle, checks every invariant (checks.ts) and ends with SIGTERM to every process. A
// scenario never throws for a broken invariant: it returns the violations with its figures,
// and the caller (run.ts, test/chaos/chaos.test.ts) decides.
import path from 'node:path';
import { isWrite } from '../../src/sim/index.ts';
import {
  checkInvariants, firstTransitionsSince, INVARIANTS, liveLeases, readRows, startSeqSampler, terminateAll, waitConverged, waitSettled,
  type Violations,
} from './checks.ts';
import { BUMPS_ONLY, FULL_MIX, rng, startDriver } from './driver.ts';
import { createWorld, LEASE_TTL_MS, sleep, waitFor, type KeelsonProcess, type World } from './harness.ts';
import { summary, type FenceWindow } from './invariants.ts';

export const SCENARIOS = ['kill9', 'pg-restart', 'partition', 'api-faults', 'replicas'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];
export type Profile = 'short' | 'full';

export interface ScenarioOptions {
  readonly profile: Profile;
  /** default per scenario and profile */
  readonly deployments?: number;
  /** kill9 only; default 100 (full) or 5 (short) */
  readonly kills?: number;
  readonly seed: number;
  /** `stable`: a restarted process keeps its KEELSON_INSTANCE_ID (a pod name); `fresh`: a new one */
  readonly identity: 'stable' | 'fresh';
  /** where manifests come from: the git ops repo (default) or the built-in template */
  readonly template?: 'repo' | 'builtin';
  readonly logDir: string;
  readonly progress: (line: string) => void;
}

export type Figure = number | string | null;

export interface ScenarioResult {
  readonly scenario: ScenarioName;
  readonly profile: Profile;
  readonly passed: boolean;
  readonly durationS: number;
  readonly figures: Record<string, Figure>;
  readonly violations: Violations;
}

const TICK_MS = 10_000;
const SETTLE_TIMEOUT = { short: 120_000, full: 300_000 };

const round = (n: number | null, digits = 0): number | null => (n === null ? null : Math.round(n * 10 ** digits) / 10 ** digits);
const seconds = (ms: number | null): number | null => round(ms === null ? null : ms / 1000, 2);

function spread(values: readonly number[], prefix: string): Record<string, Figure> {
  const s = summary(values);
  return { [`${prefix}_n`]: s.n, [`${prefix}_median_s`]: seconds(s.median), [`${prefix}_p90_s`]: seconds(s.p90), [`${prefix}_max_s`]: seconds(s.max) };
}

async function openWorld(name: ScenarioName, options: ScenarioOptions): Promise<World> {
  options.progress(`${name}: starting PostgreSQL, the simulator and an ops repo`);
  return await createWorld({ logDir: path.join(options.logDir, name), progress: options.progress, tickInterval: `${TICK_MS / 1000}s`, template: options.template });
}

async function start(world: World, name: string, options: ScenarioOptions, dbPort?: number): Promise<KeelsonProcess> {
  const p = await world.spawnKeelson(name, { dbPort, identity: options.identity });
  await world.waitReady(p);
  options.progress(`  ${name} serving (pid ${p.pid}, started in ${((p.readyAt! - p.spawnedAt) / 1000).toFixed(1)} s)`);
  return p;
}

async function settleFirst(world: World, options: ScenarioOptions): Promise<void> {
  const ms = await waitSettled(world, SETTLE_TIMEOUT[options.profile], options.progress);
  if (ms === null) throw new Error(`the ${world.deployments.length} deployments did not reach healthy at the start (the world is broken, not an invariant)`);
  options.progress(`  ${world.deployments.length} deployments healthy in ${(ms / 1000).toFixed(1)} s`);
}

/** Waits until each process holds at least one lease (two replicas share the deployments). */
async function balanced(world: World, processes: readonly KeelsonProcess[], timeoutMs = 40_000): Promise<boolean> {
  return !!(await waitFor(async () => {
    const leases = await liveLeases(world);
    return processes.every((p) => leases.some((l) => l.instanceId === p.instanceId));
  }, timeoutMs, 250));
}

/** Settles, checks, SIGTERMs every process and puts the result together. */
async function finish(
  world: World,
  scenario: ScenarioName,
  options: ScenarioOptions,
  started: number,
  figures: Record<string, Figure>,
  extra: { fenceWindows?: FenceWindow[]; sampler: ReturnType<typeof startSeqSampler>; violations?: Violations },
): Promise<ScenarioResult> {
  options.progress(`${scenario}: waiting for every row to settle`);
  const settleMs = await waitSettled(world, SETTLE_TIMEOUT[options.profile], options.progress);
  figures.settle_s = seconds(settleMs);
  options.progress(`${scenario}: checking invariants`);
  const seqSamples = extra.sampler.stop();
  const check = await checkInvariants(world, { fenceWindows: extra.fenceWindows, seqSamples, tickIntervalMs: TICK_MS });
  options.progress(`${scenario}: SIGTERM to every process`);
  const { exits, violations: slow } = await terminateAll(world);
  const violations: Violations = { ...check.violations, 'SIGTERM exit within 20 s': slow, ...extra.violations };
  // fatal lines written while shutting down count too
  violations['no fatal log lines'] = world.processes.flatMap((p) => p.fatal.map((l) => `${p.name} (pid ${p.pid}) logged fatal: ${String(l.msg)}`));
  const exitMs = exits.map((e) => e.ms).filter((ms): ms is number => ms !== null);
  const all: Record<string, Figure> = {
    ...figures,
    ...check.figures,
    fatal_lines: violations['no fatal log lines'].length,
    exit_max_s: seconds(exitMs.length ? Math.max(...exitMs) : null),
    exits_over_20s: slow.length,
    exit_codes: exits.map((e) => String(e.code)).join(','),
  };
  for (const name of INVARIANTS) violations[name] ??= [];
  const passed = Object.values(violations).every((v) => v.length === 0);
  return { scenario, profile: options.profile, passed, durationS: Math.round((Date.now() - started) / 1000), figures: all, violations };
}

function driverFigures(stats: ReturnType<typeof startDriver>['stats']): Record<string, Figure> {
  return {
    changes: stats.bumps + stats.stops + stats.resumes + stats.rollbacks + stats.failing,
    bumps: stats.bumps,
    stops: stats.stops,
    resumes: stats.resumes,
    rollbacks: stats.rollbacks,
    failing_images: stats.failing,
  };
}

// ---- kill9 ----

async function kill9(world: World, options: ScenarioOptions, started: number): Promise<ScenarioResult> {
  const random = rng(options.seed);
  const n = options.deployments ?? (options.profile === 'full' ? 20 : 6);
  const kills = options.kills ?? (options.profile === 'full' ? 100 : 5);
  await world.createDeployments(n);
  let current = await start(world, 'k', options);
  await settleFirst(world, options);
  const sampler = startSeqSampler(world);
  const driver = startDriver(world, { deployments: world.deployments, intervalMs: options.profile === 'full' ? 250 : 400, mix: FULL_MIX, random });
  const restarts: { spawnAt: number; readyAt: number; inFlight: string[]; until: number }[] = []; // until: the next kill
  const phases = { apply: 0, verify: 0, random: 0, missed: 0 };
  for (let k = 0; k < kills; k++) {
    const mode = (['random', 'apply', 'verify'] as const)[k % 3]!;
    const victim = current;
    let hit: boolean;
    if (mode === 'random') {
      await sleep(1000 + random() * 6000);
      hit = true;
    } else if (mode === 'apply') {
      // SIGKILL from inside the simulator's request handling: the process is in the middle of
      // server-side applying a Deployment
      hit = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          off();
          resolve(false);
        }, 20_000);
        const off = world.sim.requests.on('request', (r) => {
          if (r.client !== victim.instanceId || !isWrite(r) || r.resource !== 'deployments') return;
          try {
            process.kill(-victim.pid, 'SIGKILL');
          } catch {
            // gone already
          }
          clearTimeout(timer);
          off();
          resolve(true);
        });
      });
    } else {
      // a row this incarnation took into verifying (not one a dead predecessor left there)
      hit = !!(await waitFor(async () => {
        const { rows } = await world.pool.query<{ n: number }>(
          `select count(*)::int as n from deployments d where d.current_status = 'verifying'
             and exists (select 1 from deployment_transitions t where t.deployment_id = d.id and t.to_state like 'verifying%' and t.at >= $1)`,
          [new Date(victim.spawnedAt)],
        );
        return (rows[0]?.n ?? 0) > 0;
      }, 20_000, 50));
    }
    if (hit) phases[mode]++;
    else phases.missed++;
    await world.kill9(victim);
    const killedAt = Date.now();
    const rows = await readRows(world);
    const inFlight = rows.filter((r) => r.observedGeneration !== r.generation || !['healthy', 'failed', 'stopped'].includes(r.currentStatus)).map((r) => r.id);
    const last = restarts.at(-1);
    if (last) last.until = killedAt;
    current = await world.spawnKeelson('k', { identity: options.identity });
    const restart = { spawnAt: current.spawnedAt, readyAt: Number.NaN, inFlight, until: Number.POSITIVE_INFINITY };
    restarts.push(restart);
    await world.waitReady(current);
    restart.readyAt = current.readyAt ?? Number.NaN;
    options.progress(`  kill ${k + 1}/${kills} (${mode}${hit ? '' : ', not found in time'}): ${inFlight.length} rows in flight; restarted in ${((current.readyAt! - current.spawnedAt) / 1000).toFixed(1)} s`);
  }
  // the last incarnation runs undisturbed while the driver keeps going a little
  await sleep(3000);
  await driver.stop();
  const resume: number[] = [];
  // the same, from the instant the new process answered /readyz: Node's start-up and keelson's
  // own (imports, migrations check, cluster cache) are excluded
  const resumeAfterReady: number[] = [];
  let notResumed = 0;
  for (const r of restarts) {
    if (r.inFlight.length === 0) continue;
    const first = await firstTransitionsSince(world, r.spawnAt, r.inFlight);
    for (const id of r.inFlight) {
      const at = first.get(id);
      if (at !== undefined && at < r.until) {
        resume.push(at - r.spawnAt);
        if (Number.isFinite(r.readyAt)) resumeAfterReady.push(Math.max(0, at - r.readyAt));
      } else notResumed++;
    }
  }
  return await finish(world, 'kill9', options, started, {
    deployments: n,
    kills,
    kills_in_apply: phases.apply,
    kills_in_verify: phases.verify,
    kills_at_random: phases.random,
    kills_phase_not_found: phases.missed,
    ...driverFigures(driver.stats),
    ...spread(resume, 'resume_after_restart'),
    ...spread(resumeAfterReady, 'resume_after_ready'),
    in_flight_not_resumed_before_next_kill: notResumed,
  }, { sampler });
}

// ---- pg-restart ----

async function pgRestart(world: World, options: ScenarioOptions, started: number): Promise<ScenarioResult> {
  const n = options.deployments ?? (options.profile === 'full' ? 20 : 6);
  const outages = options.profile === 'full' ? [5_000, 60_000] : [5_000];
  await world.createDeployments(n);
  const p = await start(world, 'a', options);
  await settleFirst(world, options);
  const sampler = startSeqSampler(world);
  const fenceWindows: FenceWindow[] = [];
  const figures: Record<string, Figure> = { deployments: n };
  let version = 100;
  for (const outage of outages) {
    // rollouts in flight when the database goes: every row gets a new image, every other one a
    // crash-looping one (its verification fails after the fail-fast grace, then auto-rollback
    // applies the previous image: cluster writes well after the outage began)
    version++;
    await world.pool.query(
      `update deployments set image_ref = 'registry.example/' || project || ':' || case when right(project, 1)::int % 2 = 0 then 'crashloop-' else '' end || $1::text`,
      [String(version)],
    );
    await waitFor(async () => {
      const { rows } = await world.pool.query<{ n: number }>(`select count(*)::int as n from deployments where current_status in ('applying', 'verifying')`);
      return (rows[0]?.n ?? 0) > 0;
    }, 20_000, 50);
    const stoppedAt = Date.now();
    options.progress(`  stopping PostgreSQL for ${outage / 1000} s with rollouts in flight`);
    await world.stopPostgres();
    await sleep(Math.max(0, outage - (Date.now() - stoppedAt)));
    await world.startPostgres();
    const returnedAt = Date.now();
    fenceWindows.push({ client: p.instanceId, from: stoppedAt, until: returnedAt });
    options.progress(`  PostgreSQL back after ${((returnedAt - stoppedAt) / 1000).toFixed(1)} s`);
    const label = `outage_${outage / 1000}s`;
    // the first transition journaled after the return (queued entries, resumed rollouts)
    const first = await waitFor(async () => {
      const map = await firstTransitionsSince(world, returnedAt);
      return map.size > 0 ? Math.min(...map.values()) : undefined;
    }, 60_000, 50);
    figures[`${label}_first_transition_after_return_s`] = seconds(first === undefined ? null : first - returnedAt);
    // and a change made now is acted on: every row deploys once more
    version++;
    const changedAt = Date.now();
    await world.pool.query(`update deployments set image_ref = 'registry.example/' || project || ':' || $1::text`, [String(version)]);
    const settled = await waitSettled(world, SETTLE_TIMEOUT[options.profile], options.progress);
    figures[`${label}_settled_after_return_s`] = seconds(settled === null ? null : Date.now() - returnedAt);
    figures[`${label}_change_after_return_settled_s`] = seconds(settled === null ? null : Date.now() - changedAt);
  }
  return await finish(world, 'pg-restart', options, started, figures, { sampler, fenceWindows });
}

// ---- partition ----

async function partition(world: World, options: ScenarioOptions, started: number): Promise<ScenarioResult> {
  const random = rng(options.seed);
  const n = options.deployments ?? (options.profile === 'full' ? 20 : 6);
  const cutMs = options.profile === 'full' ? 45_000 : 30_000;
  await world.createDeployments(n);
  const proxyA = await world.proxy();
  const proxyB = await world.proxy();
  const a = await start(world, 'a', options, proxyA.port);
  const b = await start(world, 'b', options, proxyB.port);
  await settleFirst(world, options);
  const shared = await balanced(world, [a, b]);
  const sampler = startSeqSampler(world);
  const driver = startDriver(world, { deployments: world.deployments, intervalMs: 400, mix: BUMPS_ONLY, random });
  await sleep(3000);
  const before = await liveLeases(world);
  const heldByA = before.filter((l) => l.instanceId === a.instanceId).map((l) => l.deploymentId);
  // The cut lands while a is applying: the API server answers slowly (5 s a request) and
  // the rows a holds get a new image. An apply is several requests, so a replica that does
  // not fence itself goes on writing to the cluster well after its lease expired.
  world.sim.faults.setLatency(5_000);
  await world.pool.query(`update deployments set image_ref = 'registry.example/' || project || ':cut' where id = any($1::uuid[])`, [heldByA]);
  await waitFor(async () => {
    const { rows } = await world.pool.query<{ n: number }>(`select count(*)::int as n from deployments where id = any($1::uuid[]) and current_status = 'applying'`, [heldByA]);
    return (rows[0]?.n ?? 0) > 0;
  }, 20_000, 50);
  options.progress(`  cutting a from PostgreSQL for ${cutMs / 1000} s (a holds ${heldByA.length} of ${n} leases and is applying; API latency 5 s)`);
  const cutAt = Date.now();
  proxyA.cut();
  const slowUntil = setTimeout(() => world.sim.faults.setLatency(0), 20_000);
  // a diagnostic: sessions waiting on a lock halfway through the cut (the cut replica's open
  // transactions keep theirs until the heal resets its connections)
  let lockWaits: number | null = null;
  const probe = setTimeout(() => {
    world.pool
      .query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`)
      .then((r) => (lockWaits = r.rows[0]?.n ?? 0), () => undefined);
  }, cutMs / 2);
  const takeover = await waitFor(async () => {
    const leases = await liveLeases(world);
    return heldByA.every((id) => leases.some((l) => l.deploymentId === id && l.instanceId === b.instanceId)) ? Date.now() : undefined;
  }, cutMs, 100);
  await sleep(Math.max(0, cutMs - (Date.now() - cutAt)));
  clearTimeout(slowUntil);
  clearTimeout(probe);
  world.sim.faults.setLatency(0);
  const healAt = Date.now();
  proxyA.heal();
  options.progress(`  healed after ${((healAt - cutAt) / 1000).toFixed(1)} s`);
  await sleep(3000);
  await driver.stop();
  const writesByA = world.sim.requests.records({ client: a.instanceId, since: cutAt }).filter((r) => isWrite(r) && r.at < healAt);
  return await finish(world, 'partition', options, started, {
    deployments: n,
    shared_before_cut: shared ? 'yes' : 'no',
    leases_of_cut_replica: heldByA.length,
    ...driverFigures(driver.stats),
    takeover_s: seconds(takeover === undefined ? null : takeover - cutAt),
    takeover_bound_s: (LEASE_TTL_MS + 3000) / 1000,
    cut_replica_writes_during_cut: writesByA.length,
    cut_replica_writes_after_ttl: writesByA.filter((r) => r.at > cutAt + LEASE_TTL_MS).length,
    sessions_waiting_on_locks_mid_cut: lockWaits,
  }, {
    sampler,
    fenceWindows: [{ client: a.instanceId, from: cutAt, until: healAt }],
    // liveness, not a timing: the survivor must take the cut replica's deployments over while
    // the cut lasts (its target, TTL + 3 s, is reported as a figure)
    violations: {
      'survivor takes over': takeover === undefined ? [`b did not take over a's ${heldByA.length} deployments during the ${cutMs / 1000} s cut`] : [],
    },
  });
}

// ---- api-faults ----

async function apiFaults(world: World, options: ScenarioOptions, started: number): Promise<ScenarioResult> {
  const random = rng(options.seed);
  const n = options.deployments ?? (options.profile === 'full' ? 20 : 6);
  const faultMs = options.profile === 'full' ? 60_000 : 20_000;
  await world.createDeployments(n);
  await start(world, 'a', options);
  await settleFirst(world, options);
  const sampler = startSeqSampler(world);
  const driver = startDriver(world, { deployments: world.deployments, intervalMs: 500, mix: BUMPS_ONLY, random });
  options.progress(`  faults for ${faultMs / 1000} s: 30 % of requests 500/503/429, +200 ms latency, watches dropped every 10 s`);
  const faultsFrom = Date.now();
  world.sim.faults.setErrorRate(0.3, [500, 503, 429]);
  world.sim.faults.setLatency(200);
  const dropper = setInterval(() => world.sim.faults.dropWatches(), 10_000);
  const injectedBefore = world.sim.requests.count({ code: 500 }) + world.sim.requests.count({ code: 503 }) + world.sim.requests.count({ code: 429 });
  await sleep(faultMs);
  clearInterval(dropper);
  world.sim.faults.reset();
  const clearedAt = Date.now();
  const injected = world.sim.requests.count({ code: 500 }) + world.sim.requests.count({ code: 503 }) + world.sim.requests.count({ code: 429 }) - injectedBefore;
  await driver.stop();
  options.progress('  faults cleared; waiting for convergence');
  const converged = await waitConverged(world, SETTLE_TIMEOUT[options.profile]);
  const convergedAt = converged === null ? null : Date.now();
  const { rows } = await world.pool.query<{ n: number; example: string | null }>(
    `select count(*)::int as n, min(error) as example from deployment_history where status = 'failed' and created_at >= $1`,
    [new Date(faultsFrom)],
  );
  const failed = rows[0]?.n ?? 0;
  const result = await finish(world, 'api-faults', options, started, {
    deployments: n,
    fault_s: faultMs / 1000,
    ...driverFigures(driver.stats),
    injected_errors: injected,
    rollouts_failed: failed,
    convergence_after_clear_s: seconds(convergedAt === null ? null : convergedAt - clearedAt),
  }, { sampler });
  // every image is a good one here: a failed rollout is a transient error that failed it
  if (failed > 0) result.violations['no rollout failed by transient errors'] = [`${failed} rollouts failed under transient API faults, e.g. ${String(rows[0]?.example)}`];
  else result.violations['no rollout failed by transient errors'] = [];
  return { ...result, passed: Object.values(result.violations).every((v) => v.length === 0) };
}

// ---- replicas ----

async function replicas(world: World, options: ScenarioOptions, started: number): Promise<ScenarioResult> {
  const random = rng(options.seed);
  const n = options.deployments ?? (options.profile === 'full' ? 20 : 8);
  await world.createDeployments(n);
  const a = await start(world, 'a', options);
  const b = await start(world, 'b', options);
  await settleFirst(world, options);
  const shared = await balanced(world, [a, b]);
  const leases = await liveLeases(world);
  const split = `${leases.filter((l) => l.instanceId === a.instanceId).length}/${leases.filter((l) => l.instanceId === b.instanceId).length}`;
  const sampler = startSeqSampler(world);
  const driver = startDriver(world, { deployments: world.deployments, intervalMs: 400, mix: BUMPS_ONLY, random });
  await sleep(3000);
  options.progress(`  SIGKILL a (leases a/b ${split})`);
  await world.kill9(a);
  const killedAt = Date.now();
  const takeover = await waitFor(async () => {
    const live = await liveLeases(world);
    return live.length === n && live.every((l) => l.instanceId === b.instanceId) ? Date.now() : undefined;
  }, 60_000, 100);
  await sleep(3000);
  await driver.stop();
  return await finish(world, 'replicas', options, started, {
    deployments: n,
    shared_before_kill: shared ? 'yes' : 'no',
    leases_a_b_before_kill: split,
    ...driverFigures(driver.stats),
    takeover_s: seconds(takeover === undefined ? null : takeover - killedAt),
  }, { sampler, violations: { 'survivor takes over': takeover === undefined ? ['b did not hold every lease within 60 s of a\'s death'] : [] } });
}

const RUNNERS: Record<ScenarioName, (world: World, options: ScenarioOptions, started: number) => Promise<ScenarioResult>> = {
  kill9,
  'pg-restart': pgRestart,
  partition,
  'api-faults': apiFaults,
  replicas,
};

/** Runs one scenario in a world of its own, closed (every process killed) however it ends. */
export async function runScenario(name: ScenarioName, options: ScenarioOptions): Promise<ScenarioResult> {
  const started = Date.now();
  const world = await openWorld(name, options);
  try {
    return await RUNNERS[name](world, options, started);
  } finally {
    await world.close();
  }
}

