// The real effects: git (opsrepo) → nunjucks (render) → server-side apply and watch (kube).
// Each is safe to re-run: a restored actor calls its in-flight effect again with the same input.
// Rendered objects travel from render to apply through the plan cache (src/plans/), by handle:
// Secret data never enters the actor's context, hence never a snapshot or transition.
import { sql } from 'slonik';
import { z } from 'zod';
import { specKey, type DriftResult, type PlanHandle, type RenderInput, type RevisionSource, type SyncInput, type TargetInput } from '../../machines/deployment.machine.ts';
import { WORKLOAD_KINDS, type KubeClient } from '../kube/kubeClient.ts';
import { staleRefs } from '../kube/inventory.ts';
import { describeRef, type KubeObject, type ObjectRef } from '../kube/types.ts';
import type { Db } from '../db/pool.ts';
import { chooseRollbackTarget } from '../db/queries/findRollbackTarget.ts';
import type { Metrics } from '../metrics.ts';
import type { Logger } from '../logger.ts';
import { KeelsonError, TerminalError } from '../errors.ts';
import { redactValues, valuesHash } from '../releases/values.ts';
import type { Source, SourceTree } from '../source/source.ts';
import { createPlanCache, planHash, type PlanCache } from '../plans/planCache.ts';
import { scrubText, secretValues } from '../plans/secrets.ts';
import type { Renderer } from '../render/renderer.ts';
import { strategyOf } from '../render/strategy.ts';
import { enforcePolicy } from '../tenancy/enforcePolicy.ts';
import { describeDrift, DRIFT_MODES, type DriftMode } from './driftReport.ts';
import type { Effects, TargetEffects } from './effects.ts';
import type { Inventory } from '../targets/contract.ts';
import { createKubernetesTarget } from '../targets/kubernetes/target.ts';
import { DEPLOYMENT_KIND, HTTPROUTE_KIND, parsePlan, REVISION_LABEL, revisionServiceRef, SERVICE_KIND, serviceRef, servingObjects, workloadRef } from '../targets/kubernetes/plan.ts';

export interface RolloutEffectsDeps {
  readonly db: Db;
  readonly kube: KubeClient;
  /** ops repo commits: heads to deploy, read-only trees of exactly one commit to render */
  readonly source: Source;
  readonly renderer: Renderer;
  readonly log: Logger;
  /** Fail-fast grace of verification (kube's DEFAULT_FAIL_FAST_GRACE_MS unless given); tests shorten it. */
  readonly failFastGraceMs?: number;
  /** Rendered objects between render and apply; a bounded cache of this process by default. */
  readonly plans?: PlanCache;
  /** Counts drift checks by outcome (`keelson_drift_checks_total`). */
  readonly metrics?: Pick<Metrics, 'driftChecks'>;
}

/**
 * A rollback whose release's commit cannot be had (gone from the remote after a history rewrite,
 * the ops repo unregistered since the target was chosen) fails naming the release, its ops repo
 * and path, not just a sha: the operator picks another release by its id. Terminal stays
 * terminal; a transient failure (the remote down) is retried as it is.
 */
function releaseUnrenderable(input: SyncInput, pin: string, error: unknown): unknown {
  if (!input.release || !(error instanceof KeelsonError) || error.kind !== 'terminal') return error;
  const { historyId, manifestPath } = input.release;
  return new TerminalError(
    `Release ${historyId} (ops repo ${input.opsRepoId ?? 'none'}, path ${manifestPath ?? 'default'}, commit ${pin.slice(0, 12)}) cannot be rendered again: ${error.message}`,
    { code: error.code },
  );
}

export function createRolloutEffects(deps: RolloutEffectsDeps): Effects & TargetEffects {
  const { db, kube, source, renderer, log } = deps;
  const plans = deps.plans ?? createPlanCache();
  // A canary's revisions run through the deploy-target contract (src/targets/README.md).
  const target = createKubernetesTarget({ kube, log, ...(deps.failFastGraceMs === undefined ? {} : { failFastGraceMs: deps.failFastGraceMs }) });

  /**
   * The machine's inventory (plans by reference) as the target takes it: each revision's objects
   * from this process's plan cache, or rendered again from the revision's inputs (the stable
   * revision, a restored actor), so no rendered object ever enters a snapshot.
   */
  async function inventoryOf(input: TargetInput, signal: AbortSignal): Promise<Inventory> {
    const revisions: Inventory['revisions'] = [];
    for (const revision of input.revisions) {
      const objects = plans.get(revision.plan) ?? (await renderedAgain(revision.render, signal));
      revisions.push({ name: revision.name, plan: { namespace: input.namespace, objects: [...objects] } });
    }
    const split = input.split ? { split: { deploymentId: input.deploymentId, entries: input.split.map((e) => ({ ...e })) } } : {};
    return { deploymentId: input.deploymentId, revisions, ...split };
  }

  // A revision the actor holds no plan for (the stable one always; any after a restore) is
  // rendered from its inputs, which pin the commit: the same inputs render the same objects. A
  // canary calls the target at every step, so the rendering is kept in the plan cache by its
  // inputs rather than repeated (the git tree and the render process) each time.
  const renderedByInputs = new Map<string, PlanHandle>();
  async function renderedAgain(render: RenderInput, signal: AbortSignal): Promise<readonly KubeObject[]> {
    const key = JSON.stringify(render);
    const kept = plans.get(renderedByInputs.get(key) ?? null);
    if (kept) return kept;
    const { objects } = await renderChecked(render, signal);
    renderedByInputs.delete(key);
    renderedByInputs.set(key, plans.put(objects));
    // the handles are what is bounded here; the plan cache bounds the objects
    for (const oldest of renderedByInputs.keys()) {
      if (renderedByInputs.size <= 256) break;
      renderedByInputs.delete(oldest);
    }
    return objects;
  }

  /**
   * What the end of a canary leaves of the deployment besides the revisions it names (the archive
   * that ends it, or the promotion's split or in-place removal when nothing is archived):
   * - revisions the cluster holds that the inventory no longer names: a canary cut short by a
   *   newer generation before its promotion, or the revision a replace deploy cut short was
   *   retiring. The split just enforced sends them nothing, so they are deleted; their objects are
   *   named as the newest revision's plan names them (`<name>-<revision>`);
   * - when the split gives one revision all traffic, the workload applied in place (the plan's
   *   Deployment as rendered, `<name>`), which the deployment's Service would still select: a
   *   failed replace deploy over a revision leaves it. Never otherwise — after a replace deploy's
   *   retire, or a first canary's abort, the release in place is what serves.
   * Both through prune: only what is still labelled for the deployment, and what is gone is skipped.
   */
  async function sweepLeftovers(input: TargetInput, inventory: Inventory, signal: AbortSignal): Promise<string[]> {
    const newest = inventory.revisions.at(-1);
    if (!newest) return [];
    const plan = parsePlan(newest.name, newest.plan);
    const known = new Set(inventory.revisions.map((r) => r.name));
    const observed = await target.observe(input.deploymentId, { signal });
    const orphans = [...new Set(observed.revisions.map((r) => r.revision))].filter((name) => name !== '' && !known.has(name));
    const swept: string[] = [];
    if (orphans.length > 0) {
      const refs = orphans.flatMap((name) => [workloadRef(plan, name), revisionServiceRef(plan, name)]);
      await kube.prune(input.deploymentId, refs, { signal });
      log.info({ deploymentId: input.deploymentId, revisions: orphans }, 'swept revisions left by actions cut short');
      swept.push(`swept ${orphans.join(', ')}`);
    }
    const alone = input.split?.length === 1 && input.split[0]?.weightBps === 10_000;
    if (alone) {
      const inPlace: ObjectRef = { ...DEPLOYMENT_KIND, name: plan.workload.metadata.name, namespace: plan.namespace };
      const removed = await kube.prune(input.deploymentId, [inPlace], { signal });
      if (removed.length > 0) {
        log.info({ deploymentId: input.deploymentId, removed: removed.map(describeRef) }, 'removed the workload left in place');
        swept.push(`removed ${removed.map(describeRef).join(', ')} in place`);
      }
    }
    return swept;
  }

  /**
   * A release applied in place over a revision (`strategy: replace` after a canary) has the
   * revision's objects in its previous inventory; they must keep serving until the new workload
   * is verified, then leave through drain and archive — never through this apply's prune.
   */
  async function withoutRevisions(refs: readonly ObjectRef[], signal: AbortSignal): Promise<ObjectRef[]> {
    const kept: ObjectRef[] = [];
    for (const ref of refs) {
      const revisionKind = (ref.apiVersion === DEPLOYMENT_KIND.apiVersion && ref.kind === DEPLOYMENT_KIND.kind) || (ref.apiVersion === SERVICE_KIND.apiVersion && ref.kind === SERVICE_KIND.kind);
      if (revisionKind && (await kube.get(ref, { signal }))?.metadata.labels?.[REVISION_LABEL] !== undefined) continue;
      kept.push(ref);
    }
    return kept;
  }

  /** The objects of a revision serving alone, from its render inputs (src/targets/kubernetes/plan.ts). */
  async function servingRevision(deploymentId: string, revision: RevisionSource, signal: AbortSignal): Promise<KubeObject[]> {
    const objects = await renderedAgain(revision.render, signal);
    const plan = parsePlan(revision.name, { namespace: revision.render.desired.namespace, objects: [...objects] });
    const routed = plan.route !== undefined && (await kube.serves(HTTPROUTE_KIND.apiVersion, HTTPROUTE_KIND.kind, { signal }));
    return servingObjects(plan, revision.name, deploymentId, routed);
  }

  const describeSplit = (input: TargetInput) => (input.split ?? []).map((e) => `${e.revision} ${e.weightBps / 100} %`).join(', ');
  const counted = (outcome: 'in_sync' | 'drifted' | 'detected' | 'ops_repo_moved' | 'not_comparable') => deps.metrics?.driftChecks.inc({ outcome });
  const inSync = (): DriftResult => {
    counted('in_sync');
    return { drifted: false, reason: null };
  };

  /**
   * The last `drift_detected` each release's checks read or wrote, by the actor's own release
   * object (DriftInput.deployed): a check that finds that release in sync again, its finding
   * known to be none, has nothing to read or write — a healthy fleet's checks cost the database
   * nothing. Keyed weakly by the object, so a release replaced, or an actor dropped and hosted
   * again (restored from its snapshot: a new object) reads the row afresh.
   */
  const lastFinding = new WeakMap<object, string | null>();

  /** The row's drift policy (migration 0011) and its last finding, read when a check needs them: not desired state. */
  async function driftPolicyOf(deploymentId: string): Promise<{ mode: DriftMode; detected: string | null }> {
    const row = await db.maybeOne(sql.type(z.object({ drift: z.enum(DRIFT_MODES), drift_detected: z.string().nullable() }))`
      select drift, drift_detected from deployments where id = ${deploymentId}`);
    return { mode: row?.drift ?? 'repair', detected: row?.drift_detected ?? null };
  }

  /**
   * Renders and checks the project policy: the objects apply may be given. `policy: false` for
   * the drift check, which applies nothing: what a repair applies is rendered and checked again by
   * its own render step, so a policy tightened since the deploy fails the repair, loudly.
   */
  async function renderChecked(input: RenderInput, signal: AbortSignal, { policy = true } = {}) {
    const { desired } = input;
    // Exactly the commit the sync step named (or the release's, for a rollback), from a
    // read-only tree of that commit: the checkout may have moved on since, and what is rendered,
    // recorded in history and shown as current_sha must be one commit.
    let sha = input.sha;
    if (desired.opsRepoId && !sha) {
      // only a snapshot from before sync named its commit gets here: take the head once
      sha = (await source.head(desired.opsRepoId, { signal })).sha;
    }
    const tree = desired.opsRepoId && sha ? await source.tree(desired.opsRepoId, sha, { signal }) : null;
    try {
      return await renderTree(input, tree, signal, policy);
    } finally {
      tree?.release();
    }
  }

  async function renderTree(input: RenderInput, tree: SourceTree | null, signal: AbortSignal, policy = true) {
    const { desired } = input;
    const result = await renderer.render({
      root: tree?.dir ?? null,
      // one render process may serve every commit of one ops repo (the same template author)
      ...(tree ? { processKey: `ops-repo:${tree.repoId}` } : {}),
      basePath: tree?.path ?? '',
      manifestPath: desired.manifestPath,
      imageRef: input.imageRef,
      project: desired.project,
      environment: desired.environment,
      namespace: desired.namespace,
      deploymentId: input.deploymentId,
      valuesOverride: desired.valuesOverride,
    }, { signal });
    // pipelines write rows by SQL: the project's policy is checked here, before anything is applied
    if (policy) await enforcePolicy(db, {
      project: desired.project,
      namespace: desired.namespace,
      opsRepo: tree?.name ?? null,
      manifestPath: desired.manifestPath,
      objects: result.objects,
    });
    return result;
  }

  /** `keelson deployment <id>` → `keelson deployment shop/prod (<id>)`: who to talk to, not just a uuid. */
  async function nameOwners(message: string): Promise<string> {
    const ids = [...new Set([...message.matchAll(/keelson deployment ([0-9a-f-]{36})\b(?! \()/g)].map((m) => m[1] as string))];
    if (ids.length === 0) return message;
    try {
      const rows = await db.any(sql.type(z.object({ id: z.string(), name: z.string() }))`
        select id::text, project || '/' || environment as name from deployments where id = any(${sql.array(ids, 'uuid')})`);
      let out = message;
      for (const row of rows) out = out.split(`keelson deployment ${row.id}`).join(`keelson deployment ${row.name} (${row.id})`);
      return out;
    } catch {
      return message; // the ids alone still say it
    }
  }

  return {
    async sync(input, signal) {
      if (!input.opsRepoId) return { sha: null, head: null };
      const pin = input.pin ?? null;
      if (pin === null) {
        const head = await source.head(input.opsRepoId, { force: input.force, signal });
        return { sha: head.sha, head: head.sha };
      }
      // A rollback renders its release's commit: make sure it is there (fetched if this clone
      // lacks it) before rendering. The head is only for the drift check: a remote that is down
      // must not stop a rollback, which needs nothing new from it.
      const tree = await source.tree(input.opsRepoId, pin, { signal }).catch((error: unknown) => {
        throw releaseUnrenderable(input, pin, error);
      });
      tree.release();
      const head = await source.head(input.opsRepoId, { signal }).then(
        (h) => h.sha,
        (error: unknown) => {
          if (signal.aborted) throw error;
          log.warn({ deploymentId: input.deploymentId, err: error instanceof Error ? error.message : String(error) }, 'rolling back without knowing the ops repo head');
          return null;
        },
      );
      return { sha: pin, head };
    },

    async render(input, signal) {
      const result = await renderChecked(input, signal);
      const keelsonValues = result.values.keelson as { prune?: unknown } | undefined;
      // checked before the plan is kept: a mistyped strategy fails the action naming the field
      const strategy = strategyOf(result.values);
      return {
        strategy,
        plan: plans.put(result.objects),
        files: result.files,
        prune: keelsonValues?.prune === true,
        // the release records these: a hash to compare by, a copy without secrets to read
        values: { hash: valuesHash(result.values), redacted: redactValues(result.values, secretValues(result.objects)) },
      };
    },

    async apply(input, signal) {
      let objects = plans.get(input.plan);
      if (!objects) {
        // Not in this process (restored after a crash, taken over, evicted, or a snapshot from
        // before plans): render again from the same inputs, policy check included.
        objects = (await renderChecked(input.render, signal)).objects;
        const hash = planHash(objects);
        if (input.plan && hash !== input.plan.hash) {
          log.info({ deploymentId: input.deploymentId, planned: input.plan.hash.slice(0, 12), rendered: hash.slice(0, 12) }, 'plan rendered again differs (the ops repo checkout moved); applying the new render');
        } else {
          log.debug({ deploymentId: input.deploymentId }, 'plan rendered again');
        }
      }
      let result;
      try {
        // Adoption needs the manifest's keelson.dev/adopt annotation; the render step's policy check
        // already refused that annotation where the project's policy does not allow adoption.
        result = await kube.apply([...objects] as KubeObject[], {
          namespace: input.namespace,
          deploymentId: input.deploymentId,
          signal,
          allowAdopt: true,
        });
      } catch (error) {
        // An API server refusing an object may quote it: the message becomes a last_error.
        if (error instanceof Error) error.message = scrubText(error.message, secretValues(objects));
        if (error instanceof KeelsonError && error.code === 'owned_by_other') error.message = await nameOwners(error.message);
        if (error instanceof KeelsonError) delete (error as { cause?: unknown }).cause;
        throw error;
      }
      const { inventory, changes } = result;
      const changed = changes.filter((c) => c.action !== 'unchanged').map((c) => `${c.action} ${describeRef(c.ref)}`);
      if (changed.length > 0) log.info({ deploymentId: input.deploymentId, changed }, 'applied changes');
      // A changed namespace moves the deployment: what it left behind in the old one is pruned
      // (previous − new) even without keelson.prune, or it would run twice.
      const moved = input.previousNamespace != null && input.previousNamespace !== input.namespace;
      if (input.prune || moved) {
        const pruned = await kube.prune(input.deploymentId, await withoutRevisions(staleRefs(input.previous, inventory), signal), { signal });
        if (pruned.length > 0) log.info({ deploymentId: input.deploymentId, pruned: pruned.map(describeRef) }, 'pruned objects no longer rendered');
      }
      // done with (a failed prune retries the apply, which then takes the plan from here again)
      plans.delete(input.plan);
      return { applied: inventory };
    },

    async verify(input, signal) {
      return await kube.verify([...input.applied], { signal, failFastGraceMs: deps.failFastGraceMs });
    },

    async scale(input, signal) {
      // The workloads labelled for the deployment, in any namespace, from the cluster cache: a
      // superset of the last release's inventory that also holds what an interrupted apply created.
      const workloads = await kube.labelledRefs(input.deploymentId, WORKLOAD_KINDS, { signal });
      const { scaled, unscalable, images } = await kube.scaleToZero(input.deploymentId, workloads, { signal });
      const note = unscalable.length > 0 ? `; cannot scale ${unscalable.map((r) => `${r.kind} ${r.name}`).join(', ')} (delete them to stop them)` : '';
      return { message: `scaled ${scaled.length} workload(s) to 0${note}`, images };
    },

    async teardown(input, signal) {
      // The machine's inventory (last release, interrupted action) ∪ what the cluster holds
      // labelled for the deployment of those kinds and of the workload kinds: a crash between an
      // apply's writes and its journal entry leaves objects only the labels know of.
      const kinds = [...new Map([...WORKLOAD_KINDS, ...input.inventory].map((k) => [`${k.apiVersion} ${k.kind}`, { apiVersion: k.apiVersion, kind: k.kind }])).values()]
        .filter((k) => k.kind !== 'Namespace');
      const labelled = await kube.labelledRefs(input.deploymentId, kinds, { signal });
      // A planned ref without a namespace is either cluster-scoped or was put into the
      // deployment's namespace by apply: the labelled copy (with its namespace) replaces it.
      const namespaced = new Set(labelled.filter((r) => r.namespace).map((r) => `${r.apiVersion} ${r.kind} ${r.name}`));
      const inventory = input.inventory.filter((r) => r.namespace || !namespaced.has(`${r.apiVersion} ${r.kind} ${r.name}`));
      const result = await kube.teardown(input.deploymentId, [...inventory, ...labelled], { signal });
      const kept = result.kept.map((k) => `${describeRef(k.ref)}: ${k.reason}`);
      if (kept.length > 0) log.warn({ deploymentId: input.deploymentId, kept }, 'teardown left objects in place');
      return { message: `deleted ${result.deleted.length} object(s)${kept.length > 0 ? `; kept ${kept.join('; ')}` : ''}` };
    },

    async stage(input, signal) {
      const inventory = await inventoryOf(input, signal);
      const outcome = await target.stage(inventory, input.revision, { signal });
      const plan = parsePlan(input.revision, inventory.revisions.find((r) => r.name === input.revision)?.plan);
      // the release's inventory: the revision's objects and the deployment's Service and route,
      // which the splits write (a teardown finds every one of them)
      const route = plan.route ? [{ ...HTTPROUTE_KIND, name: plan.route.metadata.name, namespace: plan.namespace }] : [];
      return {
        message: `staged ${outcome.resources.join(', ')}`,
        refs: [workloadRef(plan, input.revision), revisionServiceRef(plan, input.revision), serviceRef(plan), ...route],
      };
    },

    async warm(input, signal) {
      const outcome = await target.warm(await inventoryOf(input, signal), input.revision, { signal });
      return { message: `${outcome.revision} ready at ${outcome.replicas} replica(s)` };
    },

    async split(input, signal) {
      const inventory = await inventoryOf(input, signal);
      await target.applySplit(inventory, { signal });
      const swept = input.sweep === true ? await sweepLeftovers(input, inventory, signal) : [];
      return { message: [`traffic ${describeSplit(input)}`, ...swept].join('; ') };
    },

    async checkRevision(input, signal) {
      const outcome = await target.verify(await inventoryOf(input, signal), input.revision, { signal });
      return { status: outcome.status, message: outcome.message };
    },

    async drain(input, signal) {
      await target.drain(await inventoryOf(input, signal), input.revision, { signal });
      return { message: `${input.revision} drained` };
    },

    async archive(input, signal) {
      const inventory = await inventoryOf(input, signal);
      await target.archive(inventory, input.revision, { signal });
      const swept = await sweepLeftovers(input, inventory, signal);
      return { message: [`${input.revision} archived`, ...swept].join('; ') };
    },

    async pruneInPlace(input, signal) {
      // only what still carries the deployment's label; what is gone is skipped
      const pruned = await kube.prune(input.deploymentId, input.refs, { signal });
      const message = pruned.length > 0 ? `deleted ${pruned.map(describeRef).join(', ')}` : 'nothing applied in place was left';
      // the canary's last step: what else it leaves (a revision a replace deploy cut short was retiring)
      const swept = input.canary ? await sweepLeftovers(input.canary, await inventoryOf(input.canary, signal), signal) : [];
      return { message: [message, ...swept].join('; ') };
    },

    async findRollbackTarget(input) {
      const choice = await chooseRollbackTarget(db, input.deploymentId, input.release ?? null);
      // an explicit release the row names that is not one (another deployment's, a failed one):
      // written by SQL past the API's check; retrying cannot help until the row changes
      if (choice.kind === 'refused') throw new TerminalError(choice.reason, { code: 'rollback_target_invalid' });
      if (choice.kind === 'none') return null;
      const target = choice.release;
      // where it was rendered from (migration 0013): null on older releases, which render from the row's
      const from = target.manifest_path === null ? null : { opsRepoId: target.ops_repo_id, manifestPath: target.manifest_path };
      if (from?.opsRepoId) {
        // History keeps no hold on ops repos: the release's may have been deleted since. Said
        // here, naming the release, rather than as "ops repo … is not registered" from sync.
        const registered = await db.exists(sql.unsafe`select 1 from ops_repos where id = ${from.opsRepoId}`);
        if (!registered) {
          throw new TerminalError(
            `Release ${target.history_id} was rendered from ops repo ${from.opsRepoId}, path ${from.manifestPath}, which is no longer registered: it cannot be rendered again. Register the ops repo again under that id, roll back to another release (rollback_to), or set desired_status back to active.`,
            { code: 'release_source_missing' },
          );
        }
      }
      return { imageRef: target.image_ref, sha: target.sha, historyId: target.history_id, valuesOverride: target.values_override, source: from };
    },

    /**
     * Level-based reconcile of a healthy deployment: has the ops repo moved (a new deploy), or do
     * the live objects differ from the current release (drift)?
     */
    async checkDrift(input, signal) {
      const { desired, deployed } = input;
      if (desired.opsRepoId) {
        // against the head seen when deployed, not the commit rendered: a rollback renders an
        // older commit on purpose and stays there until the branch moves on
        const seen = deployed.head === undefined ? deployed.sha : deployed.head;
        const head = await source.head(desired.opsRepoId, { signal });
        if (seen !== null && head.sha !== seen) {
          counted('ops_repo_moved');
          return { drifted: true, reason: `ops repo moved from ${seen.slice(0, 12)} to ${head.sha.slice(0, 12)}` };
        }
        // seen === null: a rollback that could not reach the remote; it stays until the next deploy
      }
      // The current release, rendered again: its commit, image and values. Until a rollback's
      // write-back reaches the row, the row's values may not be the release's: not comparable
      // yet, the next interval is.
      const release = { ...desired, imageRef: deployed.imageRef };
      if (specKey(release) !== deployed.spec) {
        counted('not_comparable');
        return { drifted: false, reason: null };
      }
      // Found in sync before, and no object of it has changed since (the cache's
      // resourceVersions): rendering it again would give the same objects, compared with
      // nothing. An actor holds its release as one object until it changes.
      if (!deployed.revision && lastFinding.get(deployed) === null && kube.inSyncSince(deployed, input.deploymentId)) return inSync();
      // A release that runs as a revision is compared as the target left it (`<name>-<revision>`
      // at full size, its Service, the deployment's Service and route sending it everything),
      // rendered from the revision's own inputs; a repair re-applies that revision.
      const objects = deployed.revision
        ? await servingRevision(input.deploymentId, deployed.revision, signal)
        : (await renderChecked({ deploymentId: input.deploymentId, desired: release, imageRef: deployed.imageRef, sha: deployed.sha }, signal, { policy: false })).objects;
      // Server-side-apply dry-run against the live objects (from the shared cache; an object whose
      // resourceVersion has not moved since keelson last compared it costs no request). Fields an
      // autoscaler wrote through `scale` are not drift.
      const drifted = await kube.diff([...objects] as KubeObject[], { namespace: desired.namespace, deploymentId: input.deploymentId, signal, ...(deployed.revision ? {} : { release: deployed }) });
      const reason = drifted.length > 0 ? describeDrift(drifted) : null;
      if (reason === null && lastFinding.get(deployed) === null) return inSync();
      const { mode, detected } = await driftPolicyOf(input.deploymentId);
      if (signal.aborted) throw signal.reason;
      // detect: the finding is the row's drift_detected, nothing is changed; repair: the history
      // row of the repair names it. The column is only written when it changes.
      const finding = mode === 'detect' ? reason : null;
      if (finding !== detected) {
        await db.query(sql.unsafe`
          update deployments set drift_detected = ${finding}
          where id = ${input.deploymentId} and drift_detected is distinct from ${finding}`);
      }
      lastFinding.set(deployed, finding);
      if (reason === null) return inSync();
      if (mode === 'detect') {
        counted('detected');
        log.warn({ deploymentId: input.deploymentId, drift: reason }, 'drift detected (drift: detect, not repaired)');
        return { drifted: false, reason: null };
      }
      counted('drifted');
      log.info({ deploymentId: input.deploymentId, drift: reason }, 'drift detected: re-applying the release');
      return { drifted: true, reason, pin: deployed.sha };
    },
  };
}
