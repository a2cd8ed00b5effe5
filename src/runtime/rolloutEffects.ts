// The real effects: git (opsrepo) → nunjucks (render) → server-side apply and watch (kube).
// Each is safe to re-run: a restored actor calls its in-flight effect again with the same input.
import type { KubeClient } from '../kube/kubeClient.ts';
import type { KubeObject, ObjectRef } from '../kube/types.ts';
import type { Db } from '../db/pool.ts';
import { findRollbackTarget } from '../db/queries/findRollbackTarget.ts';
import type { Logger } from '../logger.ts';
import type { OpsRepoManager } from '../opsrepo/opsRepoManager.ts';
import type { Renderer } from '../render/renderer.ts';
import type { Effects } from './effects.ts';

export interface RolloutEffectsDeps {
  readonly db: Db;
  readonly kube: KubeClient;
  readonly opsRepos: OpsRepoManager;
  readonly renderer: Renderer;
  readonly log: Logger;
  /** Fail-fast grace of verification (kube's DEFAULT_FAIL_FAST_GRACE_MS unless given); tests shorten it. */
  readonly failFastGraceMs?: number;
}

const sameRef = (a: ObjectRef, b: ObjectRef) =>
  a.kind === b.kind && a.name === b.name && (a.namespace ?? '') === (b.namespace ?? '') && a.apiVersion.split('/')[0] === b.apiVersion.split('/')[0];

export function createRolloutEffects(deps: RolloutEffectsDeps): Effects {
  const { db, kube, opsRepos, renderer, log } = deps;
  return {
    async sync(input, signal) {
      if (!input.opsRepoId) return { sha: null };
      const result = await opsRepos.sync(input.opsRepoId, { force: input.force, signal });
      return { sha: result.sha };
    },

    async render(input, signal) {
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
      const keelsonValues = result.values.keelson as { prune?: unknown } | undefined;
      return { objects: result.objects, files: result.files, prune: keelsonValues?.prune === true };
    },

    async apply(input, signal) {
      const applied = await kube.apply(input.objects as KubeObject[], { namespace: input.namespace, signal });
      if (input.prune) {
        const pruned = await kube.prune(input.deploymentId, input.namespace, applied, { signal });
        if (pruned.length > 0) log.info({ deploymentId: input.deploymentId, pruned: pruned.map((r) => `${r.kind}/${r.name}`) }, 'pruned objects no longer rendered');
      }
      return { applied };
    },

    async verify(input, signal) {
      return await kube.verify([...input.applied], { signal, failFastGraceMs: deps.failFastGraceMs });
    },

    async scale(input, signal) {
      const { scaled, unscalable } = await kube.scaleToZero(input.deploymentId, input.namespace, { signal });
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
      const live = await kube.liveStatus(input.deploymentId, desired.namespace);
      const missing = deployed.applied.filter((ref) => ref.kind !== 'Namespace' && !live.some((l) => sameRef(l, ref) && l.status !== 'NotFound'));
      if (missing.length > 0) {
        return { drifted: true, reason: `${missing.map((r) => `${r.kind} ${r.name}`).join(', ')} missing from the cluster` };
      }
      return { drifted: false, reason: null };
    },
  };
}
