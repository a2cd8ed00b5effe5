// The real effects: git (opsrepo) → nunjucks (render) → server-side apply and watch (kube).
// Each is safe to re-run: a restored actor calls its in-flight effect again with the same input.
// Rendered objects travel from render to apply through the plan cache (src/plans/), by handle:
// Secret data never enters the actor's context, hence never a snapshot or transition.
import { sql } from 'slonik';
import { z } from 'zod';
import type { RenderInput } from '../../machines/deployment.machine.ts';
import { WORKLOAD_KINDS, type KubeClient } from '../kube/kubeClient.ts';
import { staleRefs } from '../kube/inventory.ts';
import { describeRef, type KubeObject } from '../kube/types.ts';
import type { Db } from '../db/pool.ts';
import { findRollbackTarget } from '../db/queries/findRollbackTarget.ts';
import type { Logger } from '../logger.ts';
import type { OpsRepoManager } from '../opsrepo/opsRepoManager.ts';
import { KeelsonError } from '../errors.ts';
import { createPlanCache, planHash, type PlanCache } from '../plans/planCache.ts';
import { scrubText, secretValues } from '../plans/secrets.ts';
import type { Renderer } from '../render/renderer.ts';
import { enforcePolicy } from '../tenancy/enforcePolicy.ts';
import type { Effects } from './effects.ts';

export interface RolloutEffectsDeps {
  readonly db: Db;
  readonly kube: KubeClient;
  readonly opsRepos: OpsRepoManager;
  readonly renderer: Renderer;
  readonly log: Logger;
  /** Fail-fast grace of verification (kube's DEFAULT_FAIL_FAST_GRACE_MS unless given); tests shorten it. */
  readonly failFastGraceMs?: number;
  /** Rendered objects between render and apply; a bounded cache of this process by default. */
  readonly plans?: PlanCache;
}

export function createRolloutEffects(deps: RolloutEffectsDeps): Effects {
  const { db, kube, opsRepos, renderer, log } = deps;
  const plans = deps.plans ?? createPlanCache();

  /** Renders and checks the project policy: the objects apply may be given. */
  async function renderChecked(input: RenderInput, signal: AbortSignal) {
    const { desired } = input;
    // only the files are needed: the sync step fetched; a checkout is cloned only when this
    // host has none (the deployment was taken over from another process)
    const checkout = desired.opsRepoId ? await opsRepos.sync(desired.opsRepoId, { reuse: true, signal }) : null;
    if (checkout && input.sha && checkout.sha !== input.sha) {
      log.debug({ deploymentId: input.deploymentId, synced: input.sha, rendering: checkout.sha }, 'ops repo moved between sync and render');
    }
    const result = await renderer.render({
      root: checkout?.dir ?? null,
      basePath: checkout?.path ?? '',
      manifestPath: desired.manifestPath,
      imageRef: input.imageRef,
      project: desired.project,
      environment: desired.environment,
      namespace: desired.namespace,
      deploymentId: input.deploymentId,
      valuesOverride: desired.valuesOverride,
    }, { signal });
    // pipelines write rows by SQL: the project's policy is checked here, before anything is applied
    await enforcePolicy(db, {
      project: desired.project,
      namespace: desired.namespace,
      opsRepo: checkout?.name ?? null,
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
      if (!input.opsRepoId) return { sha: null };
      const result = await opsRepos.sync(input.opsRepoId, { force: input.force, signal });
      return { sha: result.sha };
    },

    async render(input, signal) {
      const result = await renderChecked(input, signal);
      const keelsonValues = result.values.keelson as { prune?: unknown } | undefined;
      return { plan: plans.put(result.objects), files: result.files, prune: keelsonValues?.prune === true };
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
      if (input.prune) {
        const pruned = await kube.prune(input.deploymentId, staleRefs(input.previous, inventory), { signal });
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
      // The input carries no inventory yet (issue #13): the workloads labelled for the deployment,
      // in any namespace, from the cluster cache.
      const workloads = await kube.labelledRefs(input.deploymentId, WORKLOAD_KINDS, { signal });
      const { scaled, unscalable } = await kube.scaleToZero(input.deploymentId, workloads, { signal });
      const note = unscalable.length > 0 ? `; cannot scale ${unscalable.map((r) => `${r.kind} ${r.name}`).join(', ')} (delete them to stop them)` : '';
      return { message: `scaled ${scaled.length} workload(s) to 0${note}` };
    },

    async findRollbackTarget(input) {
      const target = await findRollbackTarget(db, input.deploymentId);
      return target ? { imageRef: target.image_ref, sha: target.sha } : null;
    },

    /** Level-based reconcile of a healthy deployment: has the ops repo moved, or an object gone? */
    async checkDrift(input, signal) {
      const { desired, deployed } = input;
      if (desired.opsRepoId) {
        const result = await opsRepos.sync(desired.opsRepoId, { signal });
        if (result.sha !== deployed.sha) {
          return { drifted: true, reason: `ops repo moved from ${deployed.sha?.slice(0, 12) ?? 'nothing'} to ${result.sha.slice(0, 12)}` };
        }
      }
      // From the shared cluster cache: no request per deployment per interval.
      const live = await kube.observe(input.deploymentId, deployed.applied, { signal });
      const missing = live.objects.filter((o) => o.status === 'NotFound');
      if (missing.length > 0) {
        return { drifted: true, reason: `${missing.map((r) => `${r.kind} ${r.name}`).join(', ')} missing from the cluster` };
      }
      return { drifted: false, reason: null };
    },
  };
}
