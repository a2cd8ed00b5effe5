// The preconditions of every deploy-target verb: pure functions of the call's inputs, run before
// any provider call, so a wrong call costs nothing and fails the same way on every target. Each
// throws the typed precondition error (errors.ts) and never a provider error. A target calls the
// one for its verb first; the conformance suite counts provider calls to prove it did.
import {
  DuplicateSplitEntry,
  InvalidRevisionName,
  RevisionCarriesTraffic,
  RevisionNotFound,
  SplitForOtherDeployment,
  SplitNotFound,
  WeightsDoNotSum,
} from './errors.ts';
import { parseDeploymentId, parseInventory, TOTAL_BPS, type Inventory, type InventoryRevision, type TrafficSplit, type TrafficSplitEntry } from './contract.ts';

/**
 * A revision name: a DNS label of at most 20 characters, so that a target can derive names from
 * it (`<workload>-<revision>` stays within Kubernetes' 63-character labels for names up to 42).
 */
export const REVISION_NAME_MAX = 20;
const REVISION_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function checkRevisionName(name: string): void {
  if (name.length === 0) throw new InvalidRevisionName(name, 'it is empty');
  if (name.length > REVISION_NAME_MAX) throw new InvalidRevisionName(name, `it is longer than ${REVISION_NAME_MAX} characters`);
  if (!REVISION_NAME.test(name)) throw new InvalidRevisionName(name, 'use lower-case letters, digits and -, starting and ending with a letter or digit');
}

export function splitSum(entries: readonly TrafficSplitEntry[]): number {
  return entries.reduce((sum, entry) => sum + entry.weightBps, 0);
}

/** The revision's weight in a split (0 when the split does not name it). */
export function weightOf(split: TrafficSplit | undefined, revision: string): number {
  return split?.entries.find((entry) => entry.revision === revision)?.weightBps ?? 0;
}

function findRevision(inventory: Inventory, revision: string): InventoryRevision {
  checkRevisionName(revision);
  const found = inventory.revisions.find((r) => r.name === revision);
  if (!found) throw new RevisionNotFound(inventory.deploymentId, revision);
  return found;
}

/** stage, warm, verify: a valid inventory that holds the revision. */
export function revisionCall(input: unknown, revision: string): { inventory: Inventory; revision: InventoryRevision } {
  const inventory = parseInventory(input);
  for (const r of inventory.revisions) checkRevisionName(r.name);
  return { inventory, revision: findRevision(inventory, revision) };
}

/** drain, archive: as above, and the recorded split sends the revision no traffic. */
export function retireCall(input: unknown, revision: string): { inventory: Inventory; revision: InventoryRevision } {
  const call = revisionCall(input, revision);
  const weight = weightOf(call.inventory.split, revision);
  if (weight > 0) throw new RevisionCarriesTraffic(call.inventory.deploymentId, revision, weight);
  return call;
}

/**
 * applySplit: a split is recorded, for this deployment, naming each revision once, only
 * revisions the inventory holds, and summing to exactly 10,000 bps.
 */
export function splitCall(input: unknown): { inventory: Inventory; split: TrafficSplit; revisions: InventoryRevision[] } {
  const inventory = parseInventory(input);
  for (const r of inventory.revisions) checkRevisionName(r.name);
  const split = inventory.split;
  if (!split) throw new SplitNotFound(inventory.deploymentId);
  if (split.deploymentId !== inventory.deploymentId) throw new SplitForOtherDeployment(inventory.deploymentId, split.deploymentId);
  const seen = new Set<string>();
  for (const entry of split.entries) {
    checkRevisionName(entry.revision);
    if (seen.has(entry.revision)) throw new DuplicateSplitEntry(inventory.deploymentId, entry.revision);
    seen.add(entry.revision);
  }
  const sum = splitSum(split.entries);
  if (sum !== TOTAL_BPS) throw new WeightsDoNotSum(inventory.deploymentId, sum);
  const revisions = split.entries.map((entry) => findRevision(inventory, entry.revision));
  return { inventory, split, revisions };
}

/** observe: a valid deployment id. */
export function observeCall(deploymentId: unknown): string {
  return parseDeploymentId(deploymentId);
}
