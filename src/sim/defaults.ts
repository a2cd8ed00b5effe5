// Defaulting a real API server does on every write (pkg/apis/*/v1/defaults.go), so objects read
// back look like a real cluster's: the fields a client diffing live against desired must expect.
import { defaultCrd, isCrd } from './crd.ts';
import type { KObject } from './store.ts';

type Obj = Record<string, unknown>;

function obj(parent: Obj, key: string): Obj {
  const v = parent[key];
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Obj;
  const fresh: Obj = {};
  parent[key] = fresh;
  return fresh;
}

function setDefault(parent: Obj, key: string, value: unknown): void {
  if (parent[key] === undefined || parent[key] === null) parent[key] = value;
}

function defaultContainer(c: Obj): void {
  setDefault(c, 'terminationMessagePath', '/dev/termination-log');
  setDefault(c, 'terminationMessagePolicy', 'File');
  const image = typeof c.image === 'string' ? c.image : '';
  const lastSegment = image.split('/').pop() ?? '';
  const tagged = lastSegment.includes(':') || image.includes('@');
  setDefault(c, 'imagePullPolicy', !tagged || image.endsWith(':latest') ? 'Always' : 'IfNotPresent');
  setDefault(c, 'resources', {});
  if (Array.isArray(c.ports)) for (const p of c.ports as Obj[]) setDefault(p, 'protocol', 'TCP');
}

export function defaultPodSpec(spec: Obj): void {
  setDefault(spec, 'restartPolicy', 'Always');
  setDefault(spec, 'terminationGracePeriodSeconds', 30);
  setDefault(spec, 'dnsPolicy', 'ClusterFirst');
  setDefault(spec, 'securityContext', {});
  setDefault(spec, 'schedulerName', 'default-scheduler');
  for (const key of ['containers', 'initContainers']) {
    if (Array.isArray(spec[key])) for (const c of spec[key] as Obj[]) defaultContainer(c);
  }
}

function defaultTemplate(spec: Obj): void {
  defaultPodSpec(obj(obj(spec, 'template'), 'spec'));
}

export interface DefaultingContext {
  allocateClusterIP(): string;
  allocateNodePort(): number;
  previous?: KObject;
}

/** Fills in defaults in place. */
export function applyDefaults(o: KObject, ctx: DefaultingContext): void {
  const spec = o as unknown as Obj;
  if (isCrd(o)) return defaultCrd(o);
  switch (o.kind) {
    case 'Deployment': {
      const s = obj(spec, 'spec');
      setDefault(s, 'replicas', 1);
      const strategy = obj(s, 'strategy');
      setDefault(strategy, 'type', 'RollingUpdate');
      if (strategy.type === 'RollingUpdate') {
        const ru = obj(strategy, 'rollingUpdate');
        setDefault(ru, 'maxSurge', '25%');
        setDefault(ru, 'maxUnavailable', '25%');
      }
      setDefault(s, 'revisionHistoryLimit', 10);
      setDefault(s, 'progressDeadlineSeconds', 600);
      defaultTemplate(s);
      break;
    }
    case 'ReplicaSet': {
      const s = obj(spec, 'spec');
      setDefault(s, 'replicas', 1);
      defaultTemplate(s);
      break;
    }
    case 'StatefulSet': {
      const s = obj(spec, 'spec');
      setDefault(s, 'replicas', 1);
      setDefault(s, 'podManagementPolicy', 'OrderedReady');
      const strategy = obj(s, 'updateStrategy');
      setDefault(strategy, 'type', 'RollingUpdate');
      if (strategy.type === 'RollingUpdate') setDefault(obj(strategy, 'rollingUpdate'), 'partition', 0);
      setDefault(s, 'revisionHistoryLimit', 10);
      setDefault(s, 'persistentVolumeClaimRetentionPolicy', { whenDeleted: 'Retain', whenScaled: 'Retain' });
      defaultTemplate(s);
      break;
    }
    case 'DaemonSet': {
      const s = obj(spec, 'spec');
      const strategy = obj(s, 'updateStrategy');
      setDefault(strategy, 'type', 'RollingUpdate');
      if (strategy.type === 'RollingUpdate') {
        const ru = obj(strategy, 'rollingUpdate');
        setDefault(ru, 'maxUnavailable', 1);
        setDefault(ru, 'maxSurge', 0);
      }
      setDefault(s, 'revisionHistoryLimit', 10);
      defaultTemplate(s);
      break;
    }
    case 'Job': {
      const s = obj(spec, 'spec');
      setDefault(s, 'parallelism', 1);
      setDefault(s, 'completions', 1);
      setDefault(s, 'backoffLimit', 6);
      setDefault(s, 'completionMode', 'NonIndexed');
      setDefault(s, 'suspend', false);
      setDefault(s, 'podReplacementPolicy', 'TerminatingOrFailed');
      const uid = o.metadata.uid ?? '';
      if (!s.manualSelector) {
        setDefault(s, 'selector', { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } });
        const template = obj(s, 'template');
        const labels = obj(obj(template, 'metadata'), 'labels') as Record<string, string>;
        labels['batch.kubernetes.io/controller-uid'] ??= uid;
        labels['batch.kubernetes.io/job-name'] ??= o.metadata.name;
        labels['controller-uid'] ??= uid;
        labels['job-name'] ??= o.metadata.name;
      }
      defaultTemplate(s);
      break;
    }
    case 'Pod':
      defaultPodSpec(obj(spec, 'spec'));
      break;
    case 'Service': {
      const s = obj(spec, 'spec');
      setDefault(s, 'type', 'ClusterIP');
      setDefault(s, 'sessionAffinity', 'None');
      const prevSpec = (ctx.previous as unknown as Obj | undefined)?.spec as Obj | undefined;
      if (s.type !== 'ExternalName') {
        if (!s.clusterIP) s.clusterIP = (prevSpec?.clusterIP as string | undefined) ?? ctx.allocateClusterIP();
        setDefault(s, 'clusterIPs', [s.clusterIP]);
        setDefault(s, 'ipFamilies', ['IPv4']);
        setDefault(s, 'ipFamilyPolicy', 'SingleStack');
        setDefault(s, 'internalTrafficPolicy', 'Cluster');
      }
      const needsNodePort = s.type === 'NodePort' || s.type === 'LoadBalancer';
      if (needsNodePort) setDefault(s, 'externalTrafficPolicy', 'Cluster');
      const prevPorts = (prevSpec?.ports as Obj[] | undefined) ?? [];
      if (Array.isArray(s.ports)) {
        for (const p of s.ports as Obj[]) {
          setDefault(p, 'protocol', 'TCP');
          setDefault(p, 'targetPort', p.port);
          if (needsNodePort && !p.nodePort) {
            const old = prevPorts.find((q) => q.port === p.port && (q.protocol ?? 'TCP') === p.protocol);
            p.nodePort = (old?.nodePort as number | undefined) ?? ctx.allocateNodePort();
          }
        }
      }
      setDefault(spec, 'status', { loadBalancer: {} });
      break;
    }
    case 'Namespace': {
      const labels = (o.metadata.labels ??= {});
      labels['kubernetes.io/metadata.name'] = o.metadata.name;
      setDefault(obj(spec, 'spec'), 'finalizers', ['kubernetes']);
      setDefault(obj(spec, 'status'), 'phase', 'Active');
      break;
    }
    case 'RoleBinding':
    case 'ClusterRoleBinding': {
      // SetDefaults_*RoleBinding and SetDefaults_Subject: the role and users and groups live in
      // the RBAC group (service accounts stay in core, whose group is omitted).
      const ref = spec.roleRef;
      if (ref && typeof ref === 'object' && !(ref as Obj).apiGroup) (ref as Obj).apiGroup = 'rbac.authorization.k8s.io';
      if (Array.isArray(spec.subjects)) {
        for (const s of spec.subjects as Obj[]) {
          if (!s.apiGroup && (s.kind === 'User' || s.kind === 'Group')) s.apiGroup = 'rbac.authorization.k8s.io';
        }
      }
      break;
    }
    case 'Secret': {
      setDefault(spec, 'type', 'Opaque');
      if (spec.stringData && typeof spec.stringData === 'object') {
        const data = obj(spec, 'data');
        for (const [k, v] of Object.entries(spec.stringData as Record<string, string>)) data[k] = Buffer.from(String(v)).toString('base64');
        delete spec.stringData;
      }
      break;
    }
    case 'PersistentVolumeClaim': {
      const s = obj(spec, 'spec');
      setDefault(s, 'volumeMode', 'Filesystem');
      setDefault(obj(spec, 'status'), 'phase', 'Pending');
      break;
    }
    default:
      break;
  }
}
