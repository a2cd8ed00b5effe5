// OpenAPI v3 documents, enough for kubectl: `apply --server-side` with strict validation checks
// that the PATCH operation of the kind's path lists the `fieldValidation` query parameter (it
// then leaves validation to the server). Schemas are open objects carrying the GVK extension,
// except a custom kind's, which is its CRD's openAPIV3Schema (as a real server publishes it).
import { createHash } from 'node:crypto';
import { groupVersions, RESOURCE_TYPES, type ResourceType } from './resources.ts';

function gvPath(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

function schemaName(t: ResourceType): string {
  // A custom kind's definition is named by its reversed group, as the apiextensions server does.
  if (t.crd) return `${t.group.split('.').reverse().join('.')}.${t.version}.${t.kind}`;
  const pkg = t.group === '' ? 'core' : t.group.split('.')[0]!;
  return `io.k8s.api.${pkg}.${t.version}.${t.kind}`;
}

const QUERY = (name: string, type = 'string') => ({ name, in: 'query', schema: { type, uniqueItems: true } });

function gvk(t: ResourceType) {
  return { group: t.group, version: t.version, kind: t.kind };
}

function operation(t: ResourceType, action: string, verb: string, params: string[]) {
  return {
    operationId: `${verb}${t.kind}`,
    parameters: params.map((p) => QUERY(p, p === 'force' || p === 'watch' || p === 'allowWatchBookmarks' ? 'boolean' : p === 'limit' || p === 'timeoutSeconds' ? 'integer' : 'string')),
    responses: { '200': { description: 'OK', content: { 'application/json': { schema: { $ref: `#/components/schemas/${schemaName(t)}` } } } } },
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': gvk(t),
  };
}

const WRITE_PARAMS = ['dryRun', 'fieldManager', 'fieldValidation'];

function openSchema(t: ResourceType): Record<string, unknown> {
  if (t.schema) {
    const properties = (t.schema.properties ?? {}) as Record<string, unknown>;
    return {
      ...t.schema,
      properties: {
        ...properties,
        apiVersion: { type: 'string' },
        kind: { type: 'string' },
        metadata: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      },
      'x-kubernetes-group-version-kind': [gvk(t)],
    };
  }
  return {
    type: 'object',
    description: `${t.kind} (simulated: an open schema; the server validates).`,
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
    },
    'x-kubernetes-preserve-unknown-fields': true,
    'x-kubernetes-group-version-kind': [gvk(t)],
  };
}

export function groupDocument(group: string, version: string, types: readonly ResourceType[] = RESOURCE_TYPES): Record<string, unknown> | undefined {
  const gv = groupVersions(types).find((g) => g.group === group && g.version === version);
  if (!gv) return undefined;
  const base = `/${gvPath(group, version)}`;
  const paths: Record<string, unknown> = {};
  const schemas: Record<string, unknown> = {};
  for (const t of gv.types) {
    const collection = t.namespaced ? `${base}/namespaces/{namespace}/${t.plural}` : `${base}/${t.plural}`;
    const body = { content: { 'application/json': { schema: { $ref: `#/components/schemas/${schemaName(t)}` } } }, required: true };
    schemas[schemaName(t)] = openSchema(t);
    if (t.virtual) {
      // Reviews are create-only: the server answers them, nothing is stored.
      paths[collection] = { post: { ...operation(t, 'post', 'create', WRITE_PARAMS), requestBody: body } };
      continue;
    }
    paths[collection] = {
      get: operation(t, 'list', 'list', ['labelSelector', 'fieldSelector', 'limit', 'continue', 'resourceVersion', 'watch', 'allowWatchBookmarks', 'timeoutSeconds']),
      post: { ...operation(t, 'post', 'create', WRITE_PARAMS), requestBody: body },
    };
    const item = `${collection}/{name}`;
    paths[item] = {
      get: operation(t, 'get', 'read', []),
      put: { ...operation(t, 'put', 'replace', WRITE_PARAMS), requestBody: body },
      patch: {
        ...operation(t, 'patch', 'patch', [...WRITE_PARAMS, 'force']),
        requestBody: {
          content: Object.fromEntries(
            ['application/apply-patch+yaml', 'application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json'].map((ct) => [
              ct,
              { schema: { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch' } },
            ]),
          ),
          required: true,
        },
      },
      delete: operation(t, 'delete', 'delete', ['dryRun', 'propagationPolicy', 'gracePeriodSeconds']),
    };
  }
  schemas['io.k8s.apimachinery.pkg.apis.meta.v1.Patch'] = { type: 'object', description: 'Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.' };
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.32.4' }, paths, components: { schemas } };
}

/** By the registry's snapshot, which is replaced whenever the served kinds change. */
const cachedIndex = new WeakMap<readonly ResourceType[], Record<string, unknown>>();

export function openapiIndex(types: readonly ResourceType[] = RESOURCE_TYPES): Record<string, unknown> {
  const cached = cachedIndex.get(types);
  if (cached) return cached;
  const paths: Record<string, unknown> = {};
  for (const gv of groupVersions(types)) {
    const p = gvPath(gv.group, gv.version);
    const hash = createHash('sha512').update(JSON.stringify(groupDocument(gv.group, gv.version, types))).digest('hex').toUpperCase().slice(0, 128);
    paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash}` };
  }
  const index = { paths };
  cachedIndex.set(types, index);
  return index;
}
