// The Kubernetes deploy target: revisions as workloads of their own, traffic split by Gateway API
// HTTPRoute weights when the cluster serves HTTPRoute and the plan has one, else by replica ratio
// behind the deployment's one Service. Built on the kube client (its cache, fence, rate limit and
// ownership rules); every verb runs its pure precondition first, then the provider steps, each
// wrapped so a failure names the step's request and the API server's answer.
//
// Where the split is recorded: an annotation on the deployment's Service
// (`keelson.dev/traffic-split`), written after the split is enforced, in both modes. The Service
// is the one object every split has; the annotation holds the exact basis points, which replica
// counts cannot express (3 replicas cannot make 10 %); and it is labelled for its deployment, so
// another deployment's split never touches it. The enforced split is read back separately (the
// route's weights, or the replica counts), so `observe` shows both and a difference is visible.
import type { KubeClient } from '../../kube/kubeClient.ts';
import { assessHealth } from '../../kube/health.ts';
import { httpStatus, isAbortError, ROLLOUT_FAILED, statusBody } from '../../kube/kubeErrors.ts';
import { describeRef, refOf, type KubeObject, type ObjectRef } from '../../kube/types.ts';
import type { Logger } from '../../logger.ts';
import {
  trafficSplitSchema,
  type DeployTarget,
  type ObservedRevision,
  type ObservedSplit,
  type RevisionStatus,
  type TargetObservation,
  type TrafficSplit,
} from '../contract.ts';
import { InvalidPlan, kindOf, providerError, RevisionUnhealthy, type ProviderRequest } from '../errors.ts';
import { observeCall, retireCall, revisionCall, splitCall } from '../preconditions.ts';
import {
  DEPLOYMENT_KIND,
  HTTPROUTE_KIND,
  parsePlan,
  planReplicas,
  renderRevisionService,
  renderRoute,
  renderSharedService,
  renderWorkload,
  REVISION_LABEL,
  revisionServiceRef,
  SERVICE_KIND,
  servicePort,
  SPLIT_ANNOTATION,
  workloadRef,
  type ParsedPlan,
  type RouteBackend,
} from './plan.ts';
import { replicaCounts, routeWeights, splitFromAmounts } from './split.ts';

/** What the target needs of the kube client (tests wrap it to count provider calls). */
export type KubernetesTargetClient = Pick<KubeClient, 'apply' | 'prune' | 'scaleToZero' | 'verify' | 'get' | 'scaleTo' | 'serves' | 'labelledObjects'>;

export interface KubernetesTargetDeps {
  kube: KubernetesTargetClient;
  log: Logger;
  /** How long warm lets a new pod sit in a failing state before the revision is unhealthy; kube's default (10 s) unless set. */
  failFastGraceMs?: number;
}

function replicasOf(object: KubeObject | undefined): number {
  const replicas = (object?.spec as { replicas?: unknown } | undefined)?.replicas;
  return typeof replicas === 'number' ? replicas : 0;
}

function readyReplicasOf(object: KubeObject): number {
  const ready = (object.status as { readyReplicas?: unknown } | undefined)?.readyReplicas;
  return typeof ready === 'number' ? ready : 0;
}

/** Ready: Current and every wanted replica ready (0 of 0 for a staged revision). */
function statusOf(object: KubeObject): { status: RevisionStatus; message: string } {
  const health = assessHealth(object);
  if (health.status === 'Failed') return { status: 'failed', message: health.message };
  const ready = health.status === 'Current' && readyReplicasOf(object) >= replicasOf(object);
  return { status: ready ? 'ready' : 'progressing', message: health.message };
}

/** Anything a provider step threw, but an abort (the caller's, passed through), as a ProviderError naming it. */
function asProviderError(request: ProviderRequest, error: unknown): unknown {
  if (isAbortError(error)) return error;
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  const status = httpStatus(cause) ?? httpStatus(error);
  const message = statusBody(cause)?.message ?? (error instanceof Error ? error.message : String(error));
  const code = (error as { code?: unknown } | undefined)?.code;
  return providerError(kindOf(error), request, { ...(status === undefined ? {} : { status }), message }, { code: typeof code === 'string' ? code : 'provider_failed', cause: error });
}

/** Runs one provider step; what it throws becomes a ProviderError naming the step. */
async function provider<T>(request: ProviderRequest, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    throw asProviderError(request, error);
  }
}

export function createKubernetesTarget(deps: KubernetesTargetDeps): DeployTarget {
  const { kube, log } = deps;

  /** Whether splits can go through Gateway API: the cluster serves HTTPRoute (discovery, cached). */
  function routesServed(signal: AbortSignal): Promise<boolean> {
    return provider({ verb: 'discover', object: `${HTTPROUTE_KIND.kind} in ${HTTPROUTE_KIND.apiVersion}` }, () => kube.serves(HTTPROUTE_KIND.apiVersion, HTTPROUTE_KIND.kind, { signal }));
  }

  async function applyOne(object: KubeObject, plan: ParsedPlan, deploymentId: string, signal: AbortSignal): Promise<ObjectRef> {
    const ref = refOf({ ...object, metadata: { ...object.metadata, namespace: plan.namespace } });
    await provider({ verb: 'apply', object: describeRef(ref) }, () => kube.apply([object], { namespace: plan.namespace, deploymentId, signal }));
    return ref;
  }

  return {
    name: 'kubernetes',

    async stage(input, revision, { signal }) {
      const { inventory, revision: rev } = revisionCall(input, revision);
      const plan = parsePlan(rev.name, rev.plan);
      const ref = workloadRef(plan, rev.name);
      // Staging again (a re-run after a restore) keeps the size a later warm gave it.
      const live = await provider({ verb: 'get', object: describeRef(ref) }, () => kube.get(ref, { signal }));
      const replicas = live ? replicasOf(live) : 0;
      const resources: string[] = [];
      for (const object of [renderWorkload(plan, rev.name, replicas), renderRevisionService(plan, rev.name)]) {
        resources.push(describeRef(await applyOne(object, plan, inventory.deploymentId, signal)));
      }
      return { deploymentId: inventory.deploymentId, revision: rev.name, resources };
    },

    async warm(input, revision, { signal }) {
      const { inventory, revision: rev } = revisionCall(input, revision);
      const plan = parsePlan(rev.name, rev.plan);
      const ref = workloadRef(plan, rev.name);
      const replicas = planReplicas(plan);
      await provider({ verb: 'scale', object: describeRef(ref) }, () => kube.scaleTo(inventory.deploymentId, ref, replicas, { signal }));
      try {
        // No timeout of its own, as kube.verify: the caller aborts through the signal.
        await kube.verify([ref], { signal, ...(deps.failFastGraceMs === undefined ? {} : { failFastGraceMs: deps.failFastGraceMs }) });
      } catch (error) {
        if ((error as { code?: unknown }).code === ROLLOUT_FAILED) throw new RevisionUnhealthy(rev.name, (error as Error).message, error);
        throw asProviderError({ verb: 'wait for', object: describeRef(ref) }, error);
      }
      return { deploymentId: inventory.deploymentId, revision: rev.name, replicas };
    },

    async drain(input, revision, { signal }) {
      const { inventory, revision: rev } = retireCall(input, revision);
      const plan = parsePlan(rev.name, rev.plan);
      const ref = workloadRef(plan, rev.name);
      // The split the caller wants gives it no weight (the precondition), and the split applied
      // from it made its route weight 0 or dropped it. A route that still sends it traffic (no
      // split was recorded, or someone edited the route) gets its weight set to 0 first, so
      // scaling down never leaves the route pointing at a revision with nothing behind it.
      if (plan.route && (await routesServed(signal))) {
        const routeRef: ObjectRef = { ...HTTPROUTE_KIND, name: plan.route.metadata.name, namespace: plan.namespace };
        const live = await provider({ verb: 'get', object: describeRef(routeRef) }, () => kube.get(routeRef, { signal }));
        const backends = liveBackends(live);
        const own = revisionServiceRef(plan, rev.name).name;
        if (backends.some((b) => b.service === own && b.weight > 0)) {
          await applyOne(renderRoute(plan, backends.map((b) => (b.service === own ? { ...b, weight: 0 } : b))), plan, inventory.deploymentId, signal);
        }
      }
      await provider({ verb: 'scale', object: describeRef(ref) }, () => kube.scaleToZero(inventory.deploymentId, [ref], { signal }));
      return { deploymentId: inventory.deploymentId, revision: rev.name };
    },

    async archive(input, revision, { signal }) {
      const { inventory, revision: rev } = retireCall(input, revision);
      const plan = parsePlan(rev.name, rev.plan);
      const refs = [workloadRef(plan, rev.name), revisionServiceRef(plan, rev.name)];
      // prune deletes only what still carries the deployment's label, and skips what is gone.
      await provider({ verb: 'delete', object: refs.map(describeRef).join(', ') }, () => kube.prune(inventory.deploymentId, refs, { signal }));
      return { deploymentId: inventory.deploymentId, revision: rev.name };
    },

    async applySplit(input, { signal }) {
      const { inventory, split, revisions } = splitCall(input);
      const plans = revisions.map((r) => parsePlan(r.name, r.plan));
      // The route's parents and the deployment's Service come from the newest revision named.
      const newestIndex = inventory.revisions.reduce((found, r, i) => (split.entries.some((e) => e.revision === r.name) ? i : found), 0);
      const newest = parsePlan(inventory.revisions[newestIndex]?.name ?? '', inventory.revisions[newestIndex]?.plan);
      for (const [i, plan] of plans.entries()) {
        if (plan.namespace !== newest.namespace || plan.service.metadata.name !== newest.service.metadata.name) {
          throw new InvalidPlan(split.entries[i]?.revision ?? '', `its Service ${plan.namespace}/${plan.service.metadata.name} is not the deployment's ${newest.namespace}/${newest.service.metadata.name}`);
        }
      }
      const routed = newest.route !== undefined && (await routesServed(signal));
      if (routed) {
        const weights = routeWeights(split.entries);
        const backends = split.entries.map((entry, i) => ({ service: revisionServiceRef(newest, entry.revision).name, port: servicePort(plans[i] ?? newest), weight: weights[i] ?? 0 }));
        await applyOne(renderRoute(newest, backends), newest, inventory.deploymentId, signal);
      } else {
        const counts = replicaCounts(split.entries, planReplicas(newest));
        for (const [i, entry] of split.entries.entries()) {
          const ref = workloadRef(plans[i] ?? newest, entry.revision);
          await provider({ verb: 'scale', object: describeRef(ref) }, () => kube.scaleTo(inventory.deploymentId, ref, counts[i] ?? 0, { signal }));
        }
      }
      // Recorded once enforced: the record names the split in force.
      await applyOne(renderSharedService(newest, split), newest, inventory.deploymentId, signal);
      log.info({ deploymentId: inventory.deploymentId, mode: routed ? 'httproute' : 'replicas', entries: split.entries }, 'applied traffic split');
      return { deploymentId: split.deploymentId, entries: split.entries.map((entry) => ({ revision: entry.revision, weightBps: entry.weightBps })) };
    },

    async verify(input, revision, { signal }) {
      const { inventory, revision: rev } = revisionCall(input, revision);
      const plan = parsePlan(rev.name, rev.plan);
      const ref = workloadRef(plan, rev.name);
      const live = await provider({ verb: 'get', object: describeRef(ref) }, () => kube.get(ref, { signal }));
      const found = live ? statusOf(live) : { status: 'missing' as const, message: `${describeRef(ref)} does not exist.` };
      return { deploymentId: inventory.deploymentId, revision: rev.name, ...found };
    },

    async observe(input, { signal }) {
      const deploymentId = observeCall(input);
      const objects = await provider({ verb: 'list', object: `the objects of deployment ${deploymentId}` }, () =>
        kube.labelledObjects(deploymentId, [DEPLOYMENT_KIND, SERVICE_KIND, HTTPROUTE_KIND], { signal }),
      );
      return observation(deploymentId, objects);
    },
  };
}

type LiveRule = { backendRefs?: Array<{ name?: string; port?: number; weight?: number }> };

/** The backends of a live HTTPRoute's first rule (every rule keelson writes has the same). */
function liveBackends(route: KubeObject | undefined): RouteBackend[] {
  const rule = ((route?.spec as { rules?: LiveRule[] } | undefined)?.rules ?? [])[0];
  // Gateway API's default weight is 1.
  return (rule?.backendRefs ?? []).map((b) => ({ service: b.name ?? '', port: b.port, weight: typeof b.weight === 'number' ? b.weight : 1 }));
}

/** What the cluster holds for a deployment, as the contract reports it (pure). */
export function observation(deploymentId: string, objects: readonly KubeObject[]): TargetObservation {
  const is = (o: KubeObject, kind: { apiVersion: string; kind: string }) => o.apiVersion === kind.apiVersion && o.kind === kind.kind;
  const byName = (a: KubeObject, b: KubeObject) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`);
  const workloads = objects.filter((o) => is(o, DEPLOYMENT_KIND) && o.metadata.labels?.[REVISION_LABEL]).sort(byName);
  const revisions: ObservedRevision[] = workloads.map((o) => ({
    revision: o.metadata.labels?.[REVISION_LABEL] ?? '',
    replicas: replicasOf(o),
    readyReplicas: readyReplicasOf(o),
    status: statusOf(o).status,
  }));

  let recordedSplit: TrafficSplit | null = null;
  for (const service of objects.filter((o) => is(o, SERVICE_KIND)).sort(byName)) {
    const raw = service.metadata.annotations?.[SPLIT_ANNOTATION];
    if (raw === undefined) continue;
    try {
      const parsed = trafficSplitSchema.safeParse(JSON.parse(raw));
      if (parsed.success) recordedSplit = parsed.data;
    } catch {
      // An edited, unreadable annotation records nothing; the next split writes it again.
    }
    if (recordedSplit) break;
  }

  let enforcedSplit: ObservedSplit | null = null;
  const revisionOfService = new Map(
    objects.filter((o) => is(o, SERVICE_KIND) && o.metadata.labels?.[REVISION_LABEL]).map((o) => [`${o.metadata.namespace}/${o.metadata.name}`, o.metadata.labels?.[REVISION_LABEL] ?? ''] as const),
  );
  const route = objects.filter((o) => is(o, HTTPROUTE_KIND)).sort(byName)[0];
  const backends = liveBackends(route);
  if (route && backends.length > 0) {
    const amounts = backends.map((b) => ({ revision: revisionOfService.get(`${route.metadata.namespace}/${b.service}`) ?? `service:${b.service}`, amount: b.weight }));
    const entries = splitFromAmounts(amounts);
    if (entries) enforcedSplit = { mode: 'httproute', entries };
  } else {
    const entries = splitFromAmounts(revisions.filter((r) => r.replicas > 0).map((r) => ({ revision: r.revision, amount: r.replicas })));
    if (entries) enforcedSplit = { mode: 'replicas', entries };
  }
  return { deploymentId, revisions, recordedSplit, enforcedSplit };
}
