// The chaos suite's invariants: pure functions over data the runner queried (rows, journal,
// history, leases, the simulator's workloads and request log, process logs). Each returns the
// violations it found, one sentence each, so a failed run says exactly what broke and where.
// No I/O here: test/chaos/invariants.test.ts drives every rule with a table of cases.

/** What a deployment row looks like to the invariants (the columns they read). */
export interface RowFacts {
  readonly id: string;
  /** `project/environment`, for messages */
  readonly name: string;
  readonly generation: number;
  readonly observedGeneration: number;
  readonly currentStatus: string;
  readonly currentImageRef: string | null;
  readonly desiredStatus: string;
}

/** The workload the cluster runs for a deployment (its Deployment's spec), or absent. */
export interface WorkloadFacts {
  readonly image: string | undefined;
  readonly replicas: number;
}

export interface TransitionFacts {
  readonly deploymentId: string;
  readonly seq: number;
  readonly from: string | null;
  readonly to: string;
  readonly generation: number;
  /** ms since epoch */
  readonly at: number;
}

export interface HistoryFacts {
  readonly deploymentId: string;
  readonly generation: number;
  readonly action: string;
  readonly status: string;
}

export interface LeaseFacts {
  readonly deploymentId: string;
  readonly instanceId: string;
}

/** One cluster write the simulator served, with the client identity the process sent. */
export interface WriteFacts {
  readonly at: number;
  readonly client: string | undefined;
  readonly verb: string;
  readonly resource: string;
  readonly namespace?: string;
  readonly name?: string;
}

/**
 * A window in which a process could certainly not renew its lease (it was cut from PostgreSQL,
 * or PostgreSQL was down): from `from` (the cut) to `until` (the heal). Any cluster write it
 * makes after `from + ttl + margin` and before `until` is a write after its lease expired.
 */
export interface FenceWindow {
  readonly client: string;
  readonly from: number;
  readonly until: number;
}

/** A resting state of the statechart: no action in flight (mirrors runtime.isAtRest). */
export function isRestingState(state: string): boolean {
  return state === 'idle' || state === 'failed' || state === 'stopped.idle' || state === 'healthy' || state.startsWith('healthy.');
}

const SETTLED_STATUSES = new Set(['healthy', 'failed', 'stopped']);

/** Every row has been fully acted on: observed_generation = generation and a resting status. */
export function unsettledRows(rows: readonly RowFacts[]): string[] {
  const out: string[] = [];
  for (const r of rows) {
    if (r.observedGeneration !== r.generation) {
      out.push(`${r.name}: not settled (observed_generation ${r.observedGeneration} < generation ${r.generation}, status ${r.currentStatus})`);
    } else if (!SETTLED_STATUSES.has(r.currentStatus)) {
      out.push(`${r.name}: observed_generation = generation ${r.generation} but current_status is ${r.currentStatus}`);
    }
  }
  return out;
}

/**
 * The cluster runs exactly what the row says: the workload's image is `current_image_ref`,
 * scaled to zero when stopped and not when healthy. A failed row is left out: a failed deploy
 * without auto-rollback leaves the failed image applied while `current_image_ref` still names
 * the last good one (the scenarios give failing images `auto_rollback`).
 */
export function imageMismatches(rows: readonly RowFacts[], workloads: ReadonlyMap<string, WorkloadFacts | undefined>): string[] {
  const out: string[] = [];
  for (const r of rows) {
    if (r.currentStatus !== 'healthy' && r.currentStatus !== 'stopped') continue;
    const w = workloads.get(r.id);
    if (!w) {
      if (r.currentImageRef !== null) out.push(`${r.name}: ${r.currentStatus} on ${r.currentImageRef}, but the cluster has no workload`);
      continue;
    }
    if (w.image !== r.currentImageRef) {
      out.push(`${r.name}: current_image_ref ${String(r.currentImageRef)} but the cluster's workload runs ${String(w.image)} (${r.currentStatus})`);
    }
    if (r.currentStatus === 'stopped' && w.replicas !== 0) out.push(`${r.name}: stopped but its workload has ${w.replicas} replicas`);
    if (r.currentStatus === 'healthy' && w.replicas === 0) out.push(`${r.name}: healthy but its workload is scaled to zero`);
  }
  return out;
}

/**
 * The transition journal of each deployment is one unbroken chain: seqs strictly increase and
 * every transition starts where the previous one ended (a stale actor's write or a silently
 * dropped one breaks the link). `null` as a source is only allowed for the very first.
 * The snapshot's seq is at least the newest transition's (else the snapshot moved backwards).
 * Returns the broken deployments' messages and the number of seq gaps (journal entries
 * without a state change also take a seq, so a gap alone is not a break: it is reported).
 */
export function brokenChains(
  transitions: readonly TransitionFacts[],
  snapshotSeq: ReadonlyMap<string, number>,
  names: ReadonlyMap<string, string> = new Map(),
): { broken: string[]; gaps: number } {
  const byDeployment = groupBy(transitions, (t) => t.deploymentId);
  const broken: string[] = [];
  let gaps = 0;
  for (const [id, list] of byDeployment) {
    const name = names.get(id) ?? id;
    const sorted = [...list].sort((a, b) => a.seq - b.seq);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      const t = sorted[i]!;
      if (t.seq === prev.seq) broken.push(`${name}: two transitions with seq ${t.seq}`);
      else if (t.seq > prev.seq + 1) gaps++;
      if (t.from !== prev.to) {
        broken.push(`${name}: transition seq ${t.seq} starts from ${String(t.from)} but seq ${prev.seq} ended in ${prev.to}`);
      }
    }
    const last = sorted.at(-1);
    const snap = snapshotSeq.get(id);
    if (last && snap !== undefined && snap < last.seq) {
      broken.push(`${name}: snapshot seq ${snap} is behind its newest transition's seq ${last.seq} (the snapshot moved backwards)`);
    }
  }
  return { broken, gaps };
}

/** A deployment's snapshot seq as sampled over time: each decrease is a violation. */
export function snapshotRegressions(samples: readonly { deploymentId: string; seq: number; at: number }[], names: ReadonlyMap<string, string> = new Map()): string[] {
  const last = new Map<string, number>();
  const out: string[] = [];
  for (const s of [...samples].sort((a, b) => a.at - b.at)) {
    const before = last.get(s.deploymentId);
    if (before !== undefined && s.seq < before) out.push(`${names.get(s.deploymentId) ?? s.deploymentId}: snapshot seq went from ${before} back to ${s.seq}`);
    last.set(s.deploymentId, s.seq);
  }
  return out;
}

/**
 * History, exactly once: at most one row per (deployment, generation, action) — more is a
 * duplicate — and one row for every generation whose action ran to rest (a transition into an
 * in-flight state with that generation, and one from in flight into rest with it) — none is a
 * lost action.
 */
export function historyViolations(
  transitions: readonly TransitionFacts[],
  history: readonly HistoryFacts[],
  names: ReadonlyMap<string, string> = new Map(),
): { duplicated: string[]; lost: string[] } {
  const duplicated: string[] = [];
  const counts = new Map<string, number>();
  for (const h of history) {
    const key = `${h.deploymentId}\0${h.generation}\0${h.action}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  for (const [key, n] of counts) {
    if (n < 2) continue;
    const [id, generation, action] = key.split('\0');
    duplicated.push(`${names.get(id!) ?? id}: ${n} history rows for generation ${generation} action ${action}`);
  }
  const recorded = new Set(history.map((h) => `${h.deploymentId}\0${h.generation}`));
  const lost: string[] = [];
  for (const [id, list] of groupBy(transitions, (t) => t.deploymentId)) {
    const sorted = [...list].sort((a, b) => a.seq - b.seq);
    // acted: an action of generation g ran (a transition into an in-flight state carried g);
    // completed: a transition from in flight into rest carried g (a superseded generation never does)
    const acted = new Set<number>();
    const completed = new Set<number>();
    for (const t of sorted) {
      const fromRest = t.from === null || isRestingState(t.from);
      if (!isRestingState(t.to)) acted.add(t.generation);
      else if (!fromRest) completed.add(t.generation);
    }
    for (const g of completed) {
      if (!acted.has(g)) continue;
      if (!recorded.has(`${id}\0${g}`)) lost.push(`${names.get(id) ?? id}: generation ${g} acted and came to rest, but has no history row`);
    }
  }
  return { duplicated, lost };
}

/**
 * Every lease a live process holds has an actor in that process. The processes expose how
 * many actors they host (the `keelson_deployments` gauge), not which: so this compares counts.
 */
export function orphanedLeases(leases: readonly LeaseFacts[], hosted: ReadonlyMap<string, number>, label: (instanceId: string) => string = (i) => i): string[] {
  const held = new Map<string, number>();
  for (const l of leases) held.set(l.instanceId, (held.get(l.instanceId) ?? 0) + 1);
  const out: string[] = [];
  for (const [instance, n] of held) {
    const actors = hosted.get(instance);
    if (actors === undefined) out.push(`${label(instance)} holds ${n} live leases but is not a running process`);
    else if (actors < n) out.push(`${label(instance)} holds ${n} live leases but hosts ${actors} actors (${n - actors} orphaned)`);
  }
  return out;
}

/**
 * No cluster write by a process after its lease expired: a write by `window.client` later than
 * `from + ttlMs + marginMs` and before `until`.
 */
export function writesAfterLeaseExpiry(writes: readonly WriteFacts[], windows: readonly FenceWindow[], ttlMs: number, marginMs: number, label: (client: string) => string = (c) => c): string[] {
  const out: string[] = [];
  for (const w of windows) {
    const expiry = w.from + ttlMs + marginMs;
    const late = writes.filter((r) => r.client === w.client && r.at > expiry && r.at < w.until);
    if (late.length === 0) continue;
    const first = late[0]!;
    const where = `${first.verb} ${first.resource}${first.namespace ? ` ${first.namespace}/` : ' '}${first.name ?? ''}`;
    out.push(`${label(w.client)} made ${late.length} cluster writes after its lease expired (first ${((first.at - w.from) / 1000).toFixed(1)} s after it lost the database: ${where})`);
  }
  return out;
}

/** Log lines at pino's `fatal` level (60) or above. */
export function fatalLines(lines: readonly { level?: unknown; msg?: unknown }[], label: string): string[] {
  return lines.filter((l) => typeof l.level === 'number' && l.level >= 60).map((l) => `${label} logged fatal: ${String(l.msg)}`);
}

/** SIGTERM → exit within the bound. `null` means it did not exit at all. */
export function slowExits(exits: readonly { label: string; ms: number | null; code: number | null }[], boundMs: number): string[] {
  return exits
    .filter((e) => e.ms === null || e.ms > boundMs)
    .map((e) => (e.ms === null ? `${e.label} did not exit after SIGTERM` : `${e.label} took ${(e.ms / 1000).toFixed(1)} s to exit after SIGTERM (bound ${boundMs / 1000} s)`));
}

// ---- figures ----

export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? null;
}

export function summary(values: readonly number[]): { n: number; median: number | null; p90: number | null; max: number | null } {
  return { n: values.length, median: percentile(values, 50), p90: percentile(values, 90), max: values.length ? Math.max(...values) : null };
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}
