// The API server's object semantics, independent of HTTP: create/update/patch/delete with
// defaulting, validation, generation, optimistic concurrency, managedFields and server-side apply.
// Controllers call it directly (no faults, no HTTP); the HTTP layer maps StatusError to responses.
import { randomUUID } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import type { SimClock } from './clock.ts';
import { decodeServed, storedFieldRequirements, storedFieldValue, toServed, toStored } from './conversion.ts';
import { applyDefaults } from './defaults.ts';
import { CORE_EVENT_FIELD_LABELS, EVENTS_V1_FIELD_LABELS } from './eventsV1.ts';
import { jsonPatch, mergePatch, PatchError } from './patch.ts';
import { apiVersionOf, storageOf, typeOf, type ResourceType } from './resources.ts';
import {
  formatRequirements,
  matchesFields,
  matchesRequirements,
  parseFieldSelector,
  parseLabelSelector,
  requirementsFromObject,
  SelectorError,
  type FieldRequirement,
  type LabelSelectorObject,
} from './selectors.ts';
import {
  applyConfiguration,
  ApplyConflictError,
  clone,
  deepEqual,
  isObject,
  mergeObjects,
  pathToString,
  recordUpdate,
  describeManager,
  type Json,
  type JsonObject,
  type ManagedFieldsEntry,
} from './ssa.ts';
import { alreadyExists, badRequest, conflict, notFound, STALE_OBJECT, StatusError, unsupportedMediaType } from './status.ts';
import type { KObject, Store } from './store.ts';
import { validate } from './validate.ts';

export const PATCH_TYPES = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
} as const;

export interface WriteOptions {
  manager: string;
  dryRun?: boolean;
}

export interface ListOptions {
  labelSelector?: string | null;
  fieldSelector?: string | null;
  limit?: number;
  continue?: string | null;
}

export interface ListResult {
  items: KObject[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

const SERVER_META = ['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'managedFields', 'selfLink'];

export function fieldSelectorsFor(type: ResourceType): string[] {
  const base = ['metadata.name', 'metadata.namespace'];
  if (type.crd) return base; // custom kinds: only these (and selectableFields, not simulated)
  if (type.kind === 'Pod') return [...base, 'spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'status.phase', 'status.podIP', 'status.nominatedNodeName'];
  if (type.kind === 'Secret') return [...base, 'type'];
  if (type.kind === 'Namespace') return [...base, 'status.phase'];
  if (type.kind === 'Job') return [...base, 'status.successful'];
  // core's include what `kubectl describe` sends to find an object's events
  if (type.kind === 'Event') return type.storage ? Object.keys(EVENTS_V1_FIELD_LABELS) : [...CORE_EVENT_FIELD_LABELS];
  return base;
}

/**
 * A field selector as requirements on the stored objects of `type` (a view's labels relabelled
 * for its storage); throws SelectorError for a label the kind does not support.
 */
export function storedFieldSelector(type: ResourceType, selector: string | null | undefined): FieldRequirement[] {
  return storedFieldRequirements(type, parseFieldSelector(selector, fieldSelectorsFor(type)));
}

/** Whether a stored object of `type` passes label and (stored-label) field requirements. */
export function matchesStored(type: ResourceType, o: KObject, labels: ReturnType<typeof parseLabelSelector>, fields: readonly FieldRequirement[]): boolean {
  return matchesRequirements(o.metadata.labels, labels) && matchesFields(o, fields, storedFieldValue(type));
}

function labelSelectorOf(selector: LabelSelectorObject | undefined): string {
  return selector ? formatRequirements(requirementsFromObject(selector)) : '';
}

export class ApiServer {
  readonly store: Store;
  readonly clock: SimClock;
  private ipCounter = 10;
  private nodePortCounter = 30000;

  constructor(store: Store, clock: SimClock) {
    this.store = store;
    this.clock = clock;
  }

  // Store access in the served form: a view's objects are read from and written to its storage
  // kind, converted, so everything else here works in the form the client sent.
  private read(type: ResourceType, namespace: string | undefined, name: string): KObject | undefined {
    const stored = this.store.get(storageOf(type), namespace, name);
    return stored && toServed(type, stored);
  }

  private persist(type: ResourceType, o: KObject): KObject {
    return toServed(type, this.store.put(storageOf(type), toStored(type, o)));
  }

  private namespaceMustExist(type: ResourceType, namespace: string | undefined): void {
    if (!type.namespaced) return;
    if (!namespace) throw badRequest('an empty namespace may not be set during creation');
    const ns = this.store.get(typeOf('Namespace'), undefined, namespace);
    if (!ns) throw notFound('namespaces', '', namespace);
    if (ns.metadata.deletionTimestamp) {
      throw new StatusError(403, 'Forbidden', `${type.plural}${type.group ? '.' + type.group : ''} "${''}" is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`);
    }
  }

  get(type: ResourceType, namespace: string | undefined, name: string): KObject {
    const obj = this.read(type, type.namespaced ? namespace : undefined, name);
    if (!obj) throw notFound(type.plural, type.group, name);
    return obj;
  }

  list(type: ResourceType, namespace: string | undefined, options: ListOptions = {}): ListResult {
    let labels;
    let fields;
    try {
      labels = parseLabelSelector(options.labelSelector);
      fields = storedFieldSelector(type, options.fieldSelector);
    } catch (error) {
      if (error instanceof SelectorError) throw badRequest(`unable to parse requirement: ${error.message}`);
      throw error;
    }
    const resourceVersion = String(this.store.resourceVersion);
    let items = this.store
      .list(storageOf(type), type.namespaced ? namespace : undefined)
      .filter((o) => matchesStored(type, o, labels, fields))
      .map((o) => toServed(type, o));
    let rvOut = resourceVersion;
    if (options.continue) {
      let token: { rv: string; start: string };
      try {
        token = JSON.parse(Buffer.from(options.continue, 'base64').toString('utf8')) as { rv: string; start: string };
      } catch {
        throw badRequest('continue key is not valid: illegal base64 data');
      }
      rvOut = token.rv;
      items = items.filter((o) => `${o.metadata.namespace ?? ''}/${o.metadata.name}` > token.start);
    }
    const result: ListResult = { items, resourceVersion: rvOut };
    if (options.limit && options.limit > 0 && items.length > options.limit) {
      result.items = items.slice(0, options.limit);
      const last = result.items[result.items.length - 1]!;
      result.continue = Buffer.from(JSON.stringify({ rv: rvOut, start: `${last.metadata.namespace ?? ''}/${last.metadata.name}` })).toString('base64');
      result.remainingItemCount = items.length - options.limit;
    }
    return result;
  }

  private defaultsContext(previous?: KObject) {
    return {
      previous,
      allocateClusterIP: () => {
        const n = this.ipCounter++;
        return `10.96.${Math.floor(n / 250)}.${(n % 250) + 1}`;
      },
      allocateNodePort: () => this.nodePortCounter++,
    };
  }

  private checkIdentity(type: ResourceType, body: unknown, namespace: string | undefined, name?: string): KObject {
    if (!isObject(body)) throw badRequest('the body of the request must be an object');
    const o = body as unknown as KObject;
    if (o.kind !== undefined && o.kind !== type.kind) {
      throw badRequest(`the API version in the data (${o.apiVersion}) does not match the expected API version (${apiVersionOf(type)})`);
    }
    if (o.apiVersion !== undefined && o.apiVersion !== apiVersionOf(type)) {
      throw badRequest(`the API version in the data (${o.apiVersion}) does not match the expected API version (${apiVersionOf(type)})`);
    }
    o.apiVersion = apiVersionOf(type);
    o.kind = type.kind;
    if (!isObject(o.metadata)) o.metadata = { name: '' };
    if (type.namespaced) {
      if (o.metadata.namespace && namespace && o.metadata.namespace !== namespace) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      o.metadata.namespace = namespace ?? o.metadata.namespace;
    } else delete o.metadata.namespace;
    if (name !== undefined) {
      if (o.metadata.name && o.metadata.name !== name) throw badRequest(`the name of the object (${o.metadata.name}) does not match the name on the URL (${name})`);
      o.metadata.name = name;
    }
    return o;
  }

  /** Finishes a write: defaults, validation, generation, status rules; stores unless unchanged. */
  private commit(type: ResourceType, before: KObject | undefined, after: KObject, dryRun: boolean | undefined): KObject {
    applyDefaults(after, this.defaultsContext(before));
    validate(type, after, before);
    if (before) {
      after.metadata.uid = before.metadata.uid;
      after.metadata.creationTimestamp = before.metadata.creationTimestamp;
      if (before.metadata.deletionTimestamp) after.metadata.deletionTimestamp = before.metadata.deletionTimestamp;
      if (type.generation) {
        const specChanged = !deepEqual(withoutMetaAndStatus(before), withoutMetaAndStatus(after));
        after.metadata.generation = (before.metadata.generation ?? 1) + (specChanged ? 1 : 0);
      } else delete after.metadata.generation;
      const comparableBefore = { ...before, metadata: { ...before.metadata, resourceVersion: undefined, managedFields: stripTimes(before.metadata.managedFields) } };
      const comparableAfter = { ...after, metadata: { ...after.metadata, resourceVersion: undefined, managedFields: stripTimes(after.metadata.managedFields) } };
      if (deepEqual(comparableBefore, comparableAfter)) return before; // a no-op write keeps its resourceVersion
    } else if (type.generation) after.metadata.generation = 1;
    if (dryRun) return { ...after, metadata: { ...after.metadata, resourceVersion: before?.metadata.resourceVersion } };
    return this.persist(type, after);
  }

  create(type: ResourceType, namespace: string | undefined, body: unknown, options: WriteOptions): KObject {
    const o = decodeServed(type, this.checkIdentity(type, clone(body), namespace));
    if (!o.metadata.name && o.metadata.generateName) o.metadata.name = `${o.metadata.generateName}${randomSuffix()}`;
    this.namespaceMustExist(type, o.metadata.namespace);
    if (o.metadata.name && this.read(type, o.metadata.namespace, o.metadata.name)) throw alreadyExists(type.plural, type.group, o.metadata.name);
    if (o.metadata.resourceVersion) throw badRequest('resourceVersion should not be set on objects to be created');
    for (const k of ['uid', 'creationTimestamp', 'deletionTimestamp', 'generation']) delete o.metadata[k];
    o.metadata.uid = randomUUID();
    o.metadata.creationTimestamp = this.clock.timestamp();
    if (type.statusSubresource) setInitialStatus(type, o);
    applyDefaults(o, this.defaultsContext());
    o.metadata.managedFields = recordUpdate({
      before: undefined,
      after: ssaView(type, o),
      managedFields: [],
      manager: options.manager,
      apiVersion: apiVersionOf(type),
      time: this.clock.timestamp(),
    });
    return this.commit(type, undefined, o, options.dryRun);
  }

  /** PUT. `subresource` "status" replaces only the status. */
  update(type: ResourceType, namespace: string | undefined, name: string, body: unknown, options: WriteOptions & { subresource?: 'status' }): KObject {
    const ns = type.namespaced ? namespace : undefined;
    const o = decodeServed(type, this.checkIdentity(type, clone(body), ns, name));
    const before = this.read(type, ns, name);
    if (!before) throw notFound(type.plural, type.group, name);
    if (o.metadata.resourceVersion && o.metadata.resourceVersion !== before.metadata.resourceVersion) throw conflict(type.plural, type.group, name, STALE_OBJECT);
    if (o.metadata.uid && o.metadata.uid !== before.metadata.uid) {
      throw conflict(type.plural, type.group, name, `Precondition failed: UID in precondition: ${o.metadata.uid}, UID in object meta: ${before.metadata.uid}`);
    }
    return this.write(type, before, o, options.manager, options.subresource, options.dryRun);
  }

  /** Applies the status or main-resource rules to a candidate object and records managedFields. */
  private write(type: ResourceType, before: KObject, candidate: KObject, manager: string, subresource: string | undefined, dryRun: boolean | undefined): KObject {
    let after: KObject;
    if (subresource === 'status') {
      after = clone(before);
      after.status = candidate.status;
      if (candidate.status === undefined) delete after.status;
    } else {
      after = candidate;
      if (type.statusSubresource) {
        if (before.status === undefined) delete after.status;
        else after.status = clone(before.status);
      }
      // Clients cannot rewrite server-owned metadata.
      for (const k of ['uid', 'creationTimestamp', 'deletionTimestamp', 'generation']) delete after.metadata[k];
    }
    applyDefaults(after, this.defaultsContext(before));
    const previousManaged = (candidate.metadata.managedFields as ManagedFieldsEntry[] | undefined) ?? (before.metadata.managedFields as ManagedFieldsEntry[] | undefined) ?? [];
    const view = subresource === 'status' ? statusView : (o: KObject) => ssaView(type, o);
    after.metadata.managedFields = recordUpdate({
      before: view(before),
      after: view(after),
      managedFields: subresource === 'status' ? ((before.metadata.managedFields as ManagedFieldsEntry[] | undefined) ?? []) : previousManaged,
      manager,
      apiVersion: apiVersionOf(type),
      time: this.clock.timestamp(),
      subresource,
    });
    return this.commit(type, before, after, dryRun);
  }

  /** PATCH of every flavour; server-side apply creates the object when it does not exist. */
  patch(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    contentType: string,
    rawBody: string,
    options: WriteOptions & { force?: boolean; subresource?: 'status' },
  ): { object: KObject; created: boolean } {
    const ns = type.namespaced ? namespace : undefined;
    const mediaType = contentType.split(';')[0]!.trim().toLowerCase();
    const before = this.read(type, ns, name);
    if (mediaType === PATCH_TYPES.apply) return this.apply(type, ns, name, before, rawBody, options);
    if (!before) throw notFound(type.plural, type.group, name);
    let patch: unknown;
    try {
      patch = JSON.parse(rawBody);
    } catch (error) {
      throw badRequest(`error decoding patch: ${(error as Error).message}`);
    }
    let patched: Json;
    try {
      // a copy: a strategic merge shares the subtrees a patch leaves alone, and write() below
      // strips server-owned metadata from the candidate, which would strip `before`'s uid too
      const current = clone(before) as unknown as Json;
      if (mediaType === PATCH_TYPES.merge) patched = mergePatch(current, patch as Json);
      else if (mediaType === PATCH_TYPES.strategic) patched = (mergeObjects(current, patch as Json) ?? {}) as Json;
      else if (mediaType === PATCH_TYPES.json) patched = jsonPatch(current, patch);
      else throw unsupportedMediaType(contentType);
    } catch (error) {
      if (error instanceof PatchError) throw new StatusError(422, 'Invalid', `the server rejected our request due to an error in our request: ${error.message}`);
      throw error;
    }
    // Patched objects share unchanged subtrees with `before`; the write edits the candidate's metadata.
    const candidate = decodeServed(type, this.checkIdentity(type, clone(patched), ns, name));
    const requestedRv = isObject(patch) && isObject(patch.metadata) ? patch.metadata.resourceVersion : undefined;
    if (typeof requestedRv === 'string' && requestedRv !== before.metadata.resourceVersion) throw conflict(type.plural, type.group, name, STALE_OBJECT);
    return { object: this.write(type, before, candidate, options.manager, options.subresource, options.dryRun), created: false };
  }

  private apply(
    type: ResourceType,
    ns: string | undefined,
    name: string,
    before: KObject | undefined,
    rawBody: string,
    options: WriteOptions & { force?: boolean; subresource?: 'status' },
  ): { object: KObject; created: boolean } {
    if (!options.manager) throw badRequest('PATCH, fieldManager: Required value: is required for apply patch');
    let applied: unknown;
    try {
      applied = parseYaml(rawBody);
    } catch (error) {
      throw badRequest(`error decoding YAML: ${(error as Error).message}`);
    }
    if (!isObject(applied)) throw badRequest('the applied configuration must be an object');
    if (applied.apiVersion === undefined || applied.kind === undefined) throw badRequest('apiVersion and kind must be set in an applied configuration');
    const o = this.checkIdentity(type, clone(applied), ns, name);
    if (!before) this.namespaceMustExist(type, o.metadata.namespace);
    const sub = options.subresource;
    const appliedView = sub === 'status' ? statusView(o) : ssaView(type, o);
    const liveView = before ? (sub === 'status' ? statusView(before) : ssaView(type, before)) : undefined;
    let result;
    try {
      result = applyConfiguration({
        live: liveView,
        applied: appliedView,
        managedFields: (before?.metadata.managedFields as ManagedFieldsEntry[] | undefined) ?? [],
        manager: options.manager,
        apiVersion: apiVersionOf(type),
        force: options.force ?? false,
        time: this.clock.timestamp(),
      });
    } catch (error) {
      if (error instanceof ApplyConflictError) {
        const err = new StatusError(409, 'Conflict', error.message, {
          causes: error.conflicts.map((c) => ({ reason: 'FieldManagerConflict', message: `conflict with ${describeManager(c.manager)}`, field: pathToString(c.path) })),
        });
        throw err;
      }
      throw error;
    }
    const merged = result.object;
    if (!before) {
      const created = { apiVersion: apiVersionOf(type), kind: type.kind, ...merged, metadata: { ...(merged.metadata as JsonObject | undefined), name, namespace: ns } } as unknown as KObject;
      if (!type.namespaced) delete created.metadata.namespace;
      created.metadata.uid = randomUUID();
      created.metadata.creationTimestamp = this.clock.timestamp();
      if (type.statusSubresource) setInitialStatus(type, created);
      created.metadata.managedFields = result.managedFields;
      return { object: this.commit(type, undefined, created, options.dryRun), created: true };
    }
    let after: KObject;
    if (sub === 'status') {
      after = clone(before);
      after.status = merged.status;
    } else {
      after = {
        apiVersion: apiVersionOf(type),
        kind: type.kind,
        ...(merged as object),
        metadata: { ...pickServerMeta(before), ...(merged.metadata as JsonObject | undefined) },
      } as KObject;
      if (type.statusSubresource && before.status !== undefined) after.status = clone(before.status);
    }
    after.metadata.managedFields = result.managedFields;
    return { object: this.commit(type, before, after, options.dryRun), created: false };
  }

  delete(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    options: { propagationPolicy?: string; preconditions?: { uid?: string; resourceVersion?: string }; dryRun?: boolean } = {},
  ): KObject {
    const ns = type.namespaced ? namespace : undefined;
    const before = this.read(type, ns, name);
    if (!before) throw notFound(type.plural, type.group, name);
    const pre = options.preconditions;
    if (pre?.uid && pre.uid !== before.metadata.uid) {
      throw conflict(type.plural, type.group, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${before.metadata.uid}`);
    }
    if (pre?.resourceVersion && pre.resourceVersion !== before.metadata.resourceVersion) {
      throw conflict(type.plural, type.group, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${before.metadata.resourceVersion}`);
    }
    if (options.dryRun) return before;
    if (options.propagationPolicy === 'Orphan') this.orphanDependents(before.metadata.uid!);
    if (type.kind === 'Namespace') {
      // Namespaces terminate: the namespace controller empties them, then removes them.
      if (before.metadata.deletionTimestamp) return before;
      const terminating = clone(before);
      terminating.metadata.deletionTimestamp = this.clock.timestamp();
      terminating.status = { phase: 'Terminating' };
      return this.store.put(type, terminating);
    }
    return toServed(type, this.store.remove(storageOf(type), ns, name)!);
  }

  private orphanDependents(uid: string): void {
    for (const [type, obj] of this.store.dependents(uid)) {
      const refs = obj.metadata.ownerReferences ?? [];
      const copy = clone(obj);
      copy.metadata.ownerReferences = refs.filter((r) => r.uid !== uid);
      if (copy.metadata.ownerReferences.length === 0) delete copy.metadata.ownerReferences;
      this.store.put(type, copy);
    }
  }

  getScale(type: ResourceType, namespace: string | undefined, name: string): JsonObject {
    const o = this.get(type, namespace, name);
    const spec = o.spec as { replicas?: number; selector?: LabelSelectorObject };
    const status = (o.status ?? {}) as { replicas?: number };
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: {
        name: o.metadata.name,
        namespace: o.metadata.namespace ?? null,
        uid: o.metadata.uid ?? null,
        resourceVersion: o.metadata.resourceVersion ?? null,
        creationTimestamp: o.metadata.creationTimestamp ?? null,
      },
      spec: { replicas: spec.replicas ?? 0 },
      status: { replicas: status.replicas ?? 0, selector: labelSelectorOf(spec.selector) },
    };
  }

  /** PUT or PATCH of the scale subresource: writes `spec.replicas` of the parent. */
  writeScale(type: ResourceType, namespace: string | undefined, name: string, scale: unknown, manager: string): JsonObject {
    const before = this.get(type, namespace, name);
    if (!isObject(scale) || !isObject(scale.spec)) throw badRequest('the body must be a Scale object');
    const meta = isObject(scale.metadata) ? scale.metadata : {};
    if (typeof meta.resourceVersion === 'string' && meta.resourceVersion && meta.resourceVersion !== before.metadata.resourceVersion) {
      throw conflict(type.plural, type.group, name, STALE_OBJECT);
    }
    const replicas = scale.spec.replicas;
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
      throw new StatusError(422, 'Invalid', `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`);
    }
    const after = clone(before);
    (after.spec as { replicas: number }).replicas = replicas;
    after.metadata.managedFields = recordUpdate({
      before: { spec: { replicas: (before.spec as { replicas?: number }).replicas ?? 1 } },
      after: { spec: { replicas } },
      managedFields: (before.metadata.managedFields as ManagedFieldsEntry[] | undefined) ?? [],
      manager,
      apiVersion: apiVersionOf(type),
      time: this.clock.timestamp(),
      subresource: 'scale',
    });
    this.commit(type, before, after, false);
    return this.getScale(type, namespace, name);
  }

  patchScale(type: ResourceType, namespace: string | undefined, name: string, contentType: string, rawBody: string, manager: string): JsonObject {
    const current = this.getScale(type, namespace, name);
    const mediaType = contentType.split(';')[0]!.trim().toLowerCase();
    let patched: Json;
    try {
      if (mediaType === PATCH_TYPES.json) patched = jsonPatch(current, JSON.parse(rawBody));
      else if (mediaType === PATCH_TYPES.merge || mediaType === PATCH_TYPES.strategic) patched = mergePatch(current, JSON.parse(rawBody) as Json);
      else if (mediaType === PATCH_TYPES.apply) patched = (mergeObjects(current, parseYaml(rawBody) as Json) ?? {}) as Json;
      else throw unsupportedMediaType(contentType);
    } catch (error) {
      if (error instanceof StatusError) throw error;
      throw badRequest(`error decoding patch: ${(error as Error).message}`);
    }
    return this.writeScale(type, namespace, name, patched, manager);
  }
}

/** A create starts from the server's status, never the client's; a custom resource's is absent. */
function setInitialStatus(type: ResourceType, o: KObject): void {
  if (type.crd) delete o.status;
  else o.status = initialStatus(type);
}

function initialStatus(type: ResourceType): Record<string, unknown> {
  switch (type.kind) {
    case 'Pod':
      return { phase: 'Pending', qosClass: 'BestEffort' };
    case 'Namespace':
      return { phase: 'Active' };
    case 'PersistentVolumeClaim':
      return { phase: 'Pending' };
    case 'Service':
      return { loadBalancer: {} };
    default:
      return {};
  }
}

function withoutMetaAndStatus(o: KObject): Record<string, unknown> {
  const { metadata: _m, status: _s, ...rest } = o;
  return rest;
}

function stripTimes(entries: unknown): unknown {
  if (!Array.isArray(entries)) return entries;
  return entries.map((e: Record<string, unknown>) => ({ ...e, time: undefined }));
}

function pickServerMeta(o: KObject): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of SERVER_META) if (o.metadata[k] !== undefined) out[k] = o.metadata[k];
  return out;
}

/** The object as field managers see it: no server-owned metadata, no status behind a subresource. */
export function ssaView(type: ResourceType, o: KObject): JsonObject {
  const copy = clone(o) as unknown as JsonObject;
  delete copy.apiVersion;
  delete copy.kind;
  if (type.statusSubresource) delete copy.status;
  const meta = copy.metadata as JsonObject | undefined;
  if (meta) {
    for (const k of SERVER_META) delete meta[k];
    delete meta.generateName;
    if (Object.keys(meta).length === 0) delete copy.metadata;
  }
  return copy;
}

function statusView(o: KObject): JsonObject {
  return o.status === undefined ? {} : { status: clone(o.status) as Json };
}

export function randomSuffix(length = 5): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[Math.floor(Math.random() * alphabet.length)];
  return out;
}
