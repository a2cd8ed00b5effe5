// Deployment controller (pkg/controller/deployment): one ReplicaSet per pod template named
// `<deployment>-<pod-template-hash>`, revisions, RollingUpdate and Recreate, status counts and the
// Available/Progressing conditions including ProgressDeadlineExceeded.
import { resolveFenceposts, newReplicaSetReplicas, scaleDownOld } from '../rollout.ts';
import { clone, deepEqual } from '../ssa.ts';
import type { KObject } from '../store.ts';
import { controllerRef, EVENT_SOURCES, omitZero, templateHash, type Any, type ControllerContext } from './context.ts';
import { replicaSetsOf } from './replicaset.ts';

const REVISION = 'deployment.kubernetes.io/revision';
const HASH_LABEL = 'pod-template-hash';

function withoutHash(template: Any): Any {
  const t = clone(template);
  if (t?.metadata?.labels) delete t.metadata.labels[HASH_LABEL];
  if (t?.metadata?.labels && Object.keys(t.metadata.labels).length === 0) delete t.metadata.labels;
  return t;
}

const rsReplicas = (rs: KObject): number => ((rs.spec as Any).replicas as number | undefined) ?? 0;
const rsStatus = (rs: KObject): Any => (rs.status ?? {}) as Any;
const revisionOf = (rs: KObject): number => Number(rs.metadata.annotations?.[REVISION] ?? 0);

interface Condition {
  type: string;
  status: string;
  lastUpdateTime: string;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

function setCondition(conditions: Condition[], next: Condition): Condition[] {
  const existing = conditions.find((c) => c.type === next.type);
  if (existing && existing.status === next.status && existing.reason === next.reason) return conditions;
  if (existing && existing.status === next.status) next.lastTransitionTime = existing.lastTransitionTime;
  return [...conditions.filter((c) => c.type !== next.type), next];
}

/**
 * Syncs one Deployment; returns when its progress deadline passes if it is still progressing
 * (the only thing that changes its status without a change to it or its ReplicaSets).
 */
export function syncDeploymentObject(ctx: ControllerContext, d: KObject): number | undefined {
  if (d.metadata.deletionTimestamp) return undefined;
  try {
    return syncDeployment(ctx, d);
  } catch (error) {
    ctx.log.debug({ err: error, name: d.metadata.name }, 'simulated deployment sync failed');
    return undefined;
  }
}

function syncDeployment(ctx: ControllerContext, d: KObject): number | undefined {
  const spec = d.spec as Any;
  const replicas: number = spec.replicas ?? 1;
  const template = spec.template as Any;
  let rss = replicaSetsOf(ctx, d).sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') || a.metadata.name.localeCompare(b.metadata.name));
  let newRs = rss.find((rs) => deepEqual(withoutHash((rs.spec as Any).template), withoutHash(template)));
  const maxRevision = rss.reduce((m, rs) => Math.max(m, revisionOf(rs)), 0);
  const recreate = spec.strategy?.type === 'Recreate';
  const { surge, unavailable } = recreate ? { surge: 0, unavailable: 0 } : resolveFenceposts(spec.strategy?.rollingUpdate?.maxSurge, spec.strategy?.rollingUpdate?.maxUnavailable, replicas);
  let conditions = clone(((d.status as Any | undefined)?.conditions ?? []) as Condition[]);
  const now = ctx.timestamp();

  const oldRss = () => rss.filter((rs) => rs !== newRs);
  const scaleRs = (rs: KObject, to: number): KObject => {
    const from = rsReplicas(rs);
    const copy = clone(rs);
    (copy.spec as Any).replicas = to;
    copy.metadata.annotations = { ...copy.metadata.annotations, 'deployment.kubernetes.io/desired-replicas': String(replicas), 'deployment.kubernetes.io/max-replicas': String(replicas + surge) };
    const updated = ctx.update(copy);
    rss = rss.map((r) => (r.metadata.uid === updated.metadata.uid ? updated : r));
    if (newRs && newRs.metadata.uid === updated.metadata.uid) newRs = updated;
    if (from !== to) ctx.event(d, 'Normal', 'ScalingReplicaSet', `Scaled ${to > from ? 'up' : 'down'} replica set ${rs.metadata.name} from ${from} to ${to}`, EVENT_SOURCES.deployment);
    return updated;
  };

  if (!spec.paused) {
    // A template that matches an old ReplicaSet (a rollback) makes it the new one again.
    if (newRs && revisionOf(newRs) < maxRevision) {
      const copy = clone(newRs);
      copy.metadata.annotations = { ...copy.metadata.annotations, [REVISION]: String(maxRevision + 1) };
      newRs = ctx.update(copy);
      rss = rss.map((r) => (r.metadata.uid === newRs!.metadata.uid ? newRs! : r));
      conditions = setCondition(conditions, { type: 'Progressing', status: 'True', lastUpdateTime: now, lastTransitionTime: now, reason: 'FoundNewReplicaSet', message: `Found new replica set "${newRs.metadata.name}"` });
    }
    const oldActive = oldRss().filter((rs) => rsReplicas(rs) > 0);
    const oldPodsRunning = oldRss().some((rs) => (rsStatus(rs).replicas ?? 0) > 0);
    if (!newRs && (!recreate || (oldActive.length === 0 && !oldPodsRunning))) {
      const hash = templateHash(template);
      const rsTemplate = clone(template);
      rsTemplate.metadata = { ...rsTemplate.metadata, labels: { ...rsTemplate.metadata?.labels, [HASH_LABEL]: hash } };
      const initial = recreate ? replicas : newReplicaSetReplicas(replicas, surge, { replicas: 0, available: 0 }, rss.map((rs) => ({ replicas: rsReplicas(rs), available: rsStatus(rs).availableReplicas ?? 0 })));
      const selector = clone(spec.selector ?? {});
      selector.matchLabels = { ...selector.matchLabels, [HASH_LABEL]: hash };
      const created = ctx.create('ReplicaSet', {
        metadata: {
          name: `${d.metadata.name}-${hash}`,
          namespace: d.metadata.namespace,
          labels: { ...template.metadata?.labels, [HASH_LABEL]: hash },
          annotations: {
            'deployment.kubernetes.io/desired-replicas': String(replicas),
            'deployment.kubernetes.io/max-replicas': String(replicas + surge),
            [REVISION]: String(maxRevision + 1),
          },
          ownerReferences: [controllerRef(d)],
        },
        spec: { replicas: initial, minReadySeconds: spec.minReadySeconds ?? 0, selector, template: rsTemplate },
      });
      if (created) {
        ctx.event(d, 'Normal', 'ScalingReplicaSet', `Scaled up replica set ${created.metadata.name} from 0 to ${initial}`, EVENT_SOURCES.deployment);
        newRs = created;
        rss.push(created);
        conditions = setCondition(conditions, { type: 'Progressing', status: 'True', lastUpdateTime: now, lastTransitionTime: now, reason: 'NewReplicaSetCreated', message: `Created new replica set "${created.metadata.name}"` });
      }
    }
    if (recreate) {
      for (const rs of oldActive) scaleRs(rs, 0);
      if (newRs && !oldPodsRunning && rsReplicas(newRs) !== replicas) scaleRs(newRs, replicas);
    } else if (newRs) {
      const counts = (rs: KObject) => ({ replicas: rsReplicas(rs), available: rsStatus(rs).availableReplicas ?? 0 });
      const target = rsReplicas(newRs) > replicas ? replicas : newReplicaSetReplicas(replicas, surge, counts(newRs), rss.map(counts));
      if (target !== rsReplicas(newRs)) scaleRs(newRs, target);
      else {
        const old = oldRss().filter((rs) => rsReplicas(rs) > 0);
        const targets = scaleDownOld(replicas, unavailable, counts(newRs), old.map(counts));
        old.forEach((rs, i) => {
          if (targets[i] !== rsReplicas(rs)) scaleRs(rs, targets[i]!);
        });
      }
    }
    // Revision history: the oldest fully scaled-down ReplicaSets beyond revisionHistoryLimit go.
    const limit: number = spec.revisionHistoryLimit ?? 10;
    const idle = oldRss().filter((rs) => rsReplicas(rs) === 0 && (rsStatus(rs).replicas ?? 0) === 0);
    if (idle.length > limit) {
      idle.sort((a, b) => revisionOf(a) - revisionOf(b));
      for (const rs of idle.slice(0, idle.length - limit)) ctx.delete(rs);
    }
    if (newRs && d.metadata.annotations?.[REVISION] !== newRs.metadata.annotations?.[REVISION]) {
      const copy = clone(d);
      copy.metadata.annotations = { ...copy.metadata.annotations, [REVISION]: newRs.metadata.annotations?.[REVISION] ?? '1' };
      d = ctx.update(copy);
    }
  }

  // Status (calculateStatus) and conditions (syncRolloutStatus).
  const sum = (f: (rs: KObject) => number) => rss.reduce((n, rs) => n + f(rs), 0);
  const available = sum((rs) => rsStatus(rs).availableReplicas ?? 0);
  const total = sum(rsReplicas);
  const old = (d.status ?? {}) as Any;
  const next: Any = {
    observedGeneration: d.metadata.generation,
    replicas: sum((rs) => rsStatus(rs).replicas ?? 0),
    updatedReplicas: newRs ? (rsStatus(newRs).replicas ?? 0) : 0,
    readyReplicas: sum((rs) => rsStatus(rs).readyReplicas ?? 0),
    availableReplicas: available,
    unavailableReplicas: Math.max(0, total - available),
  };
  const minAvailable = replicas - (recreate ? 0 : unavailable);
  conditions = setCondition(
    conditions,
    available >= minAvailable
      ? { type: 'Available', status: 'True', lastUpdateTime: now, lastTransitionTime: now, reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' }
      : { type: 'Available', status: 'False', lastUpdateTime: now, lastTransitionTime: now, reason: 'MinimumReplicasUnavailable', message: 'Deployment does not have minimum availability.' },
  );
  const current = conditions.find((c) => c.type === 'Progressing');
  const complete = next.replicas === next.updatedReplicas && current?.reason === 'NewReplicaSetAvailable';
  const deadline: number | undefined = spec.progressDeadlineSeconds;
  const rsName = newRs?.metadata.name;
  if (deadline !== undefined && !complete && !spec.paused) {
    const oldOld = (old.replicas ?? 0) - (old.updatedReplicas ?? 0);
    const newOld = next.replicas - next.updatedReplicas;
    if (next.updatedReplicas === replicas && next.replicas === replicas && next.availableReplicas === replicas && next.observedGeneration >= (d.metadata.generation ?? 0)) {
      conditions = setCondition(conditions, {
        type: 'Progressing',
        status: 'True',
        lastUpdateTime: now,
        lastTransitionTime: now,
        reason: 'NewReplicaSetAvailable',
        message: rsName ? `ReplicaSet "${rsName}" has successfully progressed.` : `Deployment "${d.metadata.name}" has successfully progressed.`,
      });
    } else if (next.updatedReplicas > (old.updatedReplicas ?? 0) || newOld < oldOld || next.readyReplicas > (old.readyReplicas ?? 0) || next.availableReplicas > (old.availableReplicas ?? 0)) {
      const cond: Condition = {
        type: 'Progressing',
        status: 'True',
        lastUpdateTime: now,
        lastTransitionTime: current?.status === 'True' ? current.lastTransitionTime : now,
        reason: 'ReplicaSetUpdated',
        message: rsName ? `ReplicaSet "${rsName}" is progressing.` : `Deployment "${d.metadata.name}" is progressing.`,
      };
      conditions = [...conditions.filter((c) => c.type !== 'Progressing'), cond];
    } else if (current && current.reason !== 'NewReplicaSetAvailable' && current.reason !== 'ProgressDeadlineExceeded') {
      const since = Date.parse(current.lastUpdateTime);
      if (since + deadline * 1000 < ctx.now()) {
        conditions = setCondition(conditions, {
          type: 'Progressing',
          status: 'False',
          lastUpdateTime: now,
          lastTransitionTime: now,
          reason: 'ProgressDeadlineExceeded',
          message: rsName ? `ReplicaSet "${rsName}" has timed out progressing.` : `Deployment "${d.metadata.name}" has timed out progressing.`,
        });
      }
    }
  }
  // Keep the real controller's order: Available first, then Progressing.
  conditions.sort((a, b) => (a.type === b.type ? 0 : a.type === 'Available' ? -1 : b.type === 'Available' ? 1 : 0));
  const status = omitZero({ ...next, conditions, ...(old.collisionCount ? { collisionCount: old.collisionCount } : {}) });
  const latest = ctx.get('Deployment', d.metadata.namespace, d.metadata.name);
  if (latest) ctx.updateStatus(latest, status);
  const progressing = conditions.find((c) => c.type === 'Progressing');
  if (deadline === undefined || spec.paused || !progressing || progressing.reason === 'NewReplicaSetAvailable' || progressing.reason === 'ProgressDeadlineExceeded') return undefined;
  // the check above is "deadline < now" on a second-precision timestamp: one ms past it
  const since = Date.parse(progressing.lastUpdateTime);
  return Number.isNaN(since) ? undefined : since + deadline * 1000 + 1;
}
