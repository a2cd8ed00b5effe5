// Discovery documents: legacy (APIVersions, APIGroupList, APIResourceList) and aggregated
// (apidiscovery.k8s.io/v2 APIGroupDiscoveryList, which kubectl 1.32 asks for first).
import { groupVersions, RESOURCE_TYPES, SUBRESOURCES, type GroupVersion, type ResourceType, type Subresource } from './resources.ts';

export const AGGREGATED_CONTENT_TYPE = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';

export function wantsAggregated(accept: string | undefined): boolean {
  return !!accept && /as=APIGroupDiscoveryList/.test(accept) && /g=apidiscovery\.k8s\.io/.test(accept) && /v=v2(?![a-z0-9])/.test(accept);
}

function subresourceKind(type: ResourceType, sub: Subresource): { group: string; version: string; kind: string } {
  const own = SUBRESOURCES[sub];
  return own.kind ? { group: own.group ?? '', version: own.version ?? 'v1', kind: own.kind } : { group: type.group, version: type.version, kind: type.kind };
}

export function apiVersions(address: string): Record<string, unknown> {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: address }] };
}

/**
 * Kubernetes' version priority (apimachinery's version.CompareKubeAwareVersionStrings): GA before
 * beta before alpha, higher numbers first, anything else last by name. A group's preferred
 * version is the first; only CRDs serve a group in several versions.
 */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string): [number, number, number] | undefined => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return undefined;
    return [m[2] === undefined ? 2 : m[2] === 'beta' ? 1 : 0, Number(m[1]), Number(m[3] ?? 0)];
  };
  const pa = parse(a);
  const pb = parse(b);
  if (!pa || !pb) return pa ? -1 : pb ? 1 : a.localeCompare(b);
  return pb[0] - pa[0] || pb[1] - pa[1] || pb[2] - pa[2];
}

/** Named groups in discovery order, each with its versions, preferred first. */
function groups(types: readonly ResourceType[]): { name: string; versions: GroupVersion[] }[] {
  const out: { name: string; versions: GroupVersion[] }[] = [];
  for (const gv of groupVersions(types)) {
    const entry = out.find((g) => g.name === gv.group);
    if (entry) entry.versions.push(gv);
    else out.push({ name: gv.group, versions: [gv] });
  }
  for (const g of out) g.versions.sort((a, b) => compareVersions(a.version, b.version));
  return out;
}

function groupDoc(g: { name: string; versions: GroupVersion[] }): Record<string, unknown> {
  const versions = g.versions.map((gv) => ({ groupVersion: `${gv.group}/${gv.version}`, version: gv.version }));
  return { name: g.name, versions, preferredVersion: versions[0] };
}

export function apiGroupList(types: readonly ResourceType[] = RESOURCE_TYPES): Record<string, unknown> {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups(types).filter((g) => g.name !== '').map(groupDoc) };
}

export function apiGroup(group: string, types: readonly ResourceType[] = RESOURCE_TYPES): Record<string, unknown> | undefined {
  const g = groups(types).find((e) => e.name === group && group !== '');
  if (!g) return undefined;
  return { kind: 'APIGroup', apiVersion: 'v1', ...groupDoc(g) };
}

export function apiResourceList(group: string, version: string, types: readonly ResourceType[] = RESOURCE_TYPES): Record<string, unknown> | undefined {
  const gv = groupVersions(types).find((g) => g.group === group && g.version === version);
  if (!gv) return undefined;
  const resources: Record<string, unknown>[] = [];
  for (const t of gv.types) {
    resources.push({
      name: t.plural,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: [...t.verbs],
      ...(t.shortNames.length ? { shortNames: t.shortNames } : {}),
      ...(t.categories.length ? { categories: t.categories } : {}),
    });
    for (const sub of t.subresources) {
      const rk = subresourceKind(t, sub);
      resources.push({
        name: `${t.plural}/${sub}`,
        singularName: '',
        namespaced: t.namespaced,
        ...(SUBRESOURCES[sub].kind ? { group: rk.group, version: rk.version } : {}),
        kind: rk.kind,
        verbs: [...SUBRESOURCES[sub].verbs],
      });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources };
}

/** Aggregated discovery for `/api` (core) or `/apis` (every named group). */
export function aggregated(core: boolean, types: readonly ResourceType[] = RESOURCE_TYPES): Record<string, unknown> {
  const items = groups(types)
    .filter((g) => (g.name === '') === core)
    .map((g) => ({
      metadata: { name: g.name, creationTimestamp: null },
      versions: g.versions.map((gv) => ({
        version: gv.version,
        freshness: 'Current',
        resources: gv.types.map((t) => ({
          resource: t.plural,
          responseKind: { group: t.group, version: t.version, kind: t.kind },
          scope: t.namespaced ? 'Namespaced' : 'Cluster',
          singularResource: t.singular,
          verbs: [...t.verbs],
          ...(t.shortNames.length ? { shortNames: t.shortNames } : {}),
          ...(t.categories.length ? { categories: t.categories } : {}),
          ...(t.subresources.length
            ? { subresources: t.subresources.map((sub) => ({ subresource: sub, responseKind: subresourceKind(t, sub), verbs: [...SUBRESOURCES[sub].verbs] })) }
            : {}),
        })),
      })),
    }));
  return { kind: 'APIGroupDiscoveryList', apiVersion: 'apidiscovery.k8s.io/v2', metadata: {}, items };
}
