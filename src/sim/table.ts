// meta.k8s.io/v1 Table rendering for `kubectl get` (server-side printing): the columns the real
// printers in pkg/printers/internalversion/printers.go produce, priority-0 first.
import { humanDuration, parseTime } from './clock.ts';
import { toStored } from './conversion.ts';
import type { PrinterColumn, ResourceType } from './resources.ts';
import { formatRequirements, requirementsFromObject, type LabelSelectorObject } from './selectors.ts';
import type { KObject } from './store.ts';

interface Column {
  name: string;
  type: string;
  format?: string;
  priority?: number;
  cell: (o: KObject, now: number) => unknown;
}

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const spec = (o: KObject): Any => (o.spec ?? {}) as Any;
const status = (o: KObject): Any => (o.status ?? {}) as Any;
const age = (o: KObject, now: number): string => {
  const created = parseTime(o.metadata.creationTimestamp);
  return created === undefined ? '<unknown>' : humanDuration(now - created);
};
const since = (o: KObject, now: number, at: unknown): string => {
  const time = parseTime(typeof at === 'string' ? at : undefined) ?? parseTime(o.metadata.creationTimestamp);
  return time === undefined ? '<unknown>' : humanDuration(now - time);
};
const containers = (o: KObject): Any[] => (spec(o).template?.spec?.containers ?? []) as Any[];
const selectorString = (sel: LabelSelectorObject | undefined): string => (sel ? formatRequirements(requirementsFromObject(sel)) || '<none>' : '<none>');

const NAME: Column = { name: 'Name', type: 'string', format: 'name', cell: (o) => o.metadata.name };
const AGE: Column = { name: 'Age', type: 'string', cell: age };
const WIDE_CONTAINERS: Column[] = [
  { name: 'Containers', type: 'string', priority: 1, cell: (o) => containers(o).map((c) => c.name).join(',') },
  { name: 'Images', type: 'string', priority: 1, cell: (o) => containers(o).map((c) => c.image).join(',') },
  { name: 'Selector', type: 'string', priority: 1, cell: (o) => selectorString(spec(o).selector) },
];

function podStatusReason(o: KObject): { ready: string; reason: string; restarts: number } {
  const st = status(o);
  const cs = (st.containerStatuses ?? []) as Any[];
  const total = ((spec(o).containers ?? []) as Any[]).length;
  let reason: string = st.reason ?? st.phase ?? 'Unknown';
  let ready = 0;
  let restarts = 0;
  for (const c of cs) {
    restarts += c.restartCount ?? 0;
    if (c.ready) ready++;
    if (c.state?.waiting?.reason && c.state.waiting.reason !== '') reason = c.state.waiting.reason;
    else if (c.state?.terminated?.reason) reason = c.state.terminated.reason;
  }
  if (o.metadata.deletionTimestamp) reason = 'Terminating';
  return { ready: `${ready}/${total}`, reason, restarts };
}

// Roles print with the API server's default table (name and creation time); bindings name their
// role and, in -o wide, their subjects by kind (printRoleBinding in the upstream printers).
const CREATED_AT: Column = { name: 'Created At', type: 'date', cell: (o) => o.metadata.creationTimestamp ?? '' };
const subjects = (o: KObject, kind: string): string =>
  ((o.subjects ?? []) as Any[]).filter((s) => s.kind === kind).map((s) => (kind === 'ServiceAccount' ? `${s.namespace ?? ''}/${s.name}` : s.name)).join(', ');
const BINDING: Column[] = [
  NAME,
  { name: 'Role', type: 'string', cell: (o) => `${(o.roleRef as Any | undefined)?.kind ?? ''}/${(o.roleRef as Any | undefined)?.name ?? ''}` },
  AGE,
  { name: 'Users', type: 'string', priority: 1, cell: (o) => subjects(o, 'User') },
  { name: 'Groups', type: 'string', priority: 1, cell: (o) => subjects(o, 'Group') },
  { name: 'ServiceAccounts', type: 'string', priority: 1, cell: (o) => subjects(o, 'ServiceAccount') },
];

const COLUMNS: Record<string, Column[]> = {
  CustomResourceDefinition: [NAME, CREATED_AT],
  Role: [NAME, CREATED_AT],
  ClusterRole: [NAME, CREATED_AT],
  RoleBinding: BINDING,
  ClusterRoleBinding: BINDING,
  Deployment: [
    NAME,
    { name: 'Ready', type: 'string', cell: (o) => `${status(o).readyReplicas ?? 0}/${spec(o).replicas ?? 0}` },
    { name: 'Up-to-date', type: 'integer', cell: (o) => status(o).updatedReplicas ?? 0 },
    { name: 'Available', type: 'integer', cell: (o) => status(o).availableReplicas ?? 0 },
    AGE,
    ...WIDE_CONTAINERS,
  ],
  ReplicaSet: [
    NAME,
    { name: 'Desired', type: 'integer', cell: (o) => spec(o).replicas ?? 0 },
    { name: 'Current', type: 'integer', cell: (o) => status(o).replicas ?? 0 },
    { name: 'Ready', type: 'integer', cell: (o) => status(o).readyReplicas ?? 0 },
    AGE,
    ...WIDE_CONTAINERS,
  ],
  StatefulSet: [
    NAME,
    { name: 'Ready', type: 'string', cell: (o) => `${status(o).readyReplicas ?? 0}/${spec(o).replicas ?? 0}` },
    AGE,
    ...WIDE_CONTAINERS.slice(0, 2),
  ],
  DaemonSet: [
    NAME,
    { name: 'Desired', type: 'integer', cell: (o) => status(o).desiredNumberScheduled ?? 0 },
    { name: 'Current', type: 'integer', cell: (o) => status(o).currentNumberScheduled ?? 0 },
    { name: 'Ready', type: 'integer', cell: (o) => status(o).numberReady ?? 0 },
    { name: 'Up-to-date', type: 'integer', cell: (o) => status(o).updatedNumberScheduled ?? 0 },
    { name: 'Available', type: 'integer', cell: (o) => status(o).numberAvailable ?? 0 },
    {
      name: 'Node Selector',
      type: 'string',
      cell: (o) => Object.entries((spec(o).template?.spec?.nodeSelector ?? {}) as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(',') || '<none>',
    },
    AGE,
    ...WIDE_CONTAINERS,
  ],
  // pkg/printers/internalversion/printers.go printEvent
  Event: [
    { name: 'Last Seen', type: 'string', cell: (o, now) => since(o, now, (o as Any).lastTimestamp ?? (o as Any).eventTime) },
    { name: 'Type', type: 'string', cell: (o) => (o as Any).type ?? '' },
    { name: 'Reason', type: 'string', cell: (o) => (o as Any).reason ?? '' },
    { name: 'Object', type: 'string', cell: (o) => `${String((o as Any).involvedObject?.kind ?? '').toLowerCase()}/${(o as Any).involvedObject?.name ?? ''}` },
    { name: 'Subobject', type: 'string', priority: 1, cell: (o) => (o as Any).involvedObject?.fieldPath ?? '' },
    // formatEventSource: component (or reporting controller), then host (or reporting instance)
    {
      name: 'Source',
      type: 'string',
      priority: 1,
      cell: (o) => {
        const e = o as Any;
        const component: string = e.source?.component || e.reportingComponent || '';
        const instance: string = e.source?.host || e.reportingInstance || '';
        return instance ? `${component}, ${instance}` : component;
      },
    },
    { name: 'Message', type: 'string', cell: (o) => String((o as Any).message ?? '').trim() },
    { name: 'First Seen', type: 'string', priority: 1, cell: (o, now) => since(o, now, (o as Any).firstTimestamp ?? (o as Any).eventTime) },
    { name: 'Count', type: 'string', priority: 1, cell: (o) => String((o as Any).count ?? 1) },
    { name: 'Name', type: 'string', priority: 1, cell: (o) => o.metadata.name },
  ],
  Job: [
    NAME,
    {
      name: 'Status',
      type: 'string',
      cell: (o) => {
        const conds = (status(o).conditions ?? []) as Any[];
        if (conds.some((c) => c.type === 'Complete' && c.status === 'True')) return 'Complete';
        if (conds.some((c) => c.type === 'Failed' && c.status === 'True')) return 'Failed';
        return 'Running';
      },
    },
    { name: 'Completions', type: 'string', cell: (o) => `${status(o).succeeded ?? 0}/${spec(o).completions ?? 1}` },
    {
      name: 'Duration',
      type: 'string',
      cell: (o, now) => {
        const start = parseTime(status(o).startTime);
        if (start === undefined) return '';
        return humanDuration((parseTime(status(o).completionTime) ?? now) - start);
      },
    },
    AGE,
    ...WIDE_CONTAINERS,
  ],
  Pod: [
    NAME,
    { name: 'Ready', type: 'string', cell: (o) => podStatusReason(o).ready },
    { name: 'Status', type: 'string', cell: (o) => podStatusReason(o).reason },
    { name: 'Restarts', type: 'string', cell: (o) => String(podStatusReason(o).restarts) },
    AGE,
    { name: 'IP', type: 'string', priority: 1, cell: (o) => status(o).podIP ?? '<none>' },
    { name: 'Node', type: 'string', priority: 1, cell: (o) => spec(o).nodeName ?? '<none>' },
  ],
  Service: [
    NAME,
    { name: 'Type', type: 'string', cell: (o) => spec(o).type ?? 'ClusterIP' },
    { name: 'Cluster-IP', type: 'string', cell: (o) => spec(o).clusterIP ?? '<none>' },
    { name: 'External-IP', type: 'string', cell: (o) => (spec(o).type === 'LoadBalancer' ? '<pending>' : '<none>') },
    {
      name: 'Port(s)',
      type: 'string',
      cell: (o) => ((spec(o).ports ?? []) as Any[]).map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`).join(',') || '<none>',
    },
    AGE,
    { name: 'Selector', type: 'string', priority: 1, cell: (o) => Object.entries((spec(o).selector ?? {}) as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(',') || '<none>' },
  ],
  ConfigMap: [NAME, { name: 'Data', type: 'integer', cell: (o) => Object.keys((o.data ?? {}) as object).length + Object.keys((o.binaryData ?? {}) as object).length }, AGE],
  Secret: [NAME, { name: 'Type', type: 'string', cell: (o) => o.type ?? 'Opaque' }, { name: 'Data', type: 'integer', cell: (o) => Object.keys((o.data ?? {}) as object).length }, AGE],
  Namespace: [NAME, { name: 'Status', type: 'string', cell: (o) => status(o).phase ?? 'Active' }, AGE],
  ServiceAccount: [NAME, { name: 'Secrets', type: 'integer', cell: (o) => ((o.secrets ?? []) as unknown[]).length }, AGE],
  PersistentVolumeClaim: [
    NAME,
    { name: 'Status', type: 'string', cell: (o) => status(o).phase ?? 'Pending' },
    { name: 'Volume', type: 'string', cell: (o) => spec(o).volumeName ?? '' },
    { name: 'Capacity', type: 'string', cell: (o) => status(o).capacity?.storage ?? '' },
    { name: 'Access Modes', type: 'string', cell: (o) => ((status(o).accessModes ?? []) as string[]).map((m) => ({ ReadWriteOnce: 'RWO', ReadOnlyMany: 'ROX', ReadWriteMany: 'RWX', ReadWriteOncePod: 'RWOP' })[m] ?? m).join(',') },
    { name: 'StorageClass', type: 'string', cell: (o) => spec(o).storageClassName ?? '<unset>' },
    { name: 'VolumeAttributesClass', type: 'string', cell: () => '<unset>' },
    AGE,
  ],
  Ingress: [
    NAME,
    { name: 'Class', type: 'string', cell: (o) => spec(o).ingressClassName ?? '<none>' },
    { name: 'Hosts', type: 'string', cell: (o) => ((spec(o).rules ?? []) as Any[]).map((r) => r.host ?? '*').join(',') || '*' },
    { name: 'Address', type: 'string', cell: () => '' },
    { name: 'Ports', type: 'string', cell: (o) => (spec(o).tls ? '80, 443' : '80') },
    AGE,
  ],
  HorizontalPodAutoscaler: [
    NAME,
    { name: 'Reference', type: 'string', cell: (o) => `${spec(o).scaleTargetRef?.kind ?? ''}/${spec(o).scaleTargetRef?.name ?? ''}` },
    { name: 'Targets', type: 'string', cell: () => '<unknown>' },
    { name: 'MinPods', type: 'string', cell: (o) => String(spec(o).minReplicas ?? 1) },
    { name: 'MaxPods', type: 'string', cell: (o) => String(spec(o).maxReplicas ?? '') },
    { name: 'Replicas', type: 'string', cell: (o) => String(status(o).currentReplicas ?? 0) },
    AGE,
  ],
  PodDisruptionBudget: [
    NAME,
    { name: 'Min Available', type: 'string', cell: (o) => String(spec(o).minAvailable ?? 'N/A') },
    { name: 'Max Unavailable', type: 'string', cell: (o) => String(spec(o).maxUnavailable ?? 'N/A') },
    { name: 'Allowed Disruptions', type: 'integer', cell: (o) => status(o).disruptionsAllowed ?? 0 },
    AGE,
  ],
};

/**
 * The values a CRD printer column's JSONPath picks: `.a.b`, `.a[0].b`, `.a[*].b` (the forms CRDs
 * use; full JSONPath is not simulated).
 */
export function jsonPathValues(o: unknown, path: string): unknown[] {
  const steps = path.replace(/^\{?\.?/, '').replace(/\}$/, '').split(/\.|(?=\[)/).filter(Boolean);
  let current: unknown[] = [o];
  for (const step of steps) {
    const index = /^\[(\*|\d+)\]$/.exec(step);
    const next: unknown[] = [];
    for (const value of current) {
      if (index) {
        if (!Array.isArray(value)) continue;
        if (index[1] === '*') next.push(...value);
        else if (value[Number(index[1])] !== undefined) next.push(value[Number(index[1])]);
      } else if (typeof value === 'object' && value !== null && (value as Any)[step] !== undefined) next.push((value as Any)[step]);
    }
    current = next;
  }
  return current;
}

/** A CRD's additionalPrinterColumns, as the apiextensions server's table convertor fills them. */
function printerColumn(c: PrinterColumn): Column {
  return {
    name: c.name,
    type: c.type,
    format: c.format,
    priority: c.priority,
    cell: (o, now) => {
      const values = jsonPathValues(o, c.jsonPath);
      if (values.length === 0) return null;
      const first = values[0];
      if (first === null) return null;
      if (c.type === 'date' && typeof first === 'string') {
        const at = parseTime(first);
        return at === undefined ? first : humanDuration(now - at);
      }
      // Upstream prints the first result only; a list or map as JSON (HOSTNAMES ["a.example"]).
      return typeof first === 'object' ? JSON.stringify(first) : first;
    },
  };
}

function columnsOf(type: ResourceType): Column[] {
  if (type.crd) return type.printerColumns?.length ? [NAME, ...type.printerColumns.map(printerColumn)] : [NAME, AGE];
  return COLUMNS[type.kind] ?? [NAME, AGE];
}

export function toTable(type: ResourceType, objects: readonly KObject[], now: number, resourceVersion: string, extraMeta: Record<string, unknown> = {}, includeObject = 'Metadata'): Record<string, unknown> {
  const columns = columnsOf(type);
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion, ...extraMeta },
    columnDefinitions: columns.map((c) => ({ name: c.name, type: c.type, format: c.format ?? '', description: '', priority: c.priority ?? 0 })),
    rows: objects.map((o) => {
      // a view prints as its storage kind does (upstream prints the internal type, one for both)
      const printed = type.storage ? toStored(type, o) : o;
      return {
        cells: columns.map((c) => c.cell(printed, now)),
        object:
          includeObject === 'None'
            ? undefined
            : includeObject === 'Object'
              ? o
              : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: { ...o.metadata, managedFields: undefined } },
      };
    }),
  };
}
