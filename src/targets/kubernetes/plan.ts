// The Kubernetes target's plan of a revision, and the objects it derives from it — pure.
//
// A plan is what render produced for the revision, handed over as-is: the namespace and the
// objects `{ namespace, objects }`, exactly one apps/v1 Deployment (the workload), exactly one
// v1 Service (what clients address), and at most one gateway.networking.k8s.io/v1 HTTPRoute
// (where Gateway API routes from; its parents and hostnames are kept, its backends are the
// split's). The target derives from it:
// - the revision's workload `<deployment>-<revision>`: the Deployment renamed, labelled
//   `keelson.dev/revision: <revision>` on itself, its selector and its pod template;
// - the revision's Service `<service>-<revision>`: the Service selecting only that revision's
//   pods (an HTTPRoute backend);
// - the deployment's Service, unchanged but for the recorded split (an annotation): it selects
//   the pods of every revision, which is what splitting by replica ratio rests on;
// - the HTTPRoute with one backend per split entry, weighted.
import { z } from 'zod';
import type { KubeObject, ObjectRef } from '../../kube/types.ts';
import type { TrafficSplit } from '../contract.ts';
import { InvalidPlan } from '../errors.ts';

export const REVISION_LABEL = 'keelson.dev/revision';
/** On the deployment's Service: the split last enforced, `{ deploymentId, entries }` as JSON. */
export const SPLIT_ANNOTATION = 'keelson.dev/traffic-split';
export const HTTPROUTE_KIND = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute' } as const;
export const DEPLOYMENT_KIND = { apiVersion: 'apps/v1', kind: 'Deployment' } as const;
export const SERVICE_KIND = { apiVersion: 'v1', kind: 'Service' } as const;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

const kubeObjectSchema = z.looseObject({
  apiVersion: z.string().min(1),
  kind: z.string().min(1),
  metadata: z.looseObject({
    name: z.string().min(1),
    namespace: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
});

export const kubernetesPlanSchema = z.strictObject({
  namespace: z.string().regex(DNS_LABEL, 'must be a DNS label'),
  objects: z.array(kubeObjectSchema).min(2).max(3),
});

export type KubernetesPlan = z.infer<typeof kubernetesPlanSchema>;

export interface ParsedPlan {
  readonly namespace: string;
  readonly workload: KubeObject;
  readonly service: KubeObject;
  readonly route: KubeObject | undefined;
}

interface WorkloadSpec {
  replicas?: number;
  selector?: { matchLabels?: Record<string, string> };
  template?: { metadata?: { labels?: Record<string, string> } };
}

interface ServiceSpec {
  selector?: Record<string, string>;
  ports?: Array<{ port?: number }>;
}

function one(objects: readonly KubeObject[], kind: { apiVersion: string; kind: string }): KubeObject[] {
  return objects.filter((o) => o.apiVersion === kind.apiVersion && o.kind === kind.kind);
}

/** The plan checked purely (InvalidPlan naming what is wrong), before any provider call. */
export function parsePlan(revision: string, input: unknown): ParsedPlan {
  const parsed = kubernetesPlanSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidPlan(revision, `plan.${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid value'}`);
  }
  const { namespace } = parsed.data;
  const objects = parsed.data.objects as KubeObject[];
  const workloads = one(objects, DEPLOYMENT_KIND);
  const services = one(objects, SERVICE_KIND);
  const routes = one(objects, HTTPROUTE_KIND);
  if (workloads.length !== 1) throw new InvalidPlan(revision, `it must hold exactly one apps/v1 Deployment (it holds ${workloads.length})`);
  if (services.length !== 1) throw new InvalidPlan(revision, `it must hold exactly one v1 Service (it holds ${services.length})`);
  if (workloads.length + services.length + routes.length !== objects.length) {
    const other = objects.find((o) => !workloads.includes(o) && !services.includes(o) && !routes.includes(o));
    throw new InvalidPlan(revision, `it may hold a Deployment, a Service and an HTTPRoute only, not ${other?.apiVersion} ${other?.kind}`);
  }
  for (const object of objects) {
    if (object.metadata.namespace !== undefined && object.metadata.namespace !== namespace) {
      throw new InvalidPlan(revision, `${object.kind} ${object.metadata.name} names namespace ${object.metadata.namespace}, the plan ${namespace}`);
    }
  }
  const [workload] = workloads as [KubeObject];
  const [service] = services as [KubeObject];
  const spec = (workload.spec ?? {}) as WorkloadSpec;
  if (!spec.selector?.matchLabels || Object.keys(spec.selector.matchLabels).length === 0) {
    throw new InvalidPlan(revision, `Deployment ${workload.metadata.name} needs spec.selector.matchLabels`);
  }
  const serviceSpec = (service.spec ?? {}) as ServiceSpec;
  if (!serviceSpec.selector || Object.keys(serviceSpec.selector).length === 0) throw new InvalidPlan(revision, `Service ${service.metadata.name} needs spec.selector`);
  for (const name of [workload.metadata.name, service.metadata.name]) {
    if (!DNS_LABEL.test(`${name}-${revision}`)) throw new InvalidPlan(revision, `${name}-${revision} is no DNS label (at most 63 characters)`);
  }
  return { namespace, workload, service, route: routes[0] };
}

export function planReplicas(plan: ParsedPlan): number {
  const replicas = (plan.workload.spec as WorkloadSpec | undefined)?.replicas;
  return typeof replicas === 'number' && replicas >= 0 ? replicas : 1;
}

export function servicePort(plan: ParsedPlan): number | undefined {
  return ((plan.service.spec ?? {}) as ServiceSpec).ports?.[0]?.port;
}

export function workloadRef(plan: ParsedPlan, revision: string): ObjectRef {
  return { ...DEPLOYMENT_KIND, name: `${plan.workload.metadata.name}-${revision}`, namespace: plan.namespace };
}

export function revisionServiceRef(plan: ParsedPlan, revision: string): ObjectRef {
  return { ...SERVICE_KIND, name: `${plan.service.metadata.name}-${revision}`, namespace: plan.namespace };
}

export function serviceRef(plan: ParsedPlan): ObjectRef {
  return { ...SERVICE_KIND, name: plan.service.metadata.name, namespace: plan.namespace };
}

function withRevision(labels: Record<string, string> | undefined, revision: string): Record<string, string> {
  return { ...labels, [REVISION_LABEL]: revision };
}

/** The revision's workload at `replicas`. */
export function renderWorkload(plan: ParsedPlan, revision: string, replicas: number): KubeObject {
  const object = structuredClone(plan.workload);
  const spec = (object.spec ?? {}) as WorkloadSpec;
  object.metadata = { ...object.metadata, name: workloadRef(plan, revision).name, namespace: plan.namespace, labels: withRevision(object.metadata.labels, revision) };
  spec.replicas = replicas;
  spec.selector = { ...spec.selector, matchLabels: withRevision(spec.selector?.matchLabels, revision) };
  spec.template = { ...spec.template, metadata: { ...spec.template?.metadata, labels: withRevision(spec.template?.metadata?.labels, revision) } };
  object.spec = spec;
  return object;
}

/** The Service that reaches only this revision's pods. */
export function renderRevisionService(plan: ParsedPlan, revision: string): KubeObject {
  const object = structuredClone(plan.service);
  const spec = (object.spec ?? {}) as ServiceSpec & { clusterIP?: string; clusterIPs?: string[] };
  // A rendered Service may pin its address; a second Service cannot have the same one.
  delete spec.clusterIP;
  delete spec.clusterIPs;
  spec.selector = withRevision(spec.selector, revision);
  object.spec = spec;
  object.metadata = { ...object.metadata, name: revisionServiceRef(plan, revision).name, namespace: plan.namespace, labels: withRevision(object.metadata.labels, revision) };
  return object;
}

/** The deployment's Service as rendered, carrying the split it records. */
export function renderSharedService(plan: ParsedPlan, split: TrafficSplit): KubeObject {
  const object = structuredClone(plan.service);
  const record = JSON.stringify({ deploymentId: split.deploymentId, entries: split.entries });
  object.metadata = { ...object.metadata, namespace: plan.namespace, annotations: { ...object.metadata.annotations, [SPLIT_ANNOTATION]: record } };
  return object;
}

export interface RouteBackend {
  readonly service: string;
  readonly port: number | undefined;
  readonly weight: number;
}

/** The plan's HTTPRoute with every rule's backends replaced by the split's. */
export function renderRoute(plan: ParsedPlan, backends: readonly RouteBackend[]): KubeObject {
  if (!plan.route) throw new Error('renderRoute needs a plan with an HTTPRoute');
  const object = structuredClone(plan.route);
  const spec = (object.spec ?? {}) as { rules?: Array<Record<string, unknown>> };
  const backendRefs = backends.map((b) => ({ name: b.service, ...(b.port === undefined ? {} : { port: b.port }), weight: b.weight }));
  spec.rules = (spec.rules && spec.rules.length > 0 ? spec.rules : [{}]).map((rule) => ({ ...rule, backendRefs }));
  object.spec = spec;
  object.metadata = { ...object.metadata, namespace: plan.namespace };
  return object;
}

/**
 * What a revision that has all traffic consists of, as the target leaves it after a 100 % split:
 * its workload at the plan's replicas, its Service, the deployment's Service recording the split,
 * and (`routed`) the route sending everything to it. A drift check compares these with the live
 * objects, as it compares a release applied in place with its render.
 */
export function servingObjects(plan: ParsedPlan, revision: string, deploymentId: string, routed: boolean): KubeObject[] {
  const objects = [
    renderWorkload(plan, revision, planReplicas(plan)),
    renderRevisionService(plan, revision),
    renderSharedService(plan, { deploymentId, entries: [{ revision, weightBps: 10_000 }] }),
  ];
  // routeWeights of a single 100 % entry: 1
  if (routed && plan.route) objects.push(renderRoute(plan, [{ service: revisionServiceRef(plan, revision).name, port: servicePort(plan), weight: 1 }]));
  return objects;
}
