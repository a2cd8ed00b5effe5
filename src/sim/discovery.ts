// Discovery documents: legacy (APIVersions, APIGroupList, APIResourceList) and aggregated
// (apidiscovery.k8s.io/v2 APIGroupDiscoveryList, which kubectl 1.32 asks for first).
import { groupVersions, SUBRESOURCES, type ResourceType, type Subresource } from './resources.ts';

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

export function apiGroupList(): Record<string, unknown> {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: groupVersions()
      .filter((gv) => gv.group !== '')
      .map((gv) => {
        const v = { groupVersion: `${gv.group}/${gv.version}`, version: gv.version };
        return { name: gv.group, versions: [v], preferredVersion: v };
      }),
  };
}

export function apiGroup(group: string): Record<string, unknown> | undefined {
  const gv = groupVersions().find((g) => g.group === group && group !== '');
  if (!gv) return undefined;
  const v = { groupVersion: `${gv.group}/${gv.version}`, version: gv.version };
  return { kind: 'APIGroup', apiVersion: 'v1', name: group, versions: [v], preferredVersion: v };
}

export function apiResourceList(group: string, version: string): Record<string, unknown> | undefined {
  const gv = groupVersions().find((g) => g.group === group && g.version === version);
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
export function aggregated(core: boolean): Record<string, unknown> {
  const items = groupVersions()
    .filter((gv) => (gv.group === '') === core)
    .map((gv) => ({
      metadata: { name: gv.group, creationTimestamp: null },
      versions: [
        {
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
        },
      ],
    }));
  return { kind: 'APIGroupDiscoveryList', apiVersion: 'apidiscovery.k8s.io/v2', metadata: {}, items };
}
