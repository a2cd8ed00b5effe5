// StatefulSet (ordered pods `<name>-<i>`, PVCs from volumeClaimTemplates, rolling update from the
// highest ordinal), DaemonSet (one simulated node) and Job (pods until completions succeed,
// backoffLimit) controllers.
import { randomSuffix } from '../apiserver.ts';
import { clone } from '../ssa.ts';
import type { KObject } from '../store.ts';
import { availableAt } from './replicaset.ts';
import { controllerRef, omitZero, type NewObject, podIsActive, podIsAvailable, podIsReady, templateHash, type Any, type ControllerContext } from './context.ts';

const REVISION_LABEL = 'controller-revision-hash';

function podFromTemplate(owner: KObject, name: string, extraLabels: Record<string, string>): NewObject {
  const template = ((owner.spec as Any).template ?? {}) as Any;
  return {
    metadata: {
      name,
      namespace: owner.metadata.namespace,
      labels: { ...(template.metadata?.labels ?? {}), ...extraLabels },
      ...(template.metadata?.annotations ? { annotations: { ...template.metadata.annotations } } : {}),
      ownerReferences: [controllerRef(owner)],
    },
    spec: clone(template.spec ?? {}),
  };
}

export function syncStatefulSet(ctx: ControllerContext, sts: KObject): number | undefined {
  if (sts.metadata.deletionTimestamp) return undefined;
  const spec = sts.spec as Any;
  const name = sts.metadata.name;
  const ns = sts.metadata.namespace;
  const replicas: number = spec.replicas ?? 1;
  const updateRevision = `${name}-${templateHash(spec.template)}`;
  const ordered = spec.podManagementPolicy !== 'Parallel';
  const pods = ctx.owned('Pod', sts).filter((p) => !p.metadata.deletionTimestamp);
  const byOrdinal = new Map<number, KObject>();
  for (const p of pods) {
    const m = new RegExp(`^${name}-(\\d+)$`).exec(p.metadata.name);
    if (m) byOrdinal.set(Number(m[1]), p);
  }
  let acted = false;
  for (let i = 0; i < replicas && !acted; i++) {
    const pod = byOrdinal.get(i);
    if (!pod) {
      for (const tpl of (spec.volumeClaimTemplates ?? []) as Any[]) {
        const claim = `${tpl.metadata?.name}-${name}-${i}`;
        if (!ctx.get('PersistentVolumeClaim', ns, claim)) {
          ctx.create('PersistentVolumeClaim', { metadata: { name: claim, namespace: ns, labels: { ...(spec.selector?.matchLabels ?? {}) } }, spec: clone(tpl.spec ?? {}) });
        }
      }
      const created = ctx.create('Pod', podFromTemplate(sts, `${name}-${i}`, { [REVISION_LABEL]: updateRevision, 'statefulset.kubernetes.io/pod-name': `${name}-${i}`, 'apps.kubernetes.io/pod-index': String(i) }));
      if (created) byOrdinal.set(i, created);
      if (ordered) acted = true;
    } else if (ordered && !podIsReady(pod)) acted = true;
  }
  // Scale down, highest ordinal first, one at a time when ordered.
  const extra = [...byOrdinal.keys()].filter((i) => i >= replicas).sort((a, b) => b - a);
  for (const i of ordered ? extra.slice(0, 1) : extra) {
    ctx.delete(byOrdinal.get(i)!);
    byOrdinal.delete(i);
    acted = true;
  }
  // Rolling update: replace the highest-ordinal outdated pod once every pod is ready.
  const partition: number = spec.updateStrategy?.rollingUpdate?.partition ?? 0;
  const current = [...byOrdinal.entries()].filter(([i]) => i < replicas);
  if (!acted && spec.updateStrategy?.type !== 'OnDelete' && current.length === replicas && current.every(([, p]) => podIsReady(p))) {
    const outdated = current.filter(([i, p]) => i >= partition && p.metadata.labels?.[REVISION_LABEL] !== updateRevision).sort((a, b) => b[0] - a[0]);
    if (outdated[0]) {
      ctx.delete(outdated[0][1]);
      byOrdinal.delete(outdated[0][0]);
    }
  }
  const live = [...byOrdinal.values()];
  const prev = (sts.status ?? {}) as Any;
  const updated = live.filter((p) => p.metadata.labels?.[REVISION_LABEL] === updateRevision).length;
  const currentRevision = updated === replicas && live.length === replicas ? updateRevision : (prev.currentRevision ?? updateRevision);
  const now = ctx.now();
  ctx.updateStatus(
    sts,
    omitZero(
      {
        observedGeneration: sts.metadata.generation,
        replicas: live.length,
        readyReplicas: live.filter(podIsReady).length,
        currentReplicas: live.filter((p) => p.metadata.labels?.[REVISION_LABEL] === currentRevision).length,
        updatedReplicas: updated,
        currentRevision,
        updateRevision,
        collisionCount: 0,
        availableReplicas: live.filter((p) => podIsAvailable(p, spec.minReadySeconds ?? 0, now)).length,
      },
      ['replicas', 'availableReplicas', 'collisionCount'],
    ),
  );
  return availableAt(live, spec.minReadySeconds ?? 0, now);
}

export function syncDaemonSet(ctx: ControllerContext, ds: KObject): number | undefined {
  if (ds.metadata.deletionTimestamp) return undefined;
  const spec = ds.spec as Any;
  const hash = templateHash(spec.template);
  const pods = ctx.owned('Pod', ds).filter(podIsActive);
  const outdated = pods.filter((p) => p.metadata.labels?.[REVISION_LABEL] !== hash);
  const fresh = pods.filter((p) => p.metadata.labels?.[REVISION_LABEL] === hash);
  for (const p of outdated) ctx.delete(p);
  for (const p of fresh.slice(1)) ctx.delete(p);
  let pod = fresh[0];
  if (!pod) {
    pod = ctx.create('Pod', podFromTemplate(ds, `${ds.metadata.name}-${randomSuffix()}`, { [REVISION_LABEL]: hash, 'pod-template-generation': String(ds.metadata.generation ?? 1) }));
  }
  const ready = pod && podIsReady(pod) ? 1 : 0;
  const available = pod && podIsAvailable(pod, spec.minReadySeconds ?? 0, ctx.now()) ? 1 : 0;
  ctx.updateStatus(
    ds,
    omitZero(
      {
        currentNumberScheduled: pod ? 1 : 0,
        numberMisscheduled: 0,
        desiredNumberScheduled: 1,
        numberReady: ready,
        observedGeneration: ds.metadata.generation,
        updatedNumberScheduled: pod ? 1 : 0,
        numberAvailable: available,
        numberUnavailable: 1 - available,
      },
      ['currentNumberScheduled', 'numberMisscheduled', 'desiredNumberScheduled', 'numberReady'],
    ),
  );
  return pod ? availableAt([pod], spec.minReadySeconds ?? 0, ctx.now()) : undefined;
}

export function syncJob(ctx: ControllerContext, job: KObject): number | undefined {
  if (job.metadata.deletionTimestamp) return undefined;
  const spec = job.spec as Any;
  const prev = (job.status ?? {}) as Any;
  const conditions = clone((prev.conditions ?? []) as Any[]);
  const finished = conditions.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
  const pods = ctx.owned('Pod', job);
  const phase = (p: KObject) => (p.status as Any | undefined)?.phase;
  const succeeded = pods.filter((p) => phase(p) === 'Succeeded').length;
  const failed = pods.filter((p) => phase(p) === 'Failed').length;
  let active = pods.filter(podIsActive);
  const completions: number = spec.completions ?? 1;
  const now = ctx.timestamp();
  const status: Any = { ...prev, startTime: prev.startTime ?? now };
  if (!finished && !spec.suspend) {
    if (succeeded >= completions) {
      for (const p of active) ctx.delete(p);
      active = [];
      conditions.push({ type: 'SuccessCriteriaMet', status: 'True', lastProbeTime: now, lastTransitionTime: now, reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods' });
      conditions.push({ type: 'Complete', status: 'True', lastProbeTime: now, lastTransitionTime: now, reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods' });
      status.completionTime = now;
    } else if (failed > (spec.backoffLimit ?? 6)) {
      for (const p of active) ctx.delete(p);
      active = [];
      conditions.push({ type: 'FailureTarget', status: 'True', lastProbeTime: now, lastTransitionTime: now, reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' });
      conditions.push({ type: 'Failed', status: 'True', lastProbeTime: now, lastTransitionTime: now, reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' });
    } else {
      const want = Math.min(spec.parallelism ?? 1, completions - succeeded);
      for (let i = active.length; i < want; i++) {
        const created = ctx.create('Pod', podFromTemplate(job, `${job.metadata.name}-${randomSuffix()}`, {}));
        if (created) active.push(created);
      }
    }
  }
  status.active = active.length;
  status.ready = active.filter(podIsReady).length;
  status.succeeded = succeeded;
  status.failed = failed;
  status.terminating = 0;
  status.uncountedTerminatedPods = {};
  if (conditions.length) status.conditions = conditions;
  ctx.updateStatus(job, omitZero(status, ['ready', 'terminating']));
  return undefined;
}
