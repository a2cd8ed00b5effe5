// The deployment statechart: one long-lived actor per `deployments` row.
//
// Pure: no I/O imports. Every effect (git sync, render, apply, verify, scale, rollback lookup,
// drift check) is an invoked actor the runtime provides with `machine.provide({ actors })`,
// each with an explicit id and JSON-safe input, because a restored snapshot re-runs in-flight
// invocations with their persisted input. Time never comes from a clock here: effect outputs
// carry `startedAt`/`finishedAt`, failures carry `at`, and `TICK` carries `now`; deadlines live
// in context (`retryAt`, `verifyDeadline`, `driftCheckAt`) because `after` timers do not
// survive a restore (statelyai/xstate#5331).
import { and, assign, fromPromise, setup, type ActorRefFrom, type SnapshotFrom } from 'xstate';

/**
 * Bump when the shape of states or context changes; stored with every snapshot. A snapshot of
 * an older version is brought up to date by `migratePersistedSnapshot` on restore.
 * 2: `work.plan` (an opaque handle) replaced `work.rendered` (the rendered objects, Secrets included).
 * 3: releases (issue #13): `work.head`, `work.release`, `work.values`, `deployed.head`.
 *    A drift repair's `work.release` has no `historyId` (pinned commit only): no new version,
 *    the id was only ever read to describe a rollback's target, which always has one.
 * 4: live health after healthy (issue #13 item 5): `degradedSince`, and `failed` is compound
 *    (`failed.idle`: an action failed; `failed.degraded`: a healthy release degraded in place).
 * 5: canaries (issue #16): `work.strategy`, `work.canary`, `deployed.revision`, and the canary's
 *    sub-states of `applying` and `verifying` beside the replace ones (`running`/`backoff`), so a
 *    version-4 state value is a version-5 one.
 *    Later, without a new version: `work.retire` and `work.repair` (optional: absent is null /
 *    false) and the sub-states `verifying.retiring` and `rolling-back.retiring` (added: every
 *    version-5 state value is still one), so version-5 snapshots restore as they are. Likewise the
 *    effect inputs' optional `TargetInput.sweep` and `PruneInput.canary` (a restored in-flight
 *    verb without them sweeps nothing; the next canary's end does).
 *    And `ReleaseSource.source`, `RenderedValues.source`, `Completed.source` (migration 0013: where
 *    a release was rendered from; absent = not recorded, the row's ops repo and path are used).
 */
export const MACHINE_VERSION = '5';

export type DesiredStatus = 'active' | 'stopped' | 'rollback' | 'deleted';
export type Action = 'deploy' | 'rollback' | 'stop' | 'resume' | 'auto-rollback' | 'teardown';

/** The desired state of the row, as the runtime read it. */
export interface Desired {
  readonly generation: number;
  readonly desiredStatus: DesiredStatus;
  readonly imageRef: string;
  readonly project: string;
  readonly environment: string;
  /** resolved: the row's namespace or `<project>-<environment>` */
  readonly namespace: string;
  readonly opsRepoId: string | null;
  readonly manifestPath: string | null;
  readonly valuesOverride: Record<string, unknown>;
  readonly autoRollback: boolean;
  /** deployments.rollback_to: with desiredStatus 'rollback', the release (history id) to go back to */
  readonly rollbackTo?: number | null;
}

/**
 * What a rollback renders again: the release's commit and values, not today's (issue #13). A
 * drift repair pins the deployed commit the same way, without a history id.
 */
export interface ReleaseSource {
  readonly historyId?: number;
  readonly sha: string | null;
  /** null: the release predates migration 0007; today's values_override is used */
  readonly valuesOverride: Record<string, unknown> | null;
  /**
   * Where the release was rendered from (migration 0013); absent or null: the release predates it
   * (or this is a drift repair), and the row's ops repo and manifest path are used, as before.
   * Optional, so version-5 snapshots restore as they are.
   */
  readonly source?: RenderSource | null;
}

/**
 * The ops repo and manifest path an action rendered from, as its release records them
 * (deployment_history.ops_repo_id, manifest_path). `opsRepoId` null: the built-in template.
 * `manifestPath` is resolved (the row's, or the project name when the row had none), so a
 * recorded source is never mistaken for a release from before migration 0013.
 */
export interface RenderSource {
  readonly opsRepoId: string | null;
  readonly manifestPath: string;
}

/** The values an action rendered with, as its release records them. */
export interface RenderedValues {
  /** of the merged values the templates saw */
  readonly hash: string;
  /** those values with secrets redacted (src/releases/values.ts) */
  readonly redacted: unknown;
  /** the values_override rendered with */
  readonly override: Record<string, unknown>;
  /** the ops repo and manifest path rendered from (absent in snapshots from before migration 0013) */
  readonly source?: RenderSource | null;
}

export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
}

/**
 * One step of a canary (src/render/strategy.ts reads it from `keelson.strategy`): send
 * `setWeight` basis points of traffic to the new revision, wait `pauseMs`, or require the new
 * revision to be ready now.
 */
export type CanaryStep = { readonly setWeight: number } | { readonly pauseMs: number } | { readonly waitHealthy: true };

/** How a deploy reaches the cluster: replaced in place (the default), or as a canary revision. */
export type Strategy = { readonly kind: 'replace' } | { readonly kind: 'canary'; readonly steps: readonly CanaryStep[] };

/** What an effect resolves with, as wrapped by the runtime. */
export interface EffectOutput<T> {
  readonly value: T;
  readonly startedAt: number;
  readonly finishedAt: number;
}

/** What an effect rejects with, as wrapped by the runtime (JSON-safe, classified). */
export interface EffectFailure {
  readonly kind: 'transient' | 'terminal';
  readonly code: string;
  readonly message: string;
  readonly startedAt: number;
  readonly at: number;
}

export interface Phase {
  readonly name: string;
  readonly started_at: string;
  readonly finished_at: string | null;
  readonly duration_ms: number | null;
  readonly detail: string | null;
  readonly error: string | null;
}

/**
 * What the render step produced, by reference: the objects themselves (Secrets included) stay in
 * the process's plan cache (src/plans/) and never enter context, snapshots or transitions. Apply
 * takes them from there, or renders again from the same inputs when this process does not hold
 * them (restored after a crash, taken over from another process).
 */
export interface PlanHandle {
  readonly id: string;
  /** sha256 of the rendered content: the same inputs render the same plan */
  readonly hash: string;
  readonly refs: readonly ObjectRef[];
  readonly count: number;
}

/** The action in flight: what the machine is currently making true. */
export interface Work {
  readonly actionId: string;
  readonly action: Action;
  readonly generation: number;
  /** the image being deployed; for a rollback, set once the target is found */
  readonly imageRef: string;
  readonly triggeredBy: string;
  /** the commit rendered: the fetched head, or the release's commit for a rollback */
  readonly sha: string | null;
  /** the branch head this action saw (differs from sha for a rollback to an older commit) */
  readonly head: string | null;
  /** a rollback's target, once found */
  readonly release: ReleaseSource | null;
  /** set by render */
  readonly values: RenderedValues | null;
  /** rendered, not yet applied (null before render and once applied) */
  readonly plan: PlanHandle | null;
  readonly prune: boolean;
  readonly applied: readonly ObjectRef[];
  readonly phases: readonly Phase[];
  readonly attempt: number;
  readonly retryAt: number | null;
  readonly verifyDeadline: number | null;
  /**
   * A stop's record of the action it cut short before that action's apply was known to finish
   * (a crash or a newer generation mid-apply): the cluster may run its image. Absent in
   * snapshots written before it existed, which is the same as null.
   */
  readonly interrupted?: Interrupted | null;
  /** set by render (`keelson.strategy`); absent in older snapshots, which is replace */
  readonly strategy?: Strategy | null;
  /** a canary in flight (applying/verifying's canary sub-states), else null or absent */
  readonly canary?: Canary | null;
  /**
   * The revision a release applied in place takes over from (`strategy: replace` after a canary):
   * drained and archived once the in-place release is verified. The deployed revision when the
   * action started, or the one an action cut short before its archive left running. Absent in
   * older snapshots, which is null: they had no such step.
   */
  readonly retire?: RevisionSource | null;
  /**
   * A live drift repair of a release that runs as a revision: that revision is re-applied under
   * its own name (stage, warm, 100 %), not replaced by a new canary. Absent: false.
   */
  readonly repair?: boolean;
}

/** A revision the deploy target runs, as the machine can name it again: its render inputs. */
export interface RevisionSource {
  /** a DNS label (`r<action counter>`): unique per action, also across restores */
  readonly name: string;
  readonly render: RenderInput;
}

/**
 * A canary in flight. The split is recorded here before the target is asked to enforce it, so a
 * restored `split` effect re-sends the same weights; deadlines are times from events (`at`).
 */
export interface Canary {
  /** the new revision */
  readonly revision: string;
  /** the revision before, or null (a first deploy as revisions: stage, warm, 100 %) */
  readonly stable: RevisionSource | null;
  /**
   * whether the steps shift traffic from the stable revision: it served when a deploy started.
   * A stopped one serves nothing, and a rollback goes back at once: stage, warm, 100 %, then the
   * stable revision is drained and archived.
   */
  readonly stableServing: boolean;
  /**
   * the workloads of a release applied in place (before its deployment declared a canary), which
   * the promotion deletes once the new revision has all traffic (absent: none)
   */
  readonly inPlace?: readonly ObjectRef[];
  /** index of the next step of `work.strategy.steps` */
  readonly step: number;
  /** the split last asked for (null before the first) */
  readonly split: readonly SplitEntry[] | null;
  /** a pause step's end */
  readonly pauseUntil: number | null;
  /** a waitHealthy step: give up (abort) after this; re-check at `checkAt` while progressing */
  readonly healthDeadline: number | null;
  readonly checkAt: number | null;
  /** `pause` command: no step starts until `resume` */
  readonly paused: boolean;
  /** the newest time an event carried: deadlines count from it */
  readonly at: number;
  /** why the canary is being aborted (the action's error), else null */
  readonly abortReason: string | null;
  /** the new revision's objects, from stage */
  readonly refs: readonly ObjectRef[];
}

export interface SplitEntry {
  readonly revision: string;
  readonly weightBps: number;
}

export interface Interrupted {
  readonly imageRef: string;
  readonly sha: string | null;
  readonly head: string | null;
}

/** A finished action, for the journal's history row (written once per actionId). */
export interface Completed {
  readonly actionId: string;
  readonly action: Action;
  /** superseded: a newer generation cut the action short after its apply (see cutShort) */
  readonly status: 'succeeded' | 'failed' | 'superseded';
  readonly imageRef: string;
  readonly sha: string | null;
  readonly generation: number;
  readonly phases: readonly Phase[];
  readonly error: string | null;
  readonly triggeredBy: string;
  /** a succeeded rollback writes its image (and its release's values) back as the row's desired state */
  readonly writeBack: boolean;
  /** the release: what was rendered (null when nothing was, e.g. a stop) */
  readonly valuesHash: string | null;
  readonly valuesRedacted: unknown;
  readonly valuesOverride: Record<string, unknown> | null;
  /** the objects applied (null when the apply did not happen) */
  readonly inventory: readonly ObjectRef[] | null;
  /**
   * where it was rendered from (null when nothing was rendered; absent in a Completed restored from
   * an older snapshot). A succeeded rollback writes it back too: the row must describe what runs.
   */
  readonly source?: RenderSource | null;
}

/** What is running in the cluster after the last successful action. */
export interface Deployed {
  readonly imageRef: string;
  readonly sha: string | null;
  /** the branch head when it was deployed: the drift check redeploys when the branch moves past it */
  readonly head: string | null;
  readonly deployedAt: string;
  readonly spec: string;
  readonly applied: readonly ObjectRef[];
  readonly stopped: boolean;
  /** the revision serving, when a canary deployed it (absent or null: applied in place) */
  readonly revision?: RevisionSource | null;
}

export interface MachineConfig {
  readonly verifyTimeoutMs: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly driftIntervalMs: number;
  /** how long a degraded release may stay degraded before an auto_rollback deployment rolls back */
  readonly degradedGraceMs: number;
  /** a canary's waitHealthy step: how soon a progressing revision is checked again */
  readonly canaryCheckMs: number;
}

export const DEFAULT_MACHINE_CONFIG: MachineConfig = {
  verifyTimeoutMs: 300_000,
  retryBaseMs: 1_000,
  retryMaxMs: 300_000,
  driftIntervalMs: 60_000,
  degradedGraceMs: 120_000,
  canaryCheckMs: 2_000,
};

export interface DeploymentContext {
  readonly deploymentId: string;
  readonly config: MachineConfig;
  readonly desired: Desired | null;
  /** the newest generation this actor has acted on (mirrored to observed_generation) */
  readonly observedGeneration: number;
  readonly work: Work | null;
  readonly deployed: Deployed | null;
  readonly completed: Completed | null;
  readonly lastError: string | null;
  /** monotonic counter so every action gets a distinct id, also across restores */
  readonly actionCounter: number;
  readonly driftCheckAt: number | null;
  /** when the live health of the healthy release turned Failed (failed.degraded), else null */
  readonly degradedSince: number | null;
  /**
   * What a failed action may have left running without it becoming `deployed`: its own apply
   * (verification failed), or the interrupted apply it carried (see interruptedBy). The next
   * action takes it over as its `interrupted`, so a stop after a failure still records the image
   * the workloads run. Absent in snapshots from before it: none.
   */
  readonly unsettled?: Interrupted | null;
}

export interface DeploymentInput {
  readonly deploymentId: string;
  readonly config?: Partial<MachineConfig>;
}

export type DeploymentEvent =
  | { type: 'DESIRED_CHANGED'; desired: Desired }
  | { type: 'TICK'; now: number }
  /**
   * The live health of the deployed inventory changed (the runtime subscribes while the actor is
   * healthy or degraded; src/kube/observe.ts). `message` names the worst object, pod and reason.
   */
  | { type: 'HEALTH'; status: LiveHealthStatus; message: string; at: number }
  /**
   * An operator's word on the canary in flight (deployments.canary_command, the API): not a new
   * generation, which would supersede the canary. Ignored when no canary runs.
   */
  | { type: 'CANARY'; command: CanaryCommand; at: number };

export type CanaryCommand = 'pause' | 'resume' | 'promote' | 'abort';

/** kstatus as src/kube/types.ts has it (the machine imports nothing with I/O). */
export type LiveHealthStatus = 'Current' | 'InProgress' | 'Failed' | 'Terminating' | 'NotFound' | 'Unknown';

// ---- effect inputs and outputs (the runtime implements these) ----
/**
 * `pin`: the commit to render (a rollback's release) instead of the branch head; `release`: that
 * release, for an error that cannot render it again to name it (with the path it rendered)
 */
export interface SyncInput { deploymentId: string; opsRepoId: string | null; force: boolean; pin?: string | null; release?: { historyId: number; manifestPath: string | null } | null }
/** `sha`: the commit to render; `head`: the branch head seen (defaults to sha) */
export interface SyncResult { sha: string | null; head?: string | null }
export interface RenderInput { deploymentId: string; desired: Desired; imageRef: string; sha: string | null }
export interface RenderResult {
  plan: PlanHandle;
  files: string[];
  /** opt-in: delete labelled objects no longer rendered */
  prune?: boolean;
  /** the merged values: hash and redacted copy */
  values?: { hash: string; redacted: unknown };
  /** `keelson.strategy` of the merged values; absent: replace */
  strategy?: Strategy;
}
/** `render`: what the plan was rendered from, to render it again when this process does not hold it. */
/**
 * `previousNamespace`: the namespace the deployed release was rendered into, when known; a
 * different `namespace` moves the deployment, and apply prunes `previous` − new (issue #13).
 */
export interface ApplyInput { deploymentId: string; namespace: string; plan: PlanHandle | null; render: RenderInput; previous: readonly ObjectRef[]; prune: boolean; previousNamespace?: string | null }
export interface ApplyResult { applied: ObjectRef[] }
export interface VerifyInput { deploymentId: string; namespace: string; applied: readonly ObjectRef[] }
export interface VerifyResult { message: string }
export interface ScaleInput { deploymentId: string; namespace: string }
/** `images`: the container images of the workloads scaled to zero, as the cluster holds them */
export interface ScaleResult { message: string; images?: readonly string[] }
/**
 * `inventory`: every object the deployment may have in the cluster as the machine knows it (the
 * last release's inventory, the interrupted action's applied and planned refs); the effect adds
 * what the cluster cache holds labelled for the deployment, so a crash mid-apply leaves nothing.
 */
export interface TeardownInput { deploymentId: string; namespace: string; inventory: readonly ObjectRef[] }
export interface TeardownResult { message: string }
/** `release`: the history id a rollback was asked to go back to (deployments.rollback_to) */
export interface FindTargetInput { deploymentId: string; release?: number | null }
export interface FindTargetResult { imageRef: string; sha: string | null; historyId?: number; valuesOverride?: Record<string, unknown> | null; source?: RenderSource | null }
/**
 * A deploy-target verb for one revision (src/targets/contract.ts). `revisions` are the inventory,
 * plans by reference as for apply (`plan` when this process rendered it, `render` to render it
 * again); `split` is the split recorded, which `split` enforces and drain/archive check against.
 */
export interface TargetInput {
  deploymentId: string;
  namespace: string;
  revision: string;
  revisions: ReadonlyArray<{ name: string; plan: PlanHandle | null; render: RenderInput }>;
  split: readonly SplitEntry[] | null;
  /**
   * This verb ends the canary (a promotion with no revision to drain and archive): once the split
   * gives the revision all traffic, nothing else of the deployment may run — revisions the
   * inventory does not name and the workload applied in place are swept, as the archive that
   * ends any other canary sweeps them. Absent: false (and in snapshots from before it).
   */
  sweep?: boolean;
}
export interface StageResult { message: string; refs: ObjectRef[] }
/**
 * Deletes objects of the deployment (those still labelled for it): a release applied in place,
 * replaced by a revision. `canary`: the canary this step ends, whose leftovers (revisions it does
 * not name) are swept too; absent in snapshots from before it.
 */
export interface PruneInput { deploymentId: string; refs: readonly ObjectRef[]; canary?: TargetInput }
export interface TargetResult { message: string }
export type RevisionHealth = 'ready' | 'progressing' | 'failed' | 'missing';
export interface CheckResult { status: RevisionHealth; message: string }
export interface DriftInput { deploymentId: string; desired: Desired; deployed: Deployed }
/**
 * `pin`: the commit the repair re-applies — the deployed release's, for live drift (a rollback's
 * older commit stays); absent when the branch moved, which is a deploy of the new head.
 */
export interface DriftResult { drifted: boolean; reason: string | null; pin?: string | null }

const notProvided = (name: string) =>
  fromPromise<never, unknown>(async () => {
    throw { kind: 'terminal', code: 'effect_missing', message: `effect "${name}" is not provided`, startedAt: 0, at: 0 };
  });

// ---- pure helpers ----

/** A canonical string of the parts of desired state that change what is rendered. */
export function specKey(desired: Desired): string {
  const sorted = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(sorted);
    if (value && typeof value === 'object') {
      return Object.fromEntries(
        Object.keys(value).sort().map((key) => [key, sorted((value as Record<string, unknown>)[key])]),
      );
    }
    return value;
  };
  return JSON.stringify(sorted({
    imageRef: desired.imageRef,
    namespace: desired.namespace,
    opsRepoId: desired.opsRepoId,
    manifestPath: desired.manifestPath,
    valuesOverride: desired.valuesOverride,
  }));
}

/** The namespace a `specKey` names (null for an empty or foreign spec, e.g. a stop's ''). */
export function specNamespace(spec: string): string | null {
  try {
    const parsed: unknown = JSON.parse(spec);
    const namespace = parsed && typeof parsed === 'object' ? (parsed as { namespace?: unknown }).namespace : undefined;
    return typeof namespace === 'string' ? namespace : null;
  } catch {
    return null;
  }
}

/** Deterministic jitter in [0.5, 1): a hash of the deployment and attempt, not Math.random. */
export function jitter(seed: string): number {
  let hash = 2166136261;
  for (let i = 0; i < seed.length; i++) {
    hash ^= seed.charCodeAt(i);
    hash = Math.imul(hash, 16777619);
  }
  return 0.5 + ((hash >>> 0) % 1000) / 2000;
}

/** Exponential backoff with jitter, capped. `attempt` counts from 1. */
export function backoffMs(config: MachineConfig, attempt: number, seed: string): number {
  const raw = Math.min(config.retryMaxMs, config.retryBaseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(raw * jitter(`${seed}:${attempt}`));
}

export function toFailure(error: unknown): EffectFailure {
  if (error && typeof error === 'object' && 'kind' in error && 'message' in error) {
    const e = error as Partial<EffectFailure>;
    return {
      kind: e.kind === 'transient' ? 'transient' : 'terminal',
      code: typeof e.code === 'string' ? e.code : 'error',
      message: String(e.message),
      startedAt: typeof e.startedAt === 'number' ? e.startedAt : 0,
      at: typeof e.at === 'number' ? e.at : 0,
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { kind: 'terminal', code: 'error', message, startedAt: 0, at: 0 };
}

// total: an out-of-range time must never throw inside an assign and wedge the actor
const iso = (ms: number): string => new Date(Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? ms : 0).toISOString();

function phase(name: string, startedAt: number, finishedAt: number, detail: string | null, error: string | null): Phase {
  return {
    name,
    started_at: iso(startedAt),
    finished_at: iso(finishedAt),
    duration_ms: Math.max(0, finishedAt - startedAt),
    detail,
    error,
  };
}

/**
 * The action in flight when a newer generation supersedes it, if its apply had succeeded: the
 * cluster then runs its image although its verification was cut short. That image is what is
 * deployed — current_image_ref must say what runs, and a stop keeps it in the workloads it scales
 * to zero — and the action's history row says it was cut short (`superseded`), never that it
 * succeeded, nor that it failed: nothing went wrong, a pipeline alerting on failures must not fire.
 * An action superseded before its apply finished changed nothing we know of and records nothing.
 */
function cutShort(context: DeploymentContext, next: Desired, nextAction: Action): { deployed: Deployed; completed: Completed } | null {
  const work = context.work;
  const promoted = work && context.desired ? promotedCanary(context, work, context.desired, nextAction, next) : null;
  if (promoted) return promoted;
  // verifyDeadline is set by a successful apply and only then (recordApply)
  if (!work || work.verifyDeadline === null || !context.desired) return null;
  const rolledBack = work.action === 'rollback' || work.action === 'auto-rollback';
  // the desired state that was applied, as `succeed` would have recorded it
  const applied: Desired = rolledBack ? rolledBackDesired(context.desired, work) : context.desired;
  const appliedAt = work.phases.find((p) => p.name === 'apply')?.finished_at ?? iso(work.verifyDeadline - context.config.verifyTimeoutMs);
  const how = nextAction === 'stop' ? 'stopped' : 'superseded';
  const error = `${how} by generation ${next.generation} (${nextAction}) before verification finished: ${work.imageRef} was applied but not verified`;
  return {
    deployed: { imageRef: work.imageRef, sha: work.sha, head: work.head ?? work.sha, deployedAt: appliedAt, spec: specKey(applied), applied: work.applied, stopped: false },
    completed: complete(work, 'superseded', work.phases, error, work.imageRef),
  };
}

/**
 * A canary cut short after its promotion split: the new revision has all traffic (the old one
 * may be drained already), so it is what is deployed — a next canary must shift traffic from it,
 * never back to a revision that may run nothing. Its history row says it was cut short.
 */
function promotedCanary(context: DeploymentContext, work: Work, desired: Desired, nextAction: Action, next: Desired): { deployed: Deployed; completed: Completed } | null {
  const canary = work.canary;
  if (!canary || canary.abortReason !== null || !work.phases.some((p) => p.name === 'promote')) return null;
  const how = nextAction === 'stop' ? 'stopped' : 'superseded';
  const error = `${how} by generation ${next.generation} (${nextAction}) after the promotion of canary ${canary.revision}, before the previous revision was archived`;
  return {
    deployed: {
      imageRef: work.imageRef,
      sha: work.sha,
      head: work.head ?? work.sha,
      deployedAt: iso(canary.at),
      spec: specKey(desired),
      applied: canary.refs,
      stopped: false,
      revision: { name: canary.revision, render: renderInput(context) },
    },
    completed: complete({ ...work, applied: canary.refs }, 'superseded', work.phases, error, work.imageRef),
  };
}

/**
 * What a stop leaves scaled to zero, told by the images its workloads run (`images`, from the
 * scale effect): the deployed release when they run its image; else the action the stop cut
 * short mid-apply, or a failed deploy of the desired image, whose apply did change them — so that
 * current_image_ref names what runs. Without images (nothing scaled), the deployed release.
 */
export function stoppedRelease(
  deployed: Deployed | null,
  work: Work,
  desired: Desired,
  images: readonly string[] | undefined,
): { imageRef: string; sha: string | null; head: string | null } {
  const kept = deployed
    ? { imageRef: deployed.imageRef, sha: deployed.sha, head: deployed.head ?? deployed.sha }
    : { imageRef: desired.imageRef, sha: null, head: null };
  if (!images || images.length === 0 || images.includes(kept.imageRef)) return kept;
  if (work.interrupted && images.includes(work.interrupted.imageRef)) return work.interrupted;
  // a failed deploy of the desired image: the commit it rendered is not known here any more
  if (images.includes(desired.imageRef)) return { imageRef: desired.imageRef, sha: kept.sha, head: kept.head };
  return kept;
}

/** A finished action (in place, a stop, a rollback): `phases` end with its last step, at `finishedAt`. */
function succeeded(context: DeploymentContext, phases: readonly Phase[], finishedAt: number, images: readonly string[] | undefined): Partial<DeploymentContext> {
  const work = context.work;
  if (!work || !context.desired) return {};
  const stopping = work.action === 'stop';
  const stopped = stopping ? stoppedRelease(context.deployed, work, context.desired, images) : null;
  const imageRef = stopped ? stopped.imageRef : work.imageRef;
  const rolledBack = work.action === 'rollback' || work.action === 'auto-rollback';
  const desiredAfter: Desired = rolledBack ? rolledBackDesired(context.desired, work) : context.desired;
  return {
    lastError: null,
    work: null,
    completed: { ...complete(work, 'succeeded', phases, null, imageRef), writeBack: rolledBack },
    deployed: {
      imageRef,
      sha: stopped ? stopped.sha : work.sha,
      head: stopped ? stopped.head : (work.head ?? work.sha),
      deployedAt: stopping ? (context.deployed?.deployedAt ?? iso(finishedAt)) : iso(finishedAt),
      spec: stopping ? (context.deployed?.spec ?? '') : specKey(desiredAfter),
      applied: work.applied,
      stopped: stopping,
      // a stop scales the revision that runs; anything else here was applied in place
      revision: stopping ? (context.deployed?.revision ?? null) : null,
    },
    driftCheckAt: finishedAt + context.config.driftIntervalMs,
  };
}

/**
 * What the action cut short may have applied without the machine knowing: an apply in flight
 * (rendered, not known to have finished) when a newer generation or a crash interrupted it, or
 * one such action earlier in a chain of interruptions. Only a stop uses it (stoppedRelease): every
 * other action applies over it, and a finished apply forgets it (recordApply).
 */
function interruptedBy(previous: Work | null, cut: boolean): Interrupted | null {
  if (!previous || cut) return null;
  if (previous.plan !== null && previous.verifyDeadline === null && previous.imageRef !== '') {
    return { imageRef: previous.imageRef, sha: previous.sha, head: previous.head ?? previous.sha };
  }
  return previous.interrupted ?? null;
}

/** What a failed action leaves that may run: its applied release (verification failed), or what it carried. */
function leftBehind(work: Work): Interrupted | null {
  if (work.verifyDeadline !== null && work.imageRef !== '') return { imageRef: work.imageRef, sha: work.sha, head: work.head ?? work.sha };
  return interruptedBy(work, false);
}

function startWork(context: DeploymentContext, desired: Desired, action: Action, triggeredBy: string): Partial<DeploymentContext> {
  const counter = context.actionCounter + 1;
  const cut = cutShort(context, desired, action);
  const deployed = cut ? cut.deployed : context.deployed;
  return {
    desired,
    observedGeneration: Math.max(context.observedGeneration, desired.generation),
    actionCounter: counter,
    // a cut-short action's record: the journal writes its history row with this transition
    completed: cut ? cut.completed : null,
    deployed,
    lastError: null,
    degradedSince: null,
    unsettled: null,
    work: {
      actionId: `${desired.generation}-${counter}-${action}`,
      action,
      generation: desired.generation,
      imageRef: action === 'rollback' || action === 'auto-rollback' ? '' : desired.imageRef,
      triggeredBy,
      sha: null,
      head: null,
      release: null,
      values: null,
      plan: null,
      prune: false,
      applied: deployed?.applied ?? [],
      phases: [],
      attempt: 0,
      retryAt: null,
      verifyDeadline: null,
      interrupted: context.work ? interruptedBy(context.work, cut !== null) : (context.unsettled ?? null),
      // a replace action cut short after its apply made its release `deployed` (cutShort): the
      // revision it was to retire is still to go
      retire: deployed?.revision ?? context.work?.retire ?? null,
    },
  };
}

/** Which action a resting actor starts for a new desired state. */
function actionFor(context: DeploymentContext, desired: Desired): Action {
  if (desired.desiredStatus === 'stopped') return 'stop';
  if (desired.desiredStatus === 'rollback') return 'rollback';
  return context.deployed?.stopped ? 'resume' : 'deploy';
}

const isNewer = (context: DeploymentContext, desired: Desired): boolean =>
  desired.generation > context.observedGeneration;

// ---- canary helpers (pure) ----

/** A split's weights sum to this many basis points (src/targets/contract.ts). */
const TOTAL_BPS = 10_000;

const percent = (bps: number): string => `${bps / 100} %`;
const seconds = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);

/** The canary's next step, or null when every step ran (or no canary runs). */
function nextStep(context: DeploymentContext): CanaryStep | null {
  const work = context.work;
  if (!work?.canary || work.strategy?.kind !== 'canary') return null;
  return work.strategy.steps[work.canary.step] ?? null;
}

function withCanary(context: DeploymentContext, patch: Partial<Canary>): Partial<DeploymentContext> {
  const work = context.work;
  if (!work?.canary) return {};
  return { work: { ...work, canary: { ...work.canary, ...patch } } };
}

/** A finished canary step: its phase, the time it carried, a retry forgotten. */
function canaryStep(
  context: DeploymentContext,
  output: { startedAt: number; finishedAt: number },
  name: string,
  detail: string | null,
  patch: Partial<Canary>,
): Partial<DeploymentContext> {
  const work = context.work;
  if (!work?.canary) return {};
  return {
    work: {
      ...work,
      attempt: 0,
      retryAt: null,
      phases: [...work.phases, phase(name, output.startedAt, output.finishedAt, detail, null)],
      canary: { ...work.canary, at: Math.max(work.canary.at, output.finishedAt), ...patch },
    },
  };
}

/** A canary step a `promote` or `abort` command can cut short: the machine leaves its state mid-way. */
export type CutStep = 'split' | 'pause' | 'wait-healthy';

/**
 * The phase of the step in flight when a `promote` or `abort` command ends it, up to the
 * command's time, so the history says what happened to it: a split cancelled (whether its write
 * reached the target is unknown; the next split overrides it), a pause or health wait ended
 * early. A detail, no error: nothing failed, an operator decided. Called before beginPromote or
 * beginAbort, which replace the split and clear the deadlines it reads.
 */
function cutShortStep(context: DeploymentContext, cut: CutStep, command: CanaryCommand, at: number): Partial<DeploymentContext> {
  const work = context.work;
  const canary = work?.canary;
  if (!work || !canary) return {};
  const step = nextStep(context);
  let entry: { name: string; startedAt: number; detail: string } | null = null;
  if (cut === 'split') {
    // beginWeight recorded the split in flight; it began when the step before it ended (canary.at)
    const weight = canary.split?.find((e) => e.revision === canary.revision)?.weightBps ?? 0;
    entry = { name: `split ${percent(weight)}`, startedAt: canary.at, detail: `cancelled by ${command}` };
  } else if (cut === 'pause' && step && 'pauseMs' in step && canary.pauseUntil !== null) {
    entry = { name: `pause ${seconds(step.pauseMs)}`, startedAt: canary.pauseUntil - step.pauseMs, detail: `ended by ${command}` };
  } else if (cut === 'wait-healthy' && canary.healthDeadline !== null) {
    entry = { name: 'wait-healthy', startedAt: canary.healthDeadline - context.config.verifyTimeoutMs, detail: `ended by ${command}` };
  }
  if (!entry) return {};
  // another process's clock may be behind: a phase never ends before it began
  const ended = phase(entry.name, entry.startedAt, Math.max(entry.startedAt, at), entry.detail, null);
  return { work: { ...work, phases: [...work.phases, ended] } };
}

/** The split that sends traffic back: all to the stable revision, or none recorded without one. */
function beginAbort(context: DeploymentContext, reason: string, failed: Phase, at: number): Partial<DeploymentContext> {
  const work = context.work;
  const canary = work?.canary;
  if (!work || !canary) return {};
  const split = canary.stable ? [{ revision: canary.stable.name, weightBps: TOTAL_BPS }] : canary.split;
  return {
    lastError: reason,
    work: {
      ...work,
      attempt: 0,
      retryAt: null,
      phases: [...work.phases, failed],
      canary: { ...canary, abortReason: reason, split, at: Math.max(canary.at, at), pauseUntil: null, healthDeadline: null, checkAt: null },
    },
  };
}

/** The phase a failed canary effect names (the step in flight). */
function failedCanaryStep(context: DeploymentContext): string {
  const canary = context.work?.canary;
  if (!canary) return 'canary';
  if (canary.refs.length === 0) return 'stage';
  const step = nextStep(context);
  if (canary.split === null && canary.step === 0) return 'warm';
  if (step && 'setWeight' in step) return `split ${percent(step.setWeight)}`;
  if (step && 'waitHealthy' in step) return 'wait-healthy';
  return 'canary';
}

/** The revision drain and archive retire: the canary once aborting, else the stable one. */
function retiring(context: DeploymentContext): string {
  const canary = context.work?.canary;
  if (!canary) return '';
  return canary.abortReason !== null || !canary.stable ? canary.revision : canary.stable.name;
}

function renderInput(context: DeploymentContext): RenderInput {
  const work = context.work!;
  return { deploymentId: context.deploymentId, desired: renderedDesired(context), imageRef: work.imageRef, sha: work.sha };
}

function targetInput(context: DeploymentContext): TargetInput {
  const canary = context.work!.canary!;
  const revisions = [
    ...(canary.stable ? [{ name: canary.stable.name, plan: null, render: canary.stable.render }] : []),
    { name: canary.revision, plan: context.work!.plan, render: renderInput(context) },
  ];
  return { deploymentId: context.deploymentId, namespace: context.desired!.namespace, revision: retiring(context), revisions, split: canary.split };
}

/**
 * Replace after revisions (`work.retire`): once the release applied in place is verified — its
 * workload ready behind the deployment's Service and route, which its apply pointed back at
 * `<name>` — the revision it took over from is drained and archived, each a phase.
 */
const RETIRE = (parent: 'verifying' | 'rolling-back'): Done => ({ guard: 'retiresRevision', target: `#deployment.${parent}.retiring`, actions: 'recordVerify' });
function retiringStates(parent: 'verifying' | 'rolling-back') {
  return {
    initial: 'draining',
    states: {
      draining: step('drain', { onDone: { target: `#deployment.${parent}.retiring.archiving`, actions: 'recordRetireDrain' } }),
      archiving: step('archive', { onDone: { target: '#deployment.healthy', actions: 'succeedRetired' } }),
    },
  };
}

/**
 * The revision a release applied in place takes over from, alone in the inventory with no split:
 * nothing sends it traffic any more (the apply pointed the Service and route at `<name>`). Its
 * own namespace: the in-place release may have moved the deployment.
 */
function retireInput(context: DeploymentContext): TargetInput {
  const retire = context.work!.retire!;
  return {
    deploymentId: context.deploymentId,
    namespace: retire.render.desired.namespace,
    revision: retire.name,
    revisions: [{ name: retire.name, plan: null, render: retire.render }],
    split: null,
  };
}

/**
 * Whether the canary ends at its promotion's split (`promoting.splitting` → `healthy`): no stable
 * revision to drain and archive, no release in place to remove. Only a promotion splits a canary
 * without a stable revision.
 */
function endsAtSplit(canary: Canary): boolean {
  return canary.stable === null && (canary.inPlace?.length ?? 0) === 0 && canary.abortReason === null;
}

/**
 * `promote` and `abort` in a step: the step's phase (cut short), then as from `steps`. The state
 * says which step is in flight, so the record does not guess it from context.
 */
const CUT_SHORT = (cut: CutStep) => ({
  CANARY: [
    {
      guard: { type: 'commandIs', params: { command: 'promote' } },
      target: '#deployment.verifying.canary.promoting',
      actions: [{ type: 'recordCutShort', params: { step: cut } }, 'beginPromote'],
    },
    {
      guard: { type: 'commandIs', params: { command: 'abort' } },
      target: '#deployment.verifying.canary.aborting',
      actions: [{ type: 'recordCutShort', params: { step: cut } }, 'abortCommand'],
    },
  ],
});

/** A failed canary step (a terminal error) sends traffic back and removes the canary. */
const ABORT: Done = { target: '#deployment.verifying.canary.aborting', actions: 'abortFailed' };
/** Stage and warm: a repair's revision is the one serving; it fails like a repair in place, nothing is archived. */
const ABORT_UNLESS_REPAIR: Done[] = [{ guard: 'isRepair', target: '#deployment.failed', actions: 'fail' }, ABORT];

// ---- the machine ----

type Ctx = DeploymentContext;
type DoneEvent<T> = { output: EffectOutput<T> };
type ErrorEvent = { error: unknown };

export const deploymentMachine = setup({
  types: {
    context: {} as DeploymentContext,
    events: {} as DeploymentEvent,
    input: {} as DeploymentInput,
  },
  actors: {
    sync: notProvided('sync') as unknown as ReturnType<typeof fromPromise<EffectOutput<SyncResult>, SyncInput>>,
    render: notProvided('render') as unknown as ReturnType<typeof fromPromise<EffectOutput<RenderResult>, RenderInput>>,
    apply: notProvided('apply') as unknown as ReturnType<typeof fromPromise<EffectOutput<ApplyResult>, ApplyInput>>,
    verify: notProvided('verify') as unknown as ReturnType<typeof fromPromise<EffectOutput<VerifyResult>, VerifyInput>>,
    scale: notProvided('scale') as unknown as ReturnType<typeof fromPromise<EffectOutput<ScaleResult>, ScaleInput>>,
    findRollbackTarget: notProvided('findRollbackTarget') as unknown as ReturnType<
      typeof fromPromise<EffectOutput<FindTargetResult | null>, FindTargetInput>
    >,
    checkDrift: notProvided('checkDrift') as unknown as ReturnType<typeof fromPromise<EffectOutput<DriftResult>, DriftInput>>,
    teardown: notProvided('teardown') as unknown as ReturnType<typeof fromPromise<EffectOutput<TeardownResult>, TeardownInput>>,
    // the deploy-target verbs of a canary, one invoked effect each
    stage: notProvided('stage') as unknown as ReturnType<typeof fromPromise<EffectOutput<StageResult>, TargetInput>>,
    warm: notProvided('warm') as unknown as ReturnType<typeof fromPromise<EffectOutput<TargetResult>, TargetInput>>,
    split: notProvided('split') as unknown as ReturnType<typeof fromPromise<EffectOutput<TargetResult>, TargetInput>>,
    checkRevision: notProvided('checkRevision') as unknown as ReturnType<typeof fromPromise<EffectOutput<CheckResult>, TargetInput>>,
    drain: notProvided('drain') as unknown as ReturnType<typeof fromPromise<EffectOutput<TargetResult>, TargetInput>>,
    archive: notProvided('archive') as unknown as ReturnType<typeof fromPromise<EffectOutput<TargetResult>, TargetInput>>,
    pruneInPlace: notProvided('pruneInPlace') as unknown as ReturnType<typeof fromPromise<EffectOutput<TargetResult>, PruneInput>>,
  },
  guards: {
    wantsActive: ({ event }) => event.type === 'DESIRED_CHANGED' && event.desired.desiredStatus === 'active',
    wantsStopped: ({ event }) => event.type === 'DESIRED_CHANGED' && event.desired.desiredStatus === 'stopped',
    wantsRollback: ({ event }) => event.type === 'DESIRED_CHANGED' && event.desired.desiredStatus === 'rollback',
    wantsDeleted: ({ event }) => event.type === 'DESIRED_CHANGED' && event.desired.desiredStatus === 'deleted',
    isNewerGeneration: ({ context, event }) => event.type === 'DESIRED_CHANGED' && isNewer(context, event.desired),
    /** a new generation whose rendered spec equals what already runs (e.g. a rollback's write-back) */
    isAlreadyDeployed: ({ context, event }) =>
      event.type === 'DESIRED_CHANGED' &&
      isNewer(context, event.desired) &&
      event.desired.desiredStatus === 'active' &&
      context.deployed !== null &&
      !context.deployed.stopped &&
      context.deployed.spec === specKey(event.desired),
    retryDue: ({ context, event }) =>
      event.type === 'TICK' && context.work?.retryAt !== null && context.work?.retryAt !== undefined &&
      event.now >= context.work.retryAt,
    verifyTimedOut: ({ context, event }) =>
      event.type === 'TICK' && context.work?.verifyDeadline != null && event.now >= context.work.verifyDeadline,
    driftCheckDue: ({ context, event }) =>
      event.type === 'TICK' && context.driftCheckAt !== null && event.now >= context.driftCheckAt,
    driftUnscheduled: ({ context, event }) => event.type === 'TICK' && context.driftCheckAt === null,
    isTransient: ({ event }) => toFailure((event as unknown as ErrorEvent).error).kind === 'transient',
    autoRollbackApplies: ({ context }) =>
      context.desired?.autoRollback === true && context.work?.action === 'deploy' && context.deployed !== null,
    hasRollbackTarget: ({ event }) => (event as unknown as DoneEvent<FindTargetResult | null>).output.value !== null,
    drifted: ({ event }) => (event as unknown as DoneEvent<DriftResult>).output.value.drifted,
    /**
     * Only Failed degrades (a crash loop, an image that cannot be pulled, a Deployment past its
     * progress deadline): InProgress is what a workload shows while it rolls or reschedules a
     * pod, and Unknown/NotFound say nothing about the release (a deleted object is drift).
     */
    healthFailed: ({ event }) => event.type === 'HEALTH' && event.status === 'Failed',
    healthCurrent: ({ event }) => event.type === 'HEALTH' && event.status === 'Current',
    rendersCanary: ({ event }) => (event as unknown as DoneEvent<RenderResult>).output.value.strategy?.kind === 'canary',
    hasStable: ({ context }) => (context.work?.canary?.stable ?? null) !== null,
    stableServing: ({ context }) => context.work?.canary?.stableServing === true,
    rendersCanaryOverRevision: ({ context, event }) =>
      (event as unknown as DoneEvent<RenderResult>).output.value.strategy?.kind === 'canary' && (context.deployed?.revision ?? null) !== null,
    hasInPlace: ({ context }) => (context.work?.canary?.inPlace?.length ?? 0) > 0,
    /** a release applied in place over a revision: the revision goes once the release is verified */
    /** the canary in flight re-applies the serving revision (a live drift repair) */
    isRepair: ({ context }) =>
      context.work?.repair === true && context.work.canary != null && context.deployed?.revision?.name === context.work.canary.revision,
    retiresRevision: ({ context }) => (context.work?.retire ?? null) !== null && !context.work?.canary,
    canaryHeld: ({ context }) => context.work?.canary?.paused === true,
    canaryStepsDone: ({ context }) => nextStep(context) === null,
    nextIsWeight: ({ context }) => { const step = nextStep(context); return step !== null && 'setWeight' in step; },
    nextIsPause: ({ context }) => { const step = nextStep(context); return step !== null && 'pauseMs' in step; },
    pauseDue: ({ context, event }) => event.type === 'TICK' && context.work?.canary?.pauseUntil != null && event.now >= context.work.canary.pauseUntil,
    checkDue: ({ context, event }) => event.type === 'TICK' && context.work?.canary?.checkAt != null && event.now >= context.work.canary.checkAt,
    healthWaitOver: ({ context, event }) =>
      event.type === 'TICK' && context.work?.canary?.healthDeadline != null && event.now >= context.work.canary.healthDeadline,
    revisionReady: ({ event }) => (event as unknown as DoneEvent<CheckResult>).output.value.status === 'ready',
    revisionProgressing: ({ event }) => (event as unknown as DoneEvent<CheckResult>).output.value.status === 'progressing',
    commandIs: ({ event }, params: { command: CanaryCommand }) => event.type === 'CANARY' && event.command === params.command,
    degradedGraceOver: ({ context, event }) =>
      event.type === 'TICK' &&
      context.desired?.autoRollback === true &&
      context.deployed !== null &&
      context.degradedSince !== null &&
      event.now >= context.degradedSince + context.config.degradedGraceMs,
  },
  actions: {
    adoptGeneration: assign(({ context, event }) => {
      if (event.type !== 'DESIRED_CHANGED') return {};
      return { desired: event.desired, observedGeneration: Math.max(context.observedGeneration, event.desired.generation) };
    }),
    startDeploy: assign(({ context, event }) =>
      event.type === 'DESIRED_CHANGED' ? startWork(context, event.desired, actionFor(context, event.desired), 'desired-state') : {},
    ),
    startStop: assign(({ context, event }) =>
      event.type === 'DESIRED_CHANGED' ? startWork(context, event.desired, 'stop', 'desired-state') : {},
    ),
    startRollback: assign(({ context, event }) =>
      event.type === 'DESIRED_CHANGED' ? startWork(context, event.desired, 'rollback', 'desired-state') : {},
    ),
    startTeardown: assign(({ context, event }) => {
      if (event.type !== 'DESIRED_CHANGED') return {};
      const next = startWork(context, event.desired, 'teardown', 'desired-state');
      // Everything the deployment may have put in the cluster: the last release's inventory, and
      // the interrupted action's applied and planned objects (a crash mid-apply created some of
      // them). The effect adds what the cluster cache holds labelled for the deployment.
      const previous = context.work;
      const inventory = mergeRefs(next.deployed?.applied ?? [], previous?.applied ?? [], previous?.plan?.refs ?? []);
      return { ...next, work: next.work ? { ...next.work, imageRef: next.deployed?.imageRef ?? event.desired.imageRef, applied: inventory } : null };
    }),
    succeedTeardown: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<TeardownResult>).output;
      const work = context.work;
      if (!work) return {};
      const phases = [...work.phases, phase('teardown', output.startedAt, output.finishedAt, output.value.message, null)];
      // the journal deletes the row with this record: nothing runs any more
      return { lastError: null, work: null, deployed: null, driftCheckAt: null, completed: complete(work, 'succeeded', phases, null, work.imageRef) };
    }),
    startAutoRollback: assign(({ context }) => {
      if (!context.desired) return {};
      const next = startWork(context, context.desired, 'auto-rollback', `auto-rollback of ${context.desired.imageRef}`);
      // keep the failed deploy's record (the journal writes its history row with this
      // transition) and its error, which explains why the rollback runs
      return { ...next, completed: context.completed, lastError: context.lastError };
    }),
    startDriftRepair: assign(({ context, event }) => {
      if (!context.desired) return {};
      const { reason, pin } = (event as unknown as DoneEvent<DriftResult>).output.value;
      const next = startWork(context, context.desired, 'deploy', `drift: ${reason ?? 'drift'}`);
      // live drift re-applies the release that runs (its commit; its values are the row's, which
      // the check compared equal), not whatever the branch holds
      const work = next.work && pin ? { ...next.work, release: { sha: pin, valuesOverride: null }, repair: true } : next.work;
      return { ...next, work, driftCheckAt: null };
    }),
    markDegraded: assign(({ event }) => {
      if (event.type !== 'HEALTH') return {};
      return { lastError: `degraded: ${event.message}`, degradedSince: event.at };
    }),
    // still degraded, maybe for another reason: the sentence follows, the grace does not restart
    updateDegraded: assign(({ event }) => (event.type === 'HEALTH' ? { lastError: `degraded: ${event.message}` } : {})),
    markRecovered: assign(({ context, event }) => ({
      lastError: null,
      degradedSince: null,
      driftCheckAt: event.type === 'HEALTH' ? event.at + context.config.driftIntervalMs : context.driftCheckAt,
    })),
    startHealthRollback: assign(({ context }) => {
      if (!context.desired || !context.deployed) return {};
      const seconds = Math.round(context.config.degradedGraceMs / 1000);
      const next = startWork(context, context.desired, 'auto-rollback', `auto-rollback of ${context.deployed.imageRef}: degraded for ${seconds} s`);
      // the degraded release's history row was written when it went healthy: no record here;
      // its error explains why the rollback runs
      return { ...next, completed: null, lastError: context.lastError };
    }),
    scheduleDriftCheck: assign(({ context, event }) => {
      if (event.type === 'TICK') return { driftCheckAt: event.now + context.config.driftIntervalMs };
      const output = (event as unknown as DoneEvent<unknown>).output;
      return { driftCheckAt: output ? output.finishedAt + context.config.driftIntervalMs : null };
    }),
    recordSync: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<SyncResult>).output;
      if (!context.work) return {};
      const pinned = output.value.head !== undefined && output.value.head !== output.value.sha && output.value.sha !== null;
      const detail = output.value.sha ? `ops repo at ${output.value.sha}${pinned ? ` (the release's commit; branch at ${output.value.head ?? 'unknown'})` : ''}` : 'built-in template';
      return {
        work: {
          ...context.work,
          sha: output.value.sha,
          head: output.value.head === undefined ? output.value.sha : output.value.head,
          attempt: 0,
          retryAt: null,
          phases: [...context.work.phases, phase('sync', output.startedAt, output.finishedAt, detail, null)],
        },
      };
    }),
    recordRender: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<RenderResult>).output;
      if (!context.work) return {};
      const detail = `${output.value.plan.count} object(s) from ${output.value.files.length || 'built-in'} file(s)`;
      return {
        work: {
          ...context.work,
          plan: output.value.plan,
          prune: output.value.prune === true,
          values: output.value.values ? { ...output.value.values, override: renderedDesired(context).valuesOverride, source: renderSourceOf(renderedDesired(context)) } : null,
          strategy: output.value.strategy ?? null,
          attempt: 0,
          retryAt: null,
          phases: [...context.work.phases, phase('render', output.startedAt, output.finishedAt, detail, null)],
        },
      };
    }),
    recordApply: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<ApplyResult>).output;
      if (!context.work) return {};
      return {
        work: {
          ...context.work,
          applied: output.value.applied,
          // applied: the plan is done with, and what an earlier interrupted apply did is overwritten
          plan: null,
          interrupted: null,
          attempt: 0,
          retryAt: null,
          verifyDeadline: output.finishedAt + context.config.verifyTimeoutMs,
          phases: [
            ...context.work.phases,
            phase('apply', output.startedAt, output.finishedAt, `${output.value.applied.length} object(s) applied`, null),
          ],
        },
      };
    }),
    recordTarget: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<FindTargetResult | null>).output;
      if (!context.work || !output.value) return {};
      const target = output.value;
      const release: ReleaseSource | null =
        target.historyId === undefined ? null : { historyId: target.historyId, sha: target.sha, valuesOverride: target.valuesOverride ?? null, source: target.source ?? null };
      const from = release?.source ? (release.source.opsRepoId ? `, path ${release.source.manifestPath}` : ', built-in template') : '';
      const detail = release
        ? `rolling back to ${target.imageRef} (release ${release.historyId}${release.sha ? `, commit ${release.sha.slice(0, 12)}` : ''}${from})`
        : `rolling back to ${target.imageRef}`;
      return {
        work: {
          ...context.work,
          imageRef: target.imageRef,
          release,
          phases: [...context.work.phases, phase('find-target', output.startedAt, output.finishedAt, detail, null)],
        },
      };
    }),
    noRollbackTarget: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<FindTargetResult | null>).output;
      if (!context.work) return {};
      const error = 'no previous healthy image to roll back to: deploy an image first, or set desired_status back to active';
      const phases = [...context.work.phases, phase('find-target', output.startedAt, output.finishedAt, null, error)];
      return {
        lastError: error,
        completed: complete(context.work, 'failed', phases, error, context.desired?.imageRef ?? ''),
        work: null,
        unsettled: leftBehind(context.work),
      };
    }),
    succeed: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<VerifyResult | ScaleResult>).output;
      const work = context.work;
      if (!work) return {};
      const name = work.action === 'stop' ? 'scale' : 'verify';
      const phases = [...work.phases, phase(name, output.startedAt, output.finishedAt, output.value.message, null)];
      return succeeded(context, phases, output.finishedAt, (output.value as ScaleResult).images);
    }),
    // the in-place release is verified; the revision it takes over from is retired before it succeeds
    recordVerify: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<VerifyResult>).output;
      const work = context.work;
      if (!work) return {};
      const phases = [...work.phases, phase('verify', output.startedAt, output.finishedAt, output.value.message, null)];
      return { work: { ...work, attempt: 0, retryAt: null, phases } };
    }),
    recordRetireDrain: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<TargetResult>).output;
      const work = context.work;
      if (!work) return {};
      const phases = [...work.phases, phase(`drain ${work.retire?.name ?? ''}`, output.startedAt, output.finishedAt, output.value.message, null)];
      return { work: { ...work, attempt: 0, retryAt: null, phases } };
    }),
    succeedRetired: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<TargetResult>).output;
      const work = context.work;
      if (!work) return {};
      const phases = [...work.phases, phase(`archive ${work.retire?.name ?? ''}`, output.startedAt, output.finishedAt, output.value.message, null)];
      return succeeded(context, phases, output.finishedAt, undefined);
    }),
    fail: assign(({ context, event }) => {
      const work = context.work;
      if (!work) return {};
      const failure = toFailure((event as unknown as ErrorEvent).error);
      const name = failedPhaseName(work);
      const phases =
        failure.at > 0 ? [...work.phases, phase(name, failure.startedAt || failure.at, failure.at, null, failure.message)] : work.phases;
      return {
        lastError: failure.message,
        completed: complete(work, 'failed', phases, failure.message, work.imageRef || context.desired?.imageRef || ''),
        work: null,
        unsettled: leftBehind(work),
      };
    }),
    failVerifyTimeout: assign(({ context, event }) => {
      const work = context.work;
      if (!work || event.type !== 'TICK') return {};
      const seconds = Math.round(context.config.verifyTimeoutMs / 1000);
      const error = `verification timed out after ${seconds} s: the workloads did not become ready; check the pods' events`;
      const started = work.verifyDeadline !== null ? work.verifyDeadline - context.config.verifyTimeoutMs : event.now;
      const phases = [...work.phases, phase('verify', started, event.now, null, error)];
      return { lastError: error, completed: complete(work, 'failed', phases, error, work.imageRef), work: null, unsettled: leftBehind(work) };
    }),
    scheduleRetry: assign(({ context, event }) => {
      const work = context.work;
      if (!work) return {};
      const failure = toFailure((event as unknown as ErrorEvent).error);
      const attempt = work.attempt + 1;
      return {
        lastError: `${failure.message} (attempt ${attempt}, retrying)`,
        work: { ...work, attempt, retryAt: failure.at + backoffMs(context.config, attempt, `${context.deploymentId}:${work.actionId}`) },
      };
    }),
    clearRetry: assign(({ context }) => (context.work ? { work: { ...context.work, retryAt: null } } : {})),

    // ---- canary (version 5) ----
    startCanary: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<RenderResult>).output;
      const work = context.work;
      if (!work) return {};
      const deployed = context.deployed;
      // A live drift repair of a revision re-applies that revision under its own name: stage
      // (its workload's template, at the size it has), warm (its size, ready), 100 % (its route
      // and Service). Nothing else serves, so nothing is drained, and a failure fails the repair:
      // the revision is never aborted away.
      const own = work.repair === true && deployed?.revision ? deployed.revision : null;
      const stable = own ? null : (deployed?.revision ?? null);
      // what a release applied in place runs: its workloads go once the revision has the traffic
      // (its Service and HTTPRoute become the deployment's, which the target applies over)
      const inPlace = deployed && !deployed.revision && !own ? deployed.applied.filter((ref) => ref.apiVersion === 'apps/v1' && ref.kind === 'Deployment') : [];
      const canary: Canary = {
        revision: own ? own.name : `r${context.actionCounter}`,
        stable,
        // a rollback goes back at once: no steps shift traffic for it
        stableServing: stable !== null && deployed?.stopped !== true && (work.action === 'deploy' || work.action === 'resume'),
        inPlace,
        step: 0,
        split: null,
        pauseUntil: null,
        healthDeadline: null,
        checkAt: null,
        paused: false,
        at: output.finishedAt,
        abortReason: null,
        refs: [],
      };
      return { work: { ...work, canary } };
    }),
    recordStage: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<StageResult>).output;
      return canaryStep(context, output, 'stage', output.value.message, { refs: output.value.refs });
    }),
    recordWarm: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<TargetResult>).output;
      return canaryStep(context, output, 'warm', output.value.message, {});
    }),
    beginWeight: assign(({ context }) => {
      const canary = context.work?.canary;
      const step = nextStep(context);
      if (!canary || !step || !('setWeight' in step)) return {};
      // recorded before the target is asked: a restored `split` re-sends exactly these weights
      const split = canary.stable
        ? [{ revision: canary.stable.name, weightBps: TOTAL_BPS - step.setWeight }, { revision: canary.revision, weightBps: step.setWeight }]
        : [{ revision: canary.revision, weightBps: TOTAL_BPS }];
      return withCanary(context, { split });
    }),
    recordSplitStep: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<TargetResult>).output;
      const weight = context.work?.canary?.split?.find((e) => e.revision === context.work?.canary?.revision)?.weightBps ?? 0;
      return canaryStep(context, output, `split ${percent(weight)}`, output.value.message, { step: (context.work?.canary?.step ?? 0) + 1 });
    }),
    beginPause: assign(({ context }) => {
      const canary = context.work?.canary;
      const step = nextStep(context);
      if (!canary || !step || !('pauseMs' in step)) return {};
      return withCanary(context, { pauseUntil: canary.at + step.pauseMs });
    }),
    endPause: assign(({ context, event }) => {
      const canary = context.work?.canary;
      const step = nextStep(context);
      if (!canary || event.type !== 'TICK' || !step || !('pauseMs' in step) || canary.pauseUntil === null) return {};
      const started = canary.pauseUntil - step.pauseMs;
      return canaryStep(context, { startedAt: started, finishedAt: event.now }, `pause ${seconds(step.pauseMs)}`, null, { step: canary.step + 1, pauseUntil: null });
    }),
    beginHealthWait: assign(({ context }) => {
      const canary = context.work?.canary;
      if (!canary || canary.healthDeadline !== null) return {};
      return withCanary(context, { healthDeadline: canary.at + context.config.verifyTimeoutMs, checkAt: null });
    }),
    recordHealthy: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<CheckResult>).output;
      const canary = context.work?.canary;
      if (!canary) return {};
      const started = canary.healthDeadline !== null ? canary.healthDeadline - context.config.verifyTimeoutMs : output.startedAt;
      return canaryStep(context, { startedAt: started, finishedAt: output.finishedAt }, 'wait-healthy', output.value.message, {
        step: canary.step + 1,
        healthDeadline: null,
        checkAt: null,
      });
    }),
    scheduleCheck: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<CheckResult>).output;
      return withCanary(context, { checkAt: output.finishedAt + context.config.canaryCheckMs, at: output.finishedAt });
    }),
    abortUnhealthy: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<CheckResult>).output;
      const canary = context.work?.canary;
      const reason = `canary ${canary?.revision ?? ''} is ${output.value.status}: ${output.value.message}`;
      return beginAbort(context, reason, phase('wait-healthy', output.startedAt, output.finishedAt, null, reason), output.finishedAt);
    }),
    abortHealthTimeout: assign(({ context, event }) => {
      const canary = context.work?.canary;
      if (!canary || event.type !== 'TICK') return {};
      const reason = `canary ${canary.revision} did not become ready within ${seconds(context.config.verifyTimeoutMs)}; check the pods' events`;
      const started = canary.healthDeadline !== null ? canary.healthDeadline - context.config.verifyTimeoutMs : event.now;
      return beginAbort(context, reason, phase('wait-healthy', started, event.now, null, reason), event.now);
    }),
    abortFailed: assign(({ context, event }) => {
      const failure = toFailure((event as unknown as ErrorEvent).error);
      const name = failedCanaryStep(context);
      const at = failure.at > 0 ? failure.at : (context.work?.canary?.at ?? 0);
      return beginAbort(context, failure.message, phase(name, failure.startedAt || at, at, null, failure.message), at);
    }),
    // the command is a phase of its own, named apart from `abort`, the split back to the stable
    // revision (as after a failed step)
    abortCommand: assign(({ context, event }) => {
      if (event.type !== 'CANARY') return {};
      const reason = `canary ${context.work?.canary?.revision ?? ''} aborted by command`;
      return beginAbort(context, reason, phase('abort (command)', event.at, event.at, null, null), event.at);
    }),
    recordCutShort: assign(({ context, event }, params: { step: CutStep }) =>
      event.type === 'CANARY' ? cutShortStep(context, params.step, event.command, event.at) : {},
    ),
    beginPromote: assign(({ context, event }) => {
      const canary = context.work?.canary;
      if (!canary) return {};
      const at = event.type === 'CANARY' ? event.at : canary.at;
      return withCanary(context, { split: [{ revision: canary.revision, weightBps: TOTAL_BPS }], at, pauseUntil: null, healthDeadline: null, checkAt: null });
    }),
    recordPromoteSplit: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<TargetResult>).output;
      return canaryStep(context, output, 'promote', output.value.message, {});
    }),
    recordAbortSplit: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<TargetResult>).output;
      return canaryStep(context, output, 'abort', output.value.message, {});
    }),
    recordDrain: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<TargetResult>).output;
      return canaryStep(context, output, `drain ${retiring(context)}`, output.value.message, {});
    }),
    recordPrune: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<TargetResult>).output;
      return canaryStep(context, output, 'remove in place', output.value.message, {});
    }),
    recordArchive: assign(({ context, event }) => {
      const output = (event as unknown as DoneEvent<TargetResult>).output;
      return canaryStep(context, output, `archive ${retiring(context)}`, output.value.message, {});
    }),
    pauseCanary: assign(({ context }) => withCanary(context, { paused: true })),
    // a pause step that starts after a resume counts from the resume
    resumeCanary: assign(({ context, event }) =>
      withCanary(context, { paused: false, ...(event.type === 'CANARY' ? { at: Math.max(context.work?.canary?.at ?? 0, event.at) } : {}) }),
    ),
    succeedCanary: assign(({ context }) => {
      const work = context.work;
      const canary = work?.canary;
      if (!work || !canary || !context.desired) return {};
      // a rollback writes its release back to the row, as `succeed` does
      const rolledBack = work.action === 'rollback' || work.action === 'auto-rollback';
      return {
        lastError: null,
        work: null,
        completed: { ...complete({ ...work, applied: canary.refs }, 'succeeded', work.phases, null, work.imageRef), writeBack: rolledBack },
        deployed: {
          imageRef: work.imageRef,
          sha: work.sha,
          head: work.head ?? work.sha,
          deployedAt: iso(canary.at),
          spec: specKey(rolledBack ? rolledBackDesired(context.desired, work) : context.desired),
          applied: canary.refs,
          stopped: false,
          revision: { name: canary.revision, render: renderInput(context) },
        },
        driftCheckAt: canary.at + context.config.driftIntervalMs,
      };
    }),
    // the canary is gone and the stable revision serves as before: `deployed` is unchanged
    failCanary: assign(({ context }) => {
      const work = context.work;
      const reason = work?.canary?.abortReason ?? 'canary aborted';
      if (!work) return {};
      return { lastError: reason, completed: complete(work, 'failed', work.phases, reason, work.imageRef), work: null };
    }),
  },
}).createMachine({
  id: 'deployment',
  context: ({ input }) => ({
    deploymentId: input.deploymentId,
    config: { ...DEFAULT_MACHINE_CONFIG, ...input.config },
    desired: null,
    observedGeneration: 0,
    work: null,
    deployed: null,
    completed: null,
    lastError: null,
    actionCounter: 0,
    driftCheckAt: null,
    degradedSince: null,
  }),
  initial: 'idle',
  // A newer generation always wins: from any in-flight state the machine leaves (aborting the
  // invoked effect through its AbortSignal) and starts over for the newest desired state.
  on: {
    DESIRED_CHANGED: [
      { guard: and(['isNewerGeneration', 'wantsDeleted']), target: '.tearing-down', actions: 'startTeardown', reenter: true },
      { guard: and(['isNewerGeneration', 'wantsStopped']), target: '.stopped', actions: 'startStop', reenter: true },
      { guard: and(['isNewerGeneration', 'wantsRollback']), target: '.rolling-back', actions: 'startRollback', reenter: true },
      { guard: and(['isNewerGeneration', 'wantsActive']), target: '.syncing', actions: 'startDeploy', reenter: true },
    ],
  },
  states: {
    idle: {},
    syncing: {
      initial: 'fetching',
      states: {
        fetching: step('sync', { onDone: { target: '#deployment.syncing.rendering', actions: 'recordSync' } }),
        rendering: step('render', {
          onDone: [
            { guard: 'rendersCanary', target: '#deployment.applying.staging', actions: ['recordRender', 'startCanary'] },
            { target: '#deployment.applying', actions: 'recordRender' },
          ],
        }),
      },
    },
    // replace: `running`/`backoff` apply in place. canary: the new revision is staged and warmed.
    applying: withStates(step('apply', { onDone: { target: '#deployment.verifying', actions: 'recordApply' } }), {
      staging: step('stage', { onDone: { target: '#deployment.applying.warming', actions: 'recordStage' }, terminal: ABORT_UNLESS_REPAIR }),
      warming: step('warm', {
        onDone: [
          { guard: 'stableServing', target: '#deployment.verifying.canary', actions: 'recordWarm' },
          // no stable revision (a first deploy as revisions): all traffic at once
          { target: '#deployment.verifying.canary.promoting', actions: ['recordWarm', 'beginPromote'] },
        ],
        terminal: ABORT_UNLESS_REPAIR,
      }),
    }),
    // replace: `running`/`backoff` verify the applied objects. canary: its steps, then promote or abort.
    verifying: withStates(step('verify', { onDone: [RETIRE('verifying'), { target: '#deployment.healthy', actions: 'succeed' }], verify: 'auto-rollback' }), {
      // replace after revisions: the in-place release is verified, the revision it took over from goes
      retiring: retiringStates('verifying'),
      canary: {
        initial: 'steps',
        states: {
          steps: {
            initial: 'next',
            on: {
              CANARY: [
                { guard: { type: 'commandIs', params: { command: 'promote' } }, target: '#deployment.verifying.canary.promoting', actions: 'beginPromote' },
                { guard: { type: 'commandIs', params: { command: 'abort' } }, target: '#deployment.verifying.canary.aborting', actions: 'abortCommand' },
                { guard: { type: 'commandIs', params: { command: 'pause' } }, actions: 'pauseCanary' },
                { guard: { type: 'commandIs', params: { command: 'resume' } }, actions: 'resumeCanary' },
              ],
            },
            states: {
              // which step runs next, from context alone (a restored snapshot decides the same)
              next: {
                always: [
                  { guard: 'canaryHeld', target: 'held' },
                  { guard: 'canaryStepsDone', target: '#deployment.verifying.canary.promoting', actions: 'beginPromote' },
                  { guard: 'nextIsWeight', target: 'splitting', actions: 'beginWeight' },
                  { guard: 'nextIsPause', target: 'pausing', actions: 'beginPause' },
                  { target: 'checking', actions: 'beginHealthWait' },
                ],
              },
              // paused by command: the step in flight finished, the next waits for resume
              held: {
                on: { CANARY: { guard: { type: 'commandIs', params: { command: 'resume' } }, target: 'next', actions: 'resumeCanary' } },
              },
              // promote or abort in a step cut it short: its phase first (pause and resume go to `steps`)
              splitting: {
                ...step('split', { onDone: { target: '#deployment.verifying.canary.steps.next', actions: 'recordSplitStep' }, terminal: ABORT }),
                on: CUT_SHORT('split'),
              },
              pausing: {
                on: { TICK: { guard: 'pauseDue', target: 'next', actions: 'endPause' }, ...CUT_SHORT('pause') },
              },
              checking: {
                ...step('checkRevision', {
                  onDone: [
                    { guard: 'revisionReady', target: '#deployment.verifying.canary.steps.next', actions: 'recordHealthy' },
                    { guard: 'revisionProgressing', target: '#deployment.verifying.canary.steps.waiting', actions: 'scheduleCheck' },
                    { target: '#deployment.verifying.canary.aborting', actions: 'abortUnhealthy' },
                  ],
                  terminal: ABORT,
                }),
                on: CUT_SHORT('wait-healthy'),
              },
              waiting: {
                on: {
                  TICK: [
                    { guard: 'healthWaitOver', target: '#deployment.verifying.canary.aborting', actions: 'abortHealthTimeout' },
                    { guard: 'checkDue', target: 'checking' },
                  ],
                  ...CUT_SHORT('wait-healthy'),
                },
              },
            },
          },
          // all traffic to the new revision, then the old one drained and archived
          promoting: {
            initial: 'splitting',
            states: {
              splitting: step('split', {
                onDone: [
                  { guard: 'hasStable', target: '#deployment.verifying.canary.promoting.draining', actions: 'recordPromoteSplit' },
                  { guard: 'hasInPlace', target: '#deployment.verifying.canary.promoting.removing', actions: 'recordPromoteSplit' },
                  { target: '#deployment.healthy', actions: ['recordPromoteSplit', 'succeedCanary'] },
                ],
              }),
              // the release applied in place, now that the revision has all traffic
              removing: step('pruneInPlace', { onDone: { target: '#deployment.healthy', actions: ['recordPrune', 'succeedCanary'] } }),
              draining: step('drain', { onDone: { target: '#deployment.verifying.canary.promoting.archiving', actions: 'recordDrain' } }),
              archiving: step('archive', { onDone: { target: '#deployment.healthy', actions: ['recordArchive', 'succeedCanary'] } }),
            },
          },
          // all traffic back to the stable revision, then the canary drained and archived; the action fails
          aborting: {
            initial: 'start',
            states: {
              start: {
                always: [
                  { guard: 'hasStable', target: 'splitting' },
                  { target: 'draining' },
                ],
              },
              splitting: step('split', { onDone: { target: '#deployment.verifying.canary.aborting.draining', actions: 'recordAbortSplit' } }),
              draining: step('drain', { onDone: { target: '#deployment.verifying.canary.aborting.archiving', actions: 'recordDrain' } }),
              archiving: step('archive', {
                onDone: [
                  // auto_rollback as for a failed verification: the failed deploy is recorded, then rolled back
                  { guard: 'autoRollbackApplies', target: '#deployment.rolling-back', actions: ['recordArchive', 'failCanary', 'startAutoRollback'] },
                  { target: '#deployment.failed', actions: ['recordArchive', 'failCanary'] },
                ],
              }),
            },
          },
        },
      },
    }),
    healthy: {
      initial: 'idle',
      on: {
        // at rest only: mid-rollout the cluster may already run something else
        DESIRED_CHANGED: { guard: 'isAlreadyDeployed', actions: 'adoptGeneration' },
        // live health: a release that went healthy and then degraded in place
        HEALTH: { guard: 'healthFailed', target: '#deployment.failed.degraded', actions: 'markDegraded' },
      },
      states: {
        idle: {
          on: {
            TICK: [
              { guard: 'driftCheckDue', target: 'checking' },
              { guard: 'driftUnscheduled', actions: 'scheduleDriftCheck' },
            ],
          },
        },
        // level-based reconcile: has the ops repo moved or the live state drifted?
        checking: { invoke: driftCheck('idle') },
      },
    },
    failed: {
      initial: 'idle',
      states: {
        // an action failed: only a new generation moves on
        idle: {},
        // current_status 'failed' too, but the release still runs: it may recover on its own.
        // The drift check goes on: a `kubectl set image` to a broken image is drift, and its
        // repair (drift: repair) is what fixes it.
        degraded: {
          initial: 'watching',
          states: {
            watching: {
              on: {
                TICK: [
                  // the grace first: a due drift check must not put the rollback off
                  { guard: 'degradedGraceOver', target: '#deployment.rolling-back', actions: 'startHealthRollback' },
                  { guard: 'driftCheckDue', target: 'checking' },
                  { guard: 'driftUnscheduled', actions: 'scheduleDriftCheck' },
                ],
              },
            },
            checking: {
              invoke: driftCheck('watching'),
              on: { TICK: { guard: 'degradedGraceOver', target: '#deployment.rolling-back', actions: 'startHealthRollback' } },
            },
          },
          on: {
            DESIRED_CHANGED: { guard: 'isAlreadyDeployed', actions: 'adoptGeneration' },
            HEALTH: [
              { guard: 'healthCurrent', target: '#deployment.healthy', actions: 'markRecovered' },
              { guard: 'healthFailed', actions: 'updateDegraded' },
            ],
          },
        },
      },
    },
    'rolling-back': {
      initial: 'finding',
      states: {
        finding: step('findRollbackTarget', {
          onDone: [
            { guard: 'hasRollbackTarget', target: '#deployment.rolling-back.fetching', actions: 'recordTarget' },
            { target: '#deployment.failed', actions: 'noRollbackTarget' },
          ],
        }),
        fetching: step('sync', { onDone: { target: '#deployment.rolling-back.rendering', actions: 'recordSync' } }),
        rendering: step('render', {
          onDone: [
            // a deployment whose release is a revision rolls back as one: the release staged and
            // warmed as a new revision, all traffic at once (applying it in place would run it
            // beside the revision, behind the same Service)
            { guard: 'rendersCanaryOverRevision', target: '#deployment.applying.staging', actions: ['recordRender', 'startCanary'] },
            { target: '#deployment.rolling-back.applying', actions: 'recordRender' },
          ],
        }),
        applying: step('apply', { onDone: { target: '#deployment.rolling-back.verifying', actions: 'recordApply' } }),
        verifying: step('verify', { onDone: [RETIRE('rolling-back'), { target: '#deployment.healthy', actions: 'succeed' }], verify: 'no-auto-rollback' }),
        retiring: retiringStates('rolling-back'),
      },
    },
    stopped: {
      initial: 'scaling',
      states: {
        scaling: step('scale', { onDone: { target: '#deployment.stopped.idle', actions: 'succeed' } }),
        idle: {},
      },
    },
    // desired_status = 'deleted': every object goes, then the journal deletes the row (with its
    // lease and snapshot) in the transaction that records the teardown; the actor is dropped.
    'tearing-down': step('teardown', { onDone: { target: '#deployment.deleted', actions: 'succeedTeardown' } }),
    deleted: {},
  },
});

/** A `step` with more sub-states beside `running`/`backoff` (the canary's, in applying and verifying). */
function withStates(base: { initial: 'running' }, states: Record<string, unknown>): { initial: 'running' } {
  const config = base as unknown as { initial: string; states: Record<string, unknown> };
  return { ...config, states: { ...config.states, ...states } } as unknown as { initial: 'running' };
}

/** Refs without duplicates, in first-seen order. */
function mergeRefs(...lists: ReadonlyArray<readonly ObjectRef[]>): ObjectRef[] {
  const seen = new Map<string, ObjectRef>();
  for (const ref of lists.flat()) {
    const key = `${ref.apiVersion}|${ref.kind}|${ref.namespace ?? ''}|${ref.name}`;
    if (!seen.has(key)) seen.set(key, ref);
  }
  return [...seen.values()];
}

function complete(work: Work, status: Completed['status'], phases: readonly Phase[], error: string | null, imageRef: string): Completed {
  const rendered = work.action !== 'stop' && work.values ? work.values : null;
  // applied once verifyDeadline is set (recordApply); before, work.applied is the previous inventory
  // a teardown records what it deleted (its work.applied) as its inventory
  const applied = work.action !== 'stop' && (work.verifyDeadline !== null || status === 'succeeded');
  return {
    valuesHash: rendered?.hash ?? null,
    valuesRedacted: rendered?.redacted ?? null,
    valuesOverride: rendered?.override ?? null,
    source: rendered?.source ?? null,
    inventory: applied ? work.applied : null,
    actionId: work.actionId,
    action: work.action,
    status,
    imageRef,
    sha: work.sha,
    generation: work.generation,
    phases,
    error,
    triggeredBy: work.triggeredBy,
    writeBack: false,
  };
}

function failedPhaseName(work: Work): string {
  if (work.action === 'stop') return 'scale';
  if (work.action === 'teardown') return 'teardown';
  // a repair of a revision fails at the step in flight (it never aborts)
  if (work.canary && work.repair) return work.canary.refs.length === 0 ? 'stage' : work.phases.some((p) => p.name === 'warm') ? 'promote' : 'warm';
  // a canary fails here only while promoting or aborting (a failed step aborts first)
  if (work.canary) return work.canary.abortReason !== null ? 'abort' : 'promote';
  // verified in place, retiring the revision it took over from
  if (work.retire && work.phases.some((p) => p.name === 'verify')) {
    return `${work.phases.some((p) => p.name.startsWith('drain ')) ? 'archive' : 'drain'} ${work.retire.name}`;
  }
  if (work.verifyDeadline !== null) return 'verify';
  if (work.plan !== null) return 'apply';
  if (work.phases.some((p) => p.name === 'sync')) return 'render';
  if ((work.action === 'rollback' || work.action === 'auto-rollback') && !work.imageRef) return 'find-target';
  return 'sync';
}

type TargetEffect = 'stage' | 'warm' | 'split' | 'checkRevision' | 'drain' | 'archive' | 'pruneInPlace';
type Effect = 'sync' | 'render' | 'apply' | 'verify' | 'scale' | 'findRollbackTarget' | 'teardown' | TargetEffect;
type Done = { target: string; actions: string | string[]; guard?: string };

/**
 * One effect step: `running` invokes the effect; a transient failure waits in `backoff` until a
 * TICK passes `retryAt`; a terminal failure ends the action in `failed` — or, when a deploy's
 * verification fails (or times out) with auto_rollback on, starts an auto-rollback.
 */
/** What a drift check compares: the release that runs (null before there is one). */
function driftInput(context: Ctx): DriftInput | null {
  if (!context.desired || !context.deployed) return null;
  return { deploymentId: context.deploymentId, desired: context.desired, deployed: context.deployed };
}

/**
 * The drift check of a release that runs (healthy, or degraded in place): drifted → a repair
 * from syncing; otherwise back to `rest` with the next check scheduled. A failed check is retried
 * at the next interval; it never fails the deployment.
 */
function driftCheck(rest: 'idle' | 'watching') {
  return {
    id: 'checkDrift',
    src: 'checkDrift',
    input: ({ context }: { context: Ctx }): DriftInput => driftInput(context)!,
    onDone: [
      { guard: 'drifted', target: '#deployment.syncing', actions: 'startDriftRepair' },
      { target: rest, actions: 'scheduleDriftCheck' },
    ],
    onError: { target: rest, actions: 'scheduleDriftCheck' },
  } as const;
}

function step(effect: Effect, options: { onDone: Done | Done[]; verify?: 'auto-rollback' | 'no-auto-rollback'; terminal?: Done | Done[] }) {
  const autoRollback = options.verify === 'auto-rollback';
  const terminal = options.terminal
    ? [options.terminal].flat()
    : [
        ...(autoRollback ? [{ guard: 'autoRollbackApplies', target: '#deployment.rolling-back', actions: ['fail', 'startAutoRollback'] }] : []),
        { target: '#deployment.failed', actions: 'fail' },
      ];
  const timeout = options.verify
    ? [
        ...(autoRollback
          ? [{ guard: and(['verifyTimedOut', 'autoRollbackApplies']), target: '#deployment.rolling-back', actions: ['failVerifyTimeout', 'startAutoRollback'] }]
          : []),
        { guard: 'verifyTimedOut', target: '#deployment.failed', actions: 'failVerifyTimeout' },
      ]
    : [];
  return {
    initial: 'running',
    states: {
      running: {
        invoke: {
          id: effect,
          src: effect,
          input: ({ context }: { context: Ctx }) => effectInput(effect, context),
          onDone: options.onDone,
          onError: [{ guard: 'isTransient', target: 'backoff', actions: 'scheduleRetry' }, ...terminal],
        },
        ...(timeout.length > 0 ? { on: { TICK: timeout } } : {}),
      },
      backoff: {
        on: { TICK: [...timeout, { guard: 'retryDue', target: 'running', actions: 'clearRetry' }] },
      },
    },
    // xstate cannot infer a config built outside createMachine; the names used here are
    // checked at run time and by the machine tests, which walk every transition.
  } as unknown as { initial: 'running' };
}

/** The source a desired state renders from, as a release records it (the path resolved). */
export function renderSourceOf(desired: Desired): RenderSource {
  return { opsRepoId: desired.opsRepoId, manifestPath: desired.manifestPath ?? desired.project };
}

/**
 * The desired state a release is rendered from again: the row's, with what the release recorded
 * in its place — its values_override (migration 0007) and its ops repo and manifest path (0013):
 * the release's commit only means something in the repo and folder it was rendered from. What it
 * did not record (a release from before those migrations; a drift repair's pin) stays the row's,
 * and so do the namespace and the rest: where the deployment lives now is the row's to say.
 * A recorded path equal to the row's resolved one keeps the row's spelling (null stays null), so
 * the write-back (src/runtime/journal.ts, the same rule) leaves such a row as it is and the
 * rendered spec equals the written-back row's.
 */
export function releaseDesired(desired: Desired, release: ReleaseSource | null): Desired {
  if (!release) return desired;
  const source = release.source ?? null;
  const samePath = source !== null && source.manifestPath === (desired.manifestPath ?? desired.project);
  return {
    ...desired,
    ...(release.valuesOverride ? { valuesOverride: release.valuesOverride } : {}),
    ...(source ? { opsRepoId: source.opsRepoId, manifestPath: samePath ? desired.manifestPath : source.manifestPath } : {}),
  };
}

/** The desired state a rollback leaves: its release's (releaseDesired), active, with its image. */
function rolledBackDesired(desired: Desired, work: Work): Desired {
  return { ...releaseDesired(desired, work.release ?? null), imageRef: work.imageRef, desiredStatus: 'active' };
}

/** What the action renders: the row's desired state, or for a rollback its release's (releaseDesired). */
function renderedDesired(context: Ctx): Desired {
  return releaseDesired(context.desired!, context.work?.release ?? null);
}

function effectInput(effect: Effect, context: Ctx): unknown {
  const desired = context.desired!;
  const work = context.work!;
  const rendered = renderedDesired(context);
  switch (effect) {
    case 'sync':
      return {
        deploymentId: context.deploymentId,
        // a rollback fetches from its release's ops repo (releaseDesired), not the row's
        opsRepoId: rendered.opsRepoId,
        force: work.triggeredBy === 'desired-state',
        // a rollback renders its release's commit (a release of the built-in template has none)
        pin: work.release?.sha ?? null,
        ...(work.release?.historyId !== undefined ? { release: { historyId: work.release.historyId, manifestPath: rendered.manifestPath ?? rendered.project } } : {}),
      } satisfies SyncInput;
    case 'render':
      return { deploymentId: context.deploymentId, desired: rendered, imageRef: work.imageRef, sha: work.sha } satisfies RenderInput;
    case 'apply':
      return {
        deploymentId: context.deploymentId,
        namespace: desired.namespace,
        plan: work.plan,
        render: { deploymentId: context.deploymentId, desired: rendered, imageRef: work.imageRef, sha: work.sha },
        previous: context.deployed?.applied ?? [],
        prune: work.prune,
        previousNamespace: context.deployed ? specNamespace(context.deployed.spec) : null,
      } satisfies ApplyInput;
    case 'verify':
      return { deploymentId: context.deploymentId, namespace: desired.namespace, applied: work.applied } satisfies VerifyInput;
    case 'scale':
      return { deploymentId: context.deploymentId, namespace: desired.namespace } satisfies ScaleInput;
    case 'teardown':
      return { deploymentId: context.deploymentId, namespace: desired.namespace, inventory: work.applied } satisfies TeardownInput;
    case 'stage':
    case 'warm':
    case 'checkRevision':
      return { ...targetInput(context), revision: work.canary!.revision } satisfies TargetInput;
    case 'split':
      // with neither a stable revision to archive nor a release in place to remove, the
      // promotion's split is the canary's last step: it sweeps what an action cut short left
      return {
        ...targetInput(context),
        revision: work.canary!.revision,
        ...(endsAtSplit(work.canary!) ? { sweep: true } : {}),
      } satisfies TargetInput;
    case 'drain':
    case 'archive':
      return (work.canary ? targetInput(context) : retireInput(context)) satisfies TargetInput;
    case 'pruneInPlace':
      // the canary's last step: a revision a replace deploy cut short was retiring goes too
      return { deploymentId: context.deploymentId, refs: work.canary?.inPlace ?? [], canary: { ...targetInput(context), revision: work.canary!.revision } } satisfies PruneInput;
    case 'findRollbackTarget':
      // an explicit target only for a rollback the row asked for (not an auto-rollback)
      return {
        deploymentId: context.deploymentId,
        release: work.action === 'rollback' ? (desired.rollbackTo ?? null) : null,
      } satisfies FindTargetInput;
  }
}

export type DeploymentMachine = typeof deploymentMachine;
export type DeploymentActor = ActorRefFrom<DeploymentMachine>;
export type DeploymentSnapshot = SnapshotFrom<DeploymentMachine>;

/** The top-level state, which `deployments.current_status` mirrors. */
export function topLevelState(value: DeploymentSnapshot['value']): string {
  return typeof value === 'string' ? value : (Object.keys(value)[0] ?? 'idle');
}

/**
 * From when a TICK can change a snapshot: a time, `-Infinity` (any TICK: in flight, retries and
 * deadlines are timed, and a degraded deployment's grace), or null (no TICK can, until another
 * event changes the snapshot). At rest nothing is timed but a healthy deployment's drift check
 * (`driftCheckAt`). The runtime keeps its actors in a schedule by this time, so a tick visits
 * only the due ones: ten thousand resting actors cost a tick fan-out every interval otherwise.
 * Conservative (earlier when unsure), and checked against the machine in its tests: a TICK
 * before it leaves the snapshot as it was.
 */
export function tickDueAt(snapshot: Pick<DeploymentSnapshot, 'value' | 'context'>): number | null {
  const value = snapshot.value as string | Record<string, unknown>;
  if (value === 'idle' || value === 'deleted') return null;
  if (typeof value !== 'object') return Number.NEGATIVE_INFINITY;
  if (value.failed === 'idle' || value.stopped === 'idle') return null;
  if (value.healthy === 'idle') return snapshot.context.driftCheckAt ?? Number.NEGATIVE_INFINITY;
  return Number.NEGATIVE_INFINITY;
}

/**
 * The drift check of a deployment resting in `healthy.idle`, due at `now`: its input, or null.
 * The runtime runs this routine check itself, outside the actor, and hands the actor only a
 * finding of drift (as the TICK that starts `checking`, whose check then answers with that
 * finding). A check that finds the release in sync — nearly all of them — changes nothing the
 * machine keeps but when the next one is due, and as an actor round trip (two macrosteps, a child
 * actor, three snapshots) it was most of what ten thousand idle deployments cost a host.
 * `checkedUntil`: when the next check is due after the runtime's last one; the snapshot's own
 * `driftCheckAt` still counts when it is later (a rollout that finished since schedules its own).
 */
export function restingDriftCheck(snapshot: Pick<DeploymentSnapshot, 'value' | 'context'>, now: number, checkedUntil: number | null): DriftInput | null {
  if (!restsHealthy(snapshot)) return null;
  const at = snapshot.context.driftCheckAt;
  // unscheduled (a failed check in the machine): the machine's TICK schedules it
  if (at === null || now < Math.max(at, checkedUntil ?? at)) return null;
  return driftInput(snapshot.context);
}

/** tickDueAt, with the runtime's own drift checks (see restingDriftCheck) moving a resting deployment's. */
export function restingDueAt(snapshot: Pick<DeploymentSnapshot, 'value' | 'context'>, checkedUntil: number | null): number | null {
  const due = tickDueAt(snapshot);
  if (due === null || checkedUntil === null || !restsHealthy(snapshot) || snapshot.context.driftCheckAt === null) return due;
  return Math.max(due, checkedUntil);
}

/** Whether a snapshot rests in `healthy.idle` (released, verified, nothing in flight). */
export function restsHealthy(snapshot: Pick<DeploymentSnapshot, 'value'>): boolean {
  const value = snapshot.value as string | Record<string, unknown>;
  return typeof value === 'object' && value.healthy === 'idle';
}

/** Whether a TICK at `now` can change a snapshot (see tickDueAt, which it is defined by). */
export function tickMatters(snapshot: Pick<DeploymentSnapshot, 'value' | 'context'>, now: number): boolean {
  const due = tickDueAt(snapshot);
  return due !== null && now >= due;
}

// ---- restoring older snapshots ----

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Brings a persisted snapshot of an older MACHINE_VERSION up to this one, or returns undefined
 * when it cannot (the actor then starts afresh). Pure; the runtime calls it on restore.
 *
 * 1 → 2: version 1 kept the rendered objects — Secret data included — in `work.rendered` and in
 * the input of an in-flight `apply`. Both are dropped: the work gets `plan: null`, and a
 * restored `apply` finds no plan in this process and renders again from the same inputs (the
 * desired state, image and commit in context), so no Secret data needs to survive the restore.
 */
export function migratePersistedSnapshot(snapshot: unknown, version: string): unknown {
  if (version === MACHINE_VERSION) return snapshot;
  const steps: Record<string, (snapshot: unknown) => unknown> = { '1': from1to2, '2': from2to3, '3': from3to4, '4': from4to5 };
  if (!(version in steps)) return undefined;
  let current: unknown = snapshot;
  for (let v = Number(version); v < Number(MACHINE_VERSION); v++) {
    current = steps[String(v)]?.(current);
    if (current === undefined) return undefined;
  }
  return current;
}

/**
 * 4 → 5: canaries. A version-4 actor replaced in place: its work has no strategy and no canary
 * (replace), its deployed release is no revision. State values are unchanged: the replace
 * sub-states of applying/verifying (`running`/`backoff`) kept their names.
 */
function from4to5(snapshot: unknown): unknown {
  if (!isObject(snapshot) || !isObject(snapshot.context)) return undefined;
  const context: Json = { ...snapshot.context };
  if (isObject(context.work)) context.work = { ...context.work, strategy: context.work.strategy ?? null, canary: context.work.canary ?? null };
  if (isObject(context.deployed)) context.deployed = { ...context.deployed, revision: context.deployed.revision ?? null };
  if (isObject(context.config)) context.config = { ...DEFAULT_MACHINE_CONFIG, ...context.config };
  return { ...snapshot, context };
}

/**
 * 3 → 4: live health. `failed` became compound: a version-3 `failed` was an action's failure,
 * now `failed.idle`. Nothing was degraded: `degradedSince` is null.
 */
function from3to4(snapshot: unknown): unknown {
  if (!isObject(snapshot) || !isObject(snapshot.context)) return undefined;
  const context: Json = { ...snapshot.context, degradedSince: null };
  const value = snapshot.value === 'failed' ? { failed: 'idle' } : snapshot.value;
  return { ...snapshot, value, context };
}

/**
 * 2 → 3: releases. Work gets `head` (its sha: version 2 rendered the head it fetched), no
 * `release` (a version-2 rollback found its target by image and renders today's values, as it
 * would have) and no `values` (its history row records none); the deployed state gets `head`
 * (its sha), so the drift check compares as before. In-flight invocations keep their input: a
 * `sync` without `pin` fetches the head, a `findRollbackTarget` without `release` takes the default.
 */
function from2to3(snapshot: unknown): unknown {
  if (!isObject(snapshot) || !isObject(snapshot.context)) return undefined;
  const context: Json = { ...snapshot.context };
  if (isObject(context.work)) {
    const work = context.work;
    context.work = { ...work, head: work.head ?? work.sha ?? null, release: work.release ?? null, values: work.values ?? null };
  }
  if (isObject(context.deployed)) {
    const deployed = context.deployed;
    context.deployed = { ...deployed, head: deployed.head ?? deployed.sha ?? null };
  }
  if (isObject(context.completed)) {
    const completed = context.completed;
    context.completed = { valuesHash: null, valuesRedacted: null, valuesOverride: null, inventory: null, ...completed };
  }
  if (isObject(context.desired)) context.desired = { rollbackTo: null, ...context.desired };
  return { ...snapshot, context };
}

function from1to2(snapshot: unknown): unknown {
  if (!isObject(snapshot) || !isObject(snapshot.context)) return undefined;
  const context = snapshot.context;
  const migrated: Json = { ...snapshot, context };
  if (isObject(context.work)) {
    const { rendered: _rendered, ...work } = context.work;
    context.work = { ...work, plan: null };
  }
  if (isObject(snapshot.children)) {
    const children: Json = { ...snapshot.children };
    const apply = children.apply;
    if (isObject(apply) && isObject(apply.snapshot) && isObject(apply.snapshot.input)) {
      const work = context.work as Work | null;
      const desired = context.desired as Desired | null;
      const { objects: _objects, ...input } = apply.snapshot.input;
      children.apply = {
        ...apply,
        snapshot: {
          ...apply.snapshot,
          input: {
            ...input,
            plan: null,
            render: { deploymentId: context.deploymentId, desired, imageRef: work?.imageRef ?? '', sha: work?.sha ?? null },
          },
        },
      };
    }
    migrated.children = children;
  }
  return migrated;
}
