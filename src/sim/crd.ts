// CustomResourceDefinitions (apiextensions.k8s.io/v1): what the API server validates on a CRD
// (the parts clients notice, upstream's wording), the defaults and status it writes
// (acceptedNames, storedVersions, NamesAccepted and Established), and the registration of each
// served version as a kind of this simulator. Registration follows the store: a CRD that is
// stored is established at once (a real cluster takes a moment; clients that wait for
// Established see it immediately), and a deleted CRD takes its custom objects with it.
import { RESOURCE_TYPES, VERBS, type PrinterColumn, type ResourceRegistry, type ResourceType, type Subresource } from './resources.ts';
import type { StatusCause } from './status.ts';
import type { KObject, Store, StoreEvent } from './store.ts';

export const CRD_GROUP = 'apiextensions.k8s.io';
export const CRD_TYPE: ResourceType = RESOURCE_TYPES.find((t) => t.group === CRD_GROUP && t.kind === 'CustomResourceDefinition')!;

type Obj = Record<string, unknown>;

interface CrdNames {
  plural?: string;
  singular?: string;
  kind?: string;
  listKind?: string;
  shortNames?: string[];
  categories?: string[];
}

interface CrdVersion {
  name?: string;
  served?: boolean;
  storage?: boolean;
  schema?: { openAPIV3Schema?: Obj };
  subresources?: { status?: Obj; scale?: Obj };
  additionalPrinterColumns?: PrinterColumn[];
}

interface CrdSpec {
  group?: string;
  names?: CrdNames;
  scope?: string;
  versions?: CrdVersion[];
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SCOPES = ['Cluster', 'Namespaced'];

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function specOf(o: KObject): CrdSpec {
  return isObj(o.spec) ? (o.spec as CrdSpec) : {};
}

function versionsOf(spec: CrdSpec): CrdVersion[] {
  return Array.isArray(spec.versions) ? spec.versions.filter(isObj) : [];
}

export function isCrd(o: { apiVersion?: string; kind?: string }): boolean {
  return o.kind === 'CustomResourceDefinition' && o.apiVersion === `${CRD_GROUP}/v1`;
}

/** What a real server checks on create and update (apiextensions validation), as 422 causes. */
export function crdProblems(o: KObject, previous: KObject | undefined): StatusCause[] {
  const causes: StatusCause[] = [];
  const spec = specOf(o);
  const names: CrdNames = isObj(spec.names) ? spec.names : {};
  const group = spec.group ?? '';
  const name = o.metadata.name;
  if (!group) causes.push({ field: 'spec.group', reason: 'FieldValueRequired', message: 'Required value' });
  else if (!DNS_SUBDOMAIN.test(group)) causes.push({ field: 'spec.group', message: `Invalid value: ${JSON.stringify(group)}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character` });
  else if (!group.includes('.')) causes.push({ field: 'spec.group', message: `Invalid value: ${JSON.stringify(group)}: should be a domain with at least one dot` });
  if (!names.plural) causes.push({ field: 'spec.names.plural', reason: 'FieldValueRequired', message: 'Required value' });
  else if (!DNS_LABEL.test(names.plural)) causes.push({ field: 'spec.names.plural', message: `Invalid value: ${JSON.stringify(names.plural)}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character` });
  if (!names.kind) causes.push({ field: 'spec.names.kind', reason: 'FieldValueRequired', message: 'Required value' });
  if (name && names.plural && group && name !== `${names.plural}.${group}`) {
    causes.push({ field: 'metadata.name', message: `Invalid value: ${JSON.stringify(name)}: must be spec.names.plural+"."+spec.group` });
  }
  if (!spec.scope) causes.push({ field: 'spec.scope', reason: 'FieldValueRequired', message: 'Required value' });
  else if (!SCOPES.includes(spec.scope)) causes.push({ field: 'spec.scope', reason: 'FieldValueNotSupported', message: `Unsupported value: ${JSON.stringify(spec.scope)}: supported values: "Cluster", "Namespaced"` });
  const before = previous ? specOf(previous) : undefined;
  if (before?.scope && spec.scope && before.scope !== spec.scope) causes.push({ field: 'spec.scope', message: `Invalid value: ${JSON.stringify(spec.scope)}: field is immutable` });
  const versions = versionsOf(spec);
  if (versions.length === 0) causes.push({ field: 'spec.versions', reason: 'FieldValueRequired', message: 'Required value: must have exactly one version marked as storage version' });
  else {
    const storage = versions.filter((v) => v.storage === true).length;
    if (storage !== 1) causes.push({ field: 'spec.versions', message: `Invalid value: ${JSON.stringify(versions.map((v) => v.name))}: must have exactly one version marked as storage version` });
    const seen = new Set<string>();
    versions.forEach((v, i) => {
      const at = `spec.versions[${i}]`;
      if (!v.name) causes.push({ field: `${at}.name`, reason: 'FieldValueRequired', message: 'Required value' });
      else if (!DNS_1035.test(v.name)) causes.push({ field: `${at}.name`, message: `Invalid value: ${JSON.stringify(v.name)}: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character` });
      else if (seen.has(v.name)) causes.push({ field: `${at}.name`, reason: 'FieldValueDuplicate', message: `Duplicate value: ${JSON.stringify(v.name)}` });
      if (v.name) seen.add(v.name);
      const schema = v.schema?.openAPIV3Schema;
      if (!isObj(schema)) causes.push({ field: `${at}.schema.openAPIV3Schema`, reason: 'FieldValueRequired', message: 'Required value: schemas are required' });
      else if (!schema.type) causes.push({ field: `${at}.schema.openAPIV3Schema.type`, reason: 'FieldValueRequired', message: 'Required value: must not be empty at the root' });
      else if (schema.type !== 'object') causes.push({ field: `${at}.schema.openAPIV3Schema.type`, message: `Invalid value: ${JSON.stringify(schema.type)}: must be object at the root` });
      (v.additionalPrinterColumns ?? []).forEach((c, j) => {
        if (!c?.name) causes.push({ field: `${at}.additionalPrinterColumns[${j}].name`, reason: 'FieldValueRequired', message: 'Required value' });
        if (!c?.jsonPath) causes.push({ field: `${at}.additionalPrinterColumns[${j}].jsonPath`, reason: 'FieldValueRequired', message: 'Required value' });
      });
    });
  }
  return causes;
}

/**
 * Defaults and status, on every write (status is the server's, whatever a client sends): names'
 * singular and listKind, conversion None, acceptedNames, storedVersions and the two conditions.
 * Condition times are kept while a condition holds, else the object's creation time.
 */
export function defaultCrd(o: KObject): void {
  if (!isObj(o.spec)) return;
  const spec = o.spec as CrdSpec & Obj;
  if (!isObj(spec.names)) return;
  const names = spec.names as CrdNames;
  if (typeof names.kind === 'string' && names.kind) {
    names.singular ??= names.kind.toLowerCase();
    names.listKind ??= `${names.kind}List`;
  }
  if (!isObj(spec.conversion)) spec.conversion = { strategy: 'None' };
  const status: Obj = isObj(o.status) ? o.status : {};
  const previous = Array.isArray(status.conditions) ? (status.conditions as Obj[]) : [];
  const since = (type: string): string => {
    const before = previous.find((c) => c.type === type);
    return before?.status === 'True' && typeof before.lastTransitionTime === 'string' ? before.lastTransitionTime : (o.metadata.creationTimestamp ?? '');
  };
  const stored = new Set(Array.isArray(status.storedVersions) ? (status.storedVersions as string[]) : []);
  for (const v of versionsOf(spec)) if (v.storage === true && v.name) stored.add(v.name);
  o.status = {
    conditions: [
      { type: 'NamesAccepted', status: 'True', lastTransitionTime: since('NamesAccepted'), reason: 'NoConflicts', message: 'no conflicts found' },
      { type: 'Established', status: 'True', lastTransitionTime: since('Established'), reason: 'InitialNamesAccepted', message: 'the initial names have been accepted' },
    ],
    acceptedNames: structuredClone(names),
    storedVersions: [...stored],
  };
}

/** The kinds a valid CRD serves: one per served version. */
export function typesOf(crd: KObject): ResourceType[] {
  const spec = specOf(crd);
  const names: CrdNames = spec.names ?? {};
  if (!spec.group || !names.kind || !names.plural) return [];
  return versionsOf(spec)
    .filter((v) => v.served === true && v.name)
    .map((v) => {
      const subresources: Subresource[] = [];
      if (isObj(v.subresources?.status)) subresources.push('status');
      if (isObj(v.subresources?.scale)) subresources.push('scale');
      return {
        group: spec.group!,
        version: v.name!,
        kind: names.kind!,
        plural: names.plural!,
        singular: names.singular ?? names.kind!.toLowerCase(),
        namespaced: spec.scope !== 'Cluster',
        shortNames: names.shortNames ?? [],
        categories: names.categories ?? [],
        subresources,
        // Custom resources always carry metadata.generation (bumped on changes outside status).
        generation: true,
        statusSubresource: subresources.includes('status'),
        verbs: VERBS,
        virtual: false,
        crd: crd.metadata.name,
        schema: v.schema?.openAPIV3Schema,
        printerColumns: v.additionalPrinterColumns,
      };
    });
}

export interface CrdRegistration {
  close(): void;
}

/**
 * Keeps `registry` in step with the stored CRDs. `onRemoved` hears of kinds no longer served
 * after their objects are gone (the router ends their watches, as a real server does).
 */
export function registerCustomResources(store: Store, registry: ResourceRegistry, onRemoved: (types: readonly ResourceType[]) => void): CrdRegistration {
  const listener = (event: StoreEvent): void => {
    if (event.resource !== CRD_TYPE) return;
    const name = event.object.metadata.name;
    const before = registry.definedBy(name);
    const next = event.type === 'DELETED' ? [] : typesOf(event.object);
    // The store keys objects, and watches their kind, by the ResourceType object: a changed
    // CRD updates its kinds in place so stored objects and open watches stay attached.
    const kept = next.map((fresh) => {
      const current = before.find((t) => t.version === fresh.version);
      return current ? Object.assign(current, fresh) : fresh;
    });
    registry.define(name, kept);
    const removed = before.filter((t) => !kept.includes(t));
    if (removed.length === 0) return;
    // A deleted CRD deletes its objects (upstream's customresourcecleanup finalizer); a version
    // no longer served is only unreachable, as its objects stay in storage on a real cluster.
    if (event.type === 'DELETED') {
      for (const type of removed) for (const o of store.list(type)) store.remove(type, o.metadata.namespace, o.metadata.name);
    }
    onRemoved(removed);
  };
  const unsubscribe = store.subscribe(listener);
  return { close: () => void unsubscribe() };
}
