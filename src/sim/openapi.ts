// OpenAPI v3 documents, enough for kubectl: `apply --server-side` with strict validation checks
// that the PATCH operation of the kind's path lists the `fieldValidation` query parameter (it
// then leaves validation to the server). Schemas are open objects carrying the GVK extension.
import { createHash } from 'node:crypto';
import { groupVersions, type ResourceType } from './resources.ts';

function gvPath(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

function schemaName(t: ResourceType): string {
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

export function groupDocument(group: string, version: string): Record<string, unknown> | undefined {
  const gv = groupVersions().find((g) => g.group === group && g.version === version);
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

let cachedIndex: Record<string, unknown> | undefined;

export function openapiIndex(): Record<string, unknown> {
  if (cachedIndex) return cachedIndex;
  const paths: Record<string, unknown> = {};
  for (const gv of groupVersions()) {
    const p = gvPath(gv.group, gv.version);
    const hash = createHash('sha512').update(JSON.stringify(groupDocument(gv.group, gv.version))).digest('hex').toUpperCase().slice(0, 128);
    paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash}` };
  }
  cachedIndex = { paths };
  return cachedIndex;
}
