// The deploy-target contract (issue #16): what keelson asks of any place a deployment's revisions
// run — a Kubernetes cluster today, a process supervisor on bare hosts later. A revision is one
// immutable release of a deployment (its rendered plan); traffic is split between revisions in
// basis points. The machine will speak this contract with two opaque values it already keeps in
// its context: the revision's plan (what render produced, the target reads it) and the
// inventory (which revisions the deployment holds and the split it wants).
//
// Rules every target keeps, checked by test/targets/conformance.ts:
// - Every verb is idempotent: the same call twice gives the same outcome and leaves the provider
//   as the first call left it (a restored actor re-runs its in-flight verb).
// - Preconditions (preconditions.ts) are pure and run before any provider call; they are never
//   reported as provider errors. Provider failures are `ProviderError`s naming request and
//   response, transient or terminal (errors.ts).
// - A split for one deployment never touches another deployment's recorded or enforced split,
//   and its outcome echoes exactly the deployment and entries applied.
import { z } from 'zod';
import { InvalidTargetInput } from './errors.ts';

/** A split's weights sum to exactly this many basis points. */
export const TOTAL_BPS = 10_000;

/**
 * A deployment's id as targets use it: also a Kubernetes label value, so at most 63 characters
 * of [A-Za-z0-9._-], starting and ending alphanumeric.
 */
export const deploymentIdSchema = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/, 'must be a label value: letters, digits, - _ . (at most 63), starting and ending with a letter or digit');

export const trafficSplitEntrySchema = z.strictObject({
  /** Checked by the preconditions (InvalidRevisionName), not here: a precise error beats a generic one. */
  revision: z.string(),
  weightBps: z.number().int().min(0).max(TOTAL_BPS),
});

export const trafficSplitSchema = z.strictObject({
  deploymentId: z.string(),
  entries: z.array(trafficSplitEntrySchema).min(1).max(16),
});

export const inventoryRevisionSchema = z.strictObject({
  name: z.string(),
  /** Opaque to the caller: the target that made the plan's kind reads it (and checks it purely). */
  plan: z.unknown(),
});

export const inventorySchema = z.strictObject({
  deploymentId: deploymentIdSchema,
  /** Oldest first: where a target needs "the newest" (a route's parents), it is the last one. */
  revisions: z.array(inventoryRevisionSchema).max(64),
  /** The split the deployment wants in force; absent before the first split is recorded. */
  split: trafficSplitSchema.optional(),
});

export type TrafficSplitEntry = z.infer<typeof trafficSplitEntrySchema>;
export type TrafficSplit = z.infer<typeof trafficSplitSchema>;
export type InventoryRevision = z.infer<typeof inventoryRevisionSchema>;
export type Inventory = z.infer<typeof inventorySchema>;

export interface TargetCallOptions {
  /** The fence: once aborted, the target sends nothing more (the caller lost its lease or moved on). */
  readonly signal: AbortSignal;
}

/** Which revision of which deployment a per-revision outcome is about. */
export interface RevisionOutcome {
  readonly deploymentId: string;
  readonly revision: string;
}

/** The revision's resources exist and it does not serve (yet). */
export interface StageOutcome extends RevisionOutcome {
  /** What the target created or found for the revision, as messages name it. */
  readonly resources: readonly string[];
}

/** The revision runs at its full size and is ready. */
export interface WarmOutcome extends RevisionOutcome {
  readonly replicas: number;
}

/** The revision gets no traffic and runs nothing. */
export type DrainOutcome = RevisionOutcome;

/** The revision's resources are gone (an already archived revision is archived, not an error). */
export type ArchiveOutcome = RevisionOutcome;

/** Exactly the split enforced: the deployment and entries given, in their order. */
export interface SplitOutcome {
  readonly deploymentId: string;
  readonly entries: readonly TrafficSplitEntry[];
}

export type RevisionStatus = 'ready' | 'progressing' | 'failed' | 'missing';

export interface VerifyOutcome extends RevisionOutcome {
  /** `ready`: current and at its size; `missing`: nothing of it exists (not staged, or archived). */
  readonly status: RevisionStatus;
  readonly message: string;
}

export interface ObservedRevision {
  readonly revision: string;
  readonly replicas: number;
  readonly readyReplicas: number;
  readonly status: RevisionStatus;
}

export interface ObservedSplit {
  /** How the target enforces splits (`httproute`, `replicas`, …): says how exact `entries` are. */
  readonly mode: string;
  /** Read back from the provider; for an approximate mode, rounded to sum to 10,000 bps. */
  readonly entries: readonly TrafficSplitEntry[];
}

/** What the provider holds for a deployment, read back from it: enough for a restored actor. */
export interface TargetObservation {
  readonly deploymentId: string;
  readonly revisions: readonly ObservedRevision[];
  /** The split last recorded with the provider (exact), or null. */
  readonly recordedSplit: TrafficSplit | null;
  /** The split the provider enforces now, or null when nothing routes traffic yet. */
  readonly enforcedSplit: ObservedSplit | null;
}

export interface DeployTarget {
  /** `kubernetes`, …: for messages and metrics. */
  readonly name: string;
  /** Creates the revision's resources without letting it serve (on Kubernetes: 0 replicas). */
  stage(inventory: Inventory, revision: string, options: TargetCallOptions): Promise<StageOutcome>;
  /** Brings a staged revision to its full size and waits until it is ready. */
  warm(inventory: Inventory, revision: string, options: TargetCallOptions): Promise<WarmOutcome>;
  /** Takes a revision out of service: no traffic (the recorded split must give it 0), nothing running. */
  drain(inventory: Inventory, revision: string, options: TargetCallOptions): Promise<DrainOutcome>;
  /** Deletes the revision's resources; an already archived revision succeeds. */
  archive(inventory: Inventory, revision: string, options: TargetCallOptions): Promise<ArchiveOutcome>;
  /** Enforces the inventory's recorded split for its deployment, and records it with the provider. */
  applySplit(inventory: Inventory, options: TargetCallOptions): Promise<SplitOutcome>;
  /** Whether the revision is ready now (no waiting). */
  verify(inventory: Inventory, revision: string, options: TargetCallOptions): Promise<VerifyOutcome>;
  /** Which revisions exist, their readiness, and the split in force: read from the provider alone. */
  observe(deploymentId: string, options: TargetCallOptions): Promise<TargetObservation>;
}

/** The inventory at the boundary: zod-checked, or `InvalidTargetInput` naming the field. */
export function parseInventory(input: unknown): Inventory {
  const parsed = inventorySchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue && issue.path.length > 0 ? `inventory.${issue.path.join('.')}` : 'inventory';
  throw new InvalidTargetInput(`The ${where} is invalid: ${issue?.message ?? 'invalid value'}.`);
}

export function parseDeploymentId(input: unknown): string {
  const parsed = deploymentIdSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw new InvalidTargetInput(`The deployment id ${JSON.stringify(input)} is invalid: ${parsed.error.issues[0]?.message ?? 'invalid value'}.`);
}
