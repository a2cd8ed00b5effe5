// Reads what the invariants judge — rows, journal, history, leases, the cluster's workloads,
// the simulator's write log, the processes' hosted actors and logs — and runs them
// (invariants.ts). Also the helpers every scenario shares: a snapshot-seq sampler, waiting for
// every row to settle, and the final SIGTERM of every live process.
import { isWrite } from '../../src/sim/index.ts';
import { LEASE_TTL_MS, sleep, waitFor, type World } from './harness.ts';
import {
  brokenChains, fatalLines, historyViolations, imageMismatches, orphanedLeases, slowExits, snapshotRegressions, unsettledRows,
  writesAfterLeaseExpiry, type FenceWindow, type HistoryFacts, type RowFacts, type TransitionFacts, type WorkloadFacts,
} from './invariants.ts';

/** Every invariant's violations, by name; an empty list is a pass. */
export type Violations = Record<string, string[]>;

export const INVARIANTS = [
  'settled',
  'cluster matches rows',
  'leases have actors',
  'transition chains unbroken',
  'history exactly once',
  'snapshot seq never decreased',
  'no cluster write after lease expiry',
  'no fatal log lines',
  'SIGTERM exit within 20 s',
] as const;

/** Margin on top of the lease TTL before a write counts as "after expiry": clock reads, a request in flight. */
export const FENCE_MARGIN_MS = 1_000;
export const EXIT_BOUND_MS = 20_000;

export async function readRows(world: World): Promise<RowFacts[]> {
  const { rows } = await world.pool.query<{
    id: string; project: string; environment: string; generation: string; observed_generation: string;
    current_status: string; current_image_ref: string | null; desired_status: string;
  }>(`select id, project, environment, generation, observed_generation, current_status, current_image_ref, desired_status from deployments order by project`);
  return rows.map((r) => ({
    id: r.id,
    name: `${r.project}/${r.environment}`,
    generation: Number(r.generation),
    observedGeneration: Number(r.observed_generation),
    currentStatus: r.current_status,
    currentImageRef: r.current_image_ref,
    desiredStatus: r.desired_status,
  }));
}

export async function readTransitions(world: World, since = 0): Promise<TransitionFacts[]> {
  const { rows } = await world.pool.query<{ deployment_id: string; seq: string; from_state: string | null; to_state: string; generation: string; at: Date }>(
    `select deployment_id, seq, from_state, to_state, generation, at from deployment_transitions where at >= $1 order by deployment_id, seq`,
    [new Date(since)],
  );
  return rows.map((r) => ({ deploymentId: r.deployment_id, seq: Number(r.seq), from: r.from_state, to: r.to_state, generation: Number(r.generation), at: r.at.getTime() }));
}

/** The first transition of each deployment at or after `since` (ms), or of the given ones. */
export async function firstTransitionsSince(world: World, since: number, ids?: readonly string[]): Promise<Map<string, number>> {
  const { rows } = await world.pool.query<{ deployment_id: string; at: Date }>(
    `select deployment_id, min(at) as at from deployment_transitions
     where at >= $1 and ($2::uuid[] is null or deployment_id = any($2::uuid[])) group by deployment_id`,
    [new Date(since), ids ? [...ids] : null],
  );
  return new Map(rows.map((r) => [r.deployment_id, r.at.getTime()]));
}

export async function snapshotSeqs(world: World): Promise<Map<string, number>> {
  const { rows } = await world.pool.query<{ deployment_id: string; seq: string }>(`select deployment_id, seq from deployment_snapshots`);
  return new Map(rows.map((r) => [r.deployment_id, Number(r.seq)]));
}

export async function liveLeases(world: World): Promise<{ deploymentId: string; instanceId: string }[]> {
  const { rows } = await world.pool.query<{ deployment_id: string; instance_id: string }>(
    `select deployment_id, instance_id::text from deployment_leases where expires_at > now()`,
  );
  return rows.map((r) => ({ deploymentId: r.deployment_id, instanceId: r.instance_id }));
}

/**
 * Samples every snapshot's seq twice a second while a scenario runs (a snapshot that moved
 * backwards and forward again between two reads of the end state would otherwise go unseen).
 * Failed reads (the database is down on purpose) are skipped.
 */
export function startSeqSampler(world: World, intervalMs = 500): { stop: () => { deploymentId: string; seq: number; at: number }[] } {
  const samples: { deploymentId: string; seq: number; at: number }[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const at = Date.now();
        for (const [deploymentId, seq] of await snapshotSeqs(world)) samples.push({ deploymentId, seq, at });
      } catch {
        // the database is down on purpose
      }
      await sleep(intervalMs);
    }
  })();
  return {
    stop: () => {
      running = false;
      void loop;
      return samples;
    },
  };
}

/** Waits until every row is settled; resolves to ms waited, or null at the deadline. */
export async function waitSettled(world: World, timeoutMs: number, progress?: (line: string) => void): Promise<number | null> {
  const started = Date.now();
  let lastReport = started;
  const ok = await waitFor(async () => {
    const open = unsettledRows(await readRows(world));
    if (progress && Date.now() - lastReport > 10_000) {
      lastReport = Date.now();
      progress(`  waiting for ${open.length} rows to settle, e.g. ${open[0] ?? ''}`);
    }
    return open.length === 0;
  }, timeoutMs, 250);
  return ok ? Date.now() - started : null;
}

/** Waits until every row is settled AND the cluster runs what every row says. */
export async function waitConverged(world: World, timeoutMs: number): Promise<number | null> {
  const started = Date.now();
  const ok = await waitFor(async () => {
    const rows = await readRows(world);
    return unsettledRows(rows).length === 0 && imageMismatches(rows, workloads(world)).length === 0;
  }, timeoutMs, 250);
  return ok ? Date.now() - started : null;
}

function workloads(world: World): Map<string, WorkloadFacts | undefined> {
  return new Map(world.deployments.map((d) => [d.id, world.workload(d)]));
}

export interface CheckInput {
  /** windows in which a process could not renew its lease (partition, database down) */
  readonly fenceWindows?: readonly FenceWindow[];
  readonly seqSamples?: readonly { deploymentId: string; seq: number; at: number }[];
  /** ms from SIGTERM to exit per process (filled by `terminateAll`) */
  readonly exits?: readonly { label: string; ms: number | null; code: number | null }[];
  readonly tickIntervalMs?: number;
}

export interface CheckResult {
  readonly violations: Violations;
  readonly figures: {
    unsettled: number;
    mismatches: number;
    orphaned_leases: number;
    broken_chains: number;
    seq_gaps: number;
    duplicated: number;
    lost: number;
    snapshot_regressions: number;
    late_writes: number;
    fatal_lines: number;
    failed_rows: number;
  };
}

/**
 * Runs every invariant but the exit bound (that one needs the processes stopped: see
 * `finishChecks`). Call it once the scenario has stopped disturbing and waited to settle.
 */
export async function checkInvariants(world: World, input: CheckInput = {}): Promise<CheckResult> {
  const names = new Map(world.deployments.map((d) => [d.id, d.name]));
  const rows = await readRows(world);
  const transitions = await readTransitions(world);
  const { rows: historyRows } = await world.pool.query<{ deployment_id: string; generation: string; action: string; status: string }>(
    `select deployment_id, generation, action, status from deployment_history`,
  );
  const history: HistoryFacts[] = historyRows.map((h) => ({ deploymentId: h.deployment_id, generation: Number(h.generation), action: h.action, status: h.status }));
  const seqs = await snapshotSeqs(world);
  // The hosted-actor gauge is refreshed on every tick: read it a tick after the leases, and
  // only when no lease changed hands meanwhile (a rebalance in that tick would look like an
  // orphan); a few tries, then judge what there is.
  let hosted = new Map<string, number>();
  let leases = await liveLeases(world);
  for (let attempt = 0; attempt < 4; attempt++) {
    const before = leaseKey(leases);
    await sleep((input.tickIntervalMs ?? 10_000) + 1_000);
    hosted = await world.hostedActors();
    leases = await liveLeases(world);
    if (leaseKey(leases) === before) break;
  }

  const settled = unsettledRows(rows);
  const mismatches = imageMismatches(rows, workloads(world));
  const orphans = orphanedLeases(leases, hosted, (i) => world.label(i));
  const chains = brokenChains(transitions, seqs, names);
  const once = historyViolations(transitions, history, names);
  const regressions = snapshotRegressions(input.seqSamples ?? [], names);
  const writes = world.sim.requests.records().filter(isWrite).map((r) => ({ at: r.at, client: r.client, verb: r.verb, resource: r.resource, namespace: r.namespace, name: r.name }));
  const late = writesAfterLeaseExpiry(writes, input.fenceWindows ?? [], LEASE_TTL_MS, FENCE_MARGIN_MS, (c) => world.label(c));
  const fatal = world.processes.flatMap((p) => fatalLines(p.fatal, `${p.name} (pid ${p.pid})`));
  return {
    violations: {
      settled,
      'cluster matches rows': mismatches,
      'leases have actors': orphans,
      'transition chains unbroken': chains.broken,
      'history exactly once': [...once.duplicated, ...once.lost],
      'snapshot seq never decreased': regressions,
      'no cluster write after lease expiry': late,
      'no fatal log lines': fatal,
    },
    figures: {
      unsettled: settled.length,
      mismatches: mismatches.length,
      orphaned_leases: orphans.length,
      broken_chains: new Set(chains.broken.map((m) => m.split(':')[0])).size,
      seq_gaps: chains.gaps,
      duplicated: once.duplicated.length,
      lost: once.lost.length,
      snapshot_regressions: regressions.length,
      late_writes: late.length,
      fatal_lines: fatal.length,
      failed_rows: rows.filter((r) => r.currentStatus === 'failed').length,
    },
  };
}

function leaseKey(leases: readonly { deploymentId: string; instanceId: string }[]): string {
  return leases.map((l) => `${l.deploymentId}:${l.instanceId}`).sort().join(',');
}

/** SIGTERM to every live process at once; the exit bound invariant over their exit times. */
export async function terminateAll(world: World): Promise<{ exits: { label: string; ms: number | null; code: number | null }[]; violations: string[] }> {
  const live = world.processes.filter((p) => p.exitedAt === undefined);
  const exits = await Promise.all(
    live.map(async (p) => {
      const ms = await world.terminate(p);
      return { label: `${p.name} (pid ${p.pid})`, ms, code: p.exitCode };
    }),
  );
  return { exits, violations: slowExits(exits, EXIT_BOUND_MS) };
}
