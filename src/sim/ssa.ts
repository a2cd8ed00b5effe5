// Server-side apply: field sets (managedFields `FieldsV1`), merging an applied configuration into
// the live object, ownership conflicts and removal of fields a manager stops applying. This is a
// faithful subset of sigs.k8s.io/structured-merge-diff: lists listed in KEYED_LISTS merge by key,
// every other list and the maps in ATOMIC_PATHS are replaced whole. Pure: no I/O.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** One element of a field path: `f:<name>`, `k:<json key>` or the `.` "the item itself" marker. */
export type PathElement = string;
export type FieldPath = readonly PathElement[];

export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: JsonObject;
  subresource?: string;
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => deepEqual(v, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => deepEqual(ao[k], bo[k]));
}

/**
 * A deep copy with JSON's semantics (undefined and functions dropped from objects, null in
 * arrays; non-finite numbers become null; toJSON honoured) without the round trip through a
 * string: the simulator copies every object it stores and hands out, and this is 4× faster.
 */
export function clone<T>(value: T): T {
  return value === undefined ? value : (copyJson(value) as T);
}

function copyJson(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return typeof v === 'number' && !Number.isFinite(v) ? null : v;
  if (Array.isArray(v)) return v.map((x) => (x === undefined || typeof x === 'function' || typeof x === 'symbol' ? null : copyJson(x)));
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return JSON.parse(JSON.stringify(v)) as unknown;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) {
    const x = (v as Record<string, unknown>)[k];
    if (x === undefined || typeof x === 'function' || typeof x === 'symbol') continue;
    // an own "__proto__" key (JSON.parse makes one) must stay a key, not become the prototype
    if (k === '__proto__') Object.defineProperty(out, k, { value: copyJson(x), enumerable: true, writable: true, configurable: true });
    else out[k] = copyJson(x);
  }
  return out;
}

// Merge keys of the lists that are maps in the Kubernetes schema (x-kubernetes-list-type: map).
const KEYED_LISTS: Record<string, readonly string[]> = {
  containers: ['name'],
  initContainers: ['name'],
  ephemeralContainers: ['name'],
  env: ['name'],
  volumes: ['name'],
  volumeMounts: ['mountPath'],
  volumeDevices: ['devicePath'],
  imagePullSecrets: ['name'],
  conditions: ['type'],
  ownerReferences: ['uid'],
  hostAliases: ['ip'],
  rules: [],
};

// Maps replaced whole (`x-kubernetes-map-type: atomic`), as dotted field names from the root.
const ATOMIC_PATHS = new Set(['spec.selector', 'spec.template.spec.affinity', 'spec.jobTemplate.spec.selector']);

/** The merge keys of a list at field `field`, or undefined when the list is atomic. */
export function listKeys(field: string, items: readonly Json[]): readonly string[] | undefined {
  if (field === 'ports') {
    const first = items.find(isObject);
    if (first && 'containerPort' in first) return ['containerPort', 'protocol'];
    return ['port', 'protocol'];
  }
  const keys = KEYED_LISTS[field];
  if (!keys || keys.length === 0) return undefined;
  return keys;
}

function keyValue(item: Json, keys: readonly string[]): JsonObject | undefined {
  if (!isObject(item)) return undefined;
  const key: JsonObject = {};
  for (const k of [...keys].sort()) {
    let v = item[k];
    if (v === undefined && k === 'protocol') v = 'TCP';
    if (v === undefined || v === null) return undefined;
    key[k] = v;
  }
  return key;
}

function keyElement(item: Json, keys: readonly string[]): PathElement | undefined {
  const key = keyValue(item, keys);
  return key ? `k:${JSON.stringify(key)}` : undefined;
}

/** True when every item of the list carries its merge key, so it can be treated as a map. */
function keyedList(field: string, items: readonly Json[]): readonly string[] | undefined {
  const keys = listKeys(field, items);
  if (!keys) return undefined;
  return items.every((i) => keyElement(i, keys) !== undefined) ? keys : undefined;
}

const SEP = '\u0000';
const ser = (path: FieldPath): string => path.join(SEP);
const deser = (s: string): PathElement[] => (s === '' ? [] : s.split(SEP));

/** A set of field paths; members are leaves and `.` markers, as in FieldsV1. */
export class FieldSet {
  readonly members = new Set<string>();

  static of(paths: Iterable<FieldPath>): FieldSet {
    const set = new FieldSet();
    for (const p of paths) set.add(p);
    return set;
  }

  add(path: FieldPath): void {
    this.members.add(ser(path));
  }

  has(path: FieldPath): boolean {
    return this.members.has(ser(path));
  }

  delete(path: FieldPath): void {
    this.members.delete(ser(path));
  }

  /** Whether the set holds `path` or anything below it. */
  hasPrefix(path: FieldPath): boolean {
    const s = ser(path);
    for (const m of this.members) if (m === s || m.startsWith(s + SEP)) return true;
    return false;
  }

  deletePrefix(path: FieldPath): void {
    const s = ser(path);
    for (const m of [...this.members]) if (m === s || m.startsWith(s + SEP)) this.members.delete(m);
  }

  paths(): PathElement[][] {
    return [...this.members].map(deser);
  }

  get size(): number {
    return this.members.size;
  }

  toFieldsV1(): JsonObject {
    const root: JsonObject = {};
    for (const path of this.paths()) {
      let node = root;
      for (const el of path) {
        if (!isObject(node[el])) node[el] = {};
        node = node[el] as JsonObject;
      }
    }
    return sortTree(root);
  }

  static fromFieldsV1(tree: unknown): FieldSet {
    const set = new FieldSet();
    const walk = (node: unknown, path: PathElement[]): void => {
      if (!isObject(node)) return;
      const keys = Object.keys(node);
      if (keys.length === 0) {
        if (path.length > 0) set.add(path);
        return;
      }
      for (const k of keys) {
        if (k === '.') set.add([...path, '.']);
        else walk(node[k], [...path, k]);
      }
    };
    walk(tree, []);
    return set;
  }
}

function sortTree(node: JsonObject): JsonObject {
  const out: JsonObject = {};
  const keys = Object.keys(node).sort((a, b) => (a === '.' ? -1 : b === '.' ? 1 : a < b ? -1 : a > b ? 1 : 0));
  for (const k of keys) out[k] = sortTree(node[k] as JsonObject);
  return out;
}

function dotted(names: readonly string[]): string {
  return names.join('.');
}

/** The field set an object (already stripped of server-owned fields) sets. */
export function fieldSetOf(obj: JsonObject): FieldSet {
  const set = new FieldSet();
  const walk = (value: Json, path: PathElement[], names: string[]): void => {
    const field = names[names.length - 1] ?? '';
    if (isObject(value) && Object.keys(value).length > 0 && !ATOMIC_PATHS.has(dotted(names))) {
      for (const [k, v] of Object.entries(value)) if (v !== undefined) walk(v, [...path, `f:${k}`], [...names, k]);
      return;
    }
    if (Array.isArray(value) && value.length > 0) {
      const keys = keyedList(field, value);
      if (keys) {
        for (const item of value) {
          const el = keyElement(item, keys)!;
          set.add([...path, el, '.']);
          for (const [k, v] of Object.entries(item as JsonObject)) walk(v, [...path, el, `f:${k}`], [...names, k]);
        }
        return;
      }
    }
    if (path.length > 0) set.add(path);
  };
  walk(obj, [], []);
  return set;
}

/** The value at a field path, or undefined when absent. A `.` element is the item itself. */
export function valueAt(obj: Json | undefined, path: FieldPath): Json | undefined {
  let node: Json | undefined = obj;
  for (const el of path) {
    if (node === undefined || node === null) return undefined;
    if (el === '.') continue;
    if (el.startsWith('f:')) {
      if (!isObject(node)) return undefined;
      node = node[el.slice(2)];
    } else if (el.startsWith('k:')) {
      if (!Array.isArray(node)) return undefined;
      const key = JSON.parse(el.slice(2)) as JsonObject;
      node = node.find((item) => isObject(item) && Object.entries(key).every(([k, v]) => (item[k] ?? (k === 'protocol' ? 'TCP' : undefined)) === v));
    } else return undefined;
  }
  return node;
}

/** Removes the value at `path` from `obj` (in place); removing `[..., k:x, '.']` removes the list item. */
export function removeAt(obj: JsonObject, path: FieldPath): void {
  const target = path[path.length - 1] === '.' ? path.slice(0, -1) : path;
  if (target.length === 0) return;
  const parent = valueAt(obj, target.slice(0, -1));
  const last = target[target.length - 1]!;
  if (last.startsWith('f:') && isObject(parent)) delete parent[last.slice(2)];
  else if (last.startsWith('k:') && Array.isArray(parent)) {
    const item = valueAt(obj, target);
    const index = parent.indexOf(item as Json);
    if (index >= 0) parent.splice(index, 1);
  }
}

/** `.spec.template.spec.containers[name="web"].image` — how conflicts name a field. */
export function pathToString(path: FieldPath): string {
  let out = '';
  for (const el of path) {
    if (el === '.') continue;
    if (el.startsWith('f:')) out += `.${el.slice(2)}`;
    else if (el.startsWith('k:')) {
      const key = JSON.parse(el.slice(2)) as JsonObject;
      out += `[${Object.entries(key)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(',')}]`;
    }
  }
  return out;
}

/**
 * Merges `patch` into `base` the way an apply (or a strategic-merge patch) does: maps merge
 * recursively, keyed lists merge item by item, everything else is replaced. `null` removes.
 */
export function mergeObjects(base: Json | undefined, patch: Json, names: string[] = []): Json | undefined {
  const field = names[names.length - 1] ?? '';
  if (patch === null) return undefined;
  if (isObject(patch) && isObject(base) && !ATOMIC_PATHS.has(dotted(names))) {
    const out: JsonObject = { ...base };
    for (const [k, v] of Object.entries(patch)) {
      if (k.startsWith('$')) continue; // strategic-merge directives ($setElementOrder, $retainKeys, …)
      const merged = mergeObjects(base[k], v, [...names, k]);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    }
    return out;
  }
  if (Array.isArray(patch) && Array.isArray(base)) {
    const keys = keyedList(field, patch.filter((i) => !(isObject(i) && '$patch' in i)));
    if (keys && keyedList(field, base)) {
      const out = base.map((i) => clone(i));
      for (const item of patch) {
        const el = keyElement(item, keys);
        if (!el) continue;
        const index = out.findIndex((o) => keyElement(o, keys) === el);
        if (isObject(item) && item.$patch === 'delete') {
          if (index >= 0) out.splice(index, 1);
          continue;
        }
        if (index >= 0) out[index] = mergeObjects(out[index], item, names) as Json;
        else out.push(stripNulls(clone(item)));
      }
      return out;
    }
  }
  return stripNulls(clone(patch));
}

function stripNulls(value: Json): Json {
  if (Array.isArray(value)) return value.map(stripNulls);
  if (isObject(value)) {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) if (v !== null && !k.startsWith('$')) out[k] = stripNulls(v);
    return out;
  }
  return value;
}

export interface Conflict {
  manager: ManagedFieldsEntry;
  path: PathElement[];
}

export class ApplyConflictError extends Error {
  readonly conflicts: Conflict[];

  constructor(conflicts: Conflict[]) {
    super(conflictMessage(conflicts));
    this.conflicts = conflicts;
  }
}

/** `"kubectl"`, `"kubectl" using apps/v1`, as structured-merge-diff prints a manager. */
export function describeManager(entry: ManagedFieldsEntry): string {
  let out = JSON.stringify(entry.manager);
  if (entry.subresource) out += ` with subresource ${JSON.stringify(entry.subresource)}`;
  if (entry.operation === 'Update') out += ` using ${entry.apiVersion}`;
  return out;
}

export function conflictMessage(conflicts: readonly Conflict[]): string {
  if (conflicts.length === 1) {
    const c = conflicts[0]!;
    return `Apply failed with 1 conflict: conflict with ${describeManager(c.manager)}: ${pathToString(c.path)}`;
  }
  const byManager = new Map<string, string[]>();
  for (const c of conflicts) {
    const m = describeManager(c.manager);
    byManager.set(m, [...(byManager.get(m) ?? []), pathToString(c.path)]);
  }
  const lines: string[] = [];
  for (const m of [...byManager.keys()].sort()) {
    lines.push(`conflict with ${m}:`);
    for (const p of byManager.get(m)!) lines.push(`- ${p}`);
  }
  return `Apply failed with ${conflicts.length} conflicts: ${lines.join('\n')}`;
}

function sameEntry(a: ManagedFieldsEntry, manager: string, operation: string, subresource: string | undefined): boolean {
  return a.manager === manager && a.operation === operation && (a.subresource ?? '') === (subresource ?? '');
}

export interface ApplyInput {
  /** The live object without server-owned fields, or undefined on create. */
  live: JsonObject | undefined;
  /** The applied configuration, already stripped of server-owned fields. */
  applied: JsonObject;
  managedFields: readonly ManagedFieldsEntry[];
  manager: string;
  apiVersion: string;
  force: boolean;
  time: string;
}

export interface ApplyResult {
  object: JsonObject;
  managedFields: ManagedFieldsEntry[];
}

/** Applies `applied` for `manager`; throws ApplyConflictError when another manager owns a changed field. */
export function applyConfiguration(input: ApplyInput): ApplyResult {
  const live = input.live ?? {};
  const appliedSet = fieldSetOf(input.applied);
  const entries = input.managedFields.map((e) => ({ entry: e, set: FieldSet.fromFieldsV1(e.fieldsV1) }));
  const mine = entries.find((e) => sameEntry(e.entry, input.manager, 'Apply', undefined));
  const others = entries.filter((e) => e !== mine);
  const merged = (mergeObjects(live, input.applied) ?? {}) as JsonObject;

  const conflicts: Conflict[] = [];
  for (const path of appliedSet.paths()) {
    if (path[path.length - 1] === '.') continue;
    const before = valueAt(live, path);
    const after = valueAt(merged, path);
    if (before === undefined || deepEqual(before, after)) continue;
    for (const other of others) if (other.set.has(path)) conflicts.push({ manager: other.entry, path });
  }
  if (conflicts.length > 0 && !input.force) throw new ApplyConflictError(conflicts);
  for (const c of conflicts) for (const other of others) if (other.entry === c.manager) other.set.delete(c.path);

  // Fields this manager applied before but not now go, unless another manager still owns them.
  if (mine) {
    const dropped = mine.set.paths().filter((p) => !appliedSet.has(p));
    // Deepest first, so an item's fields go before the item itself.
    dropped.sort((a, b) => b.length - a.length);
    for (const path of dropped) {
      const owner = path[path.length - 1] === '.' ? path.slice(0, -1) : path;
      if (others.some((o) => o.set.hasPrefix(owner))) continue;
      if (path[path.length - 1] === '.' && appliedSet.hasPrefix(owner)) continue;
      removeAt(merged, path);
      pruneEmptyParents(merged, owner, others.map((o) => o.set), appliedSet);
    }
  }

  const managedFields: ManagedFieldsEntry[] = [];
  const applyEntry: ManagedFieldsEntry = {
    manager: input.manager,
    operation: 'Apply',
    apiVersion: input.apiVersion,
    time: input.time,
    fieldsType: 'FieldsV1',
    fieldsV1: appliedSet.toFieldsV1(),
  };
  let placed = false;
  for (const e of entries) {
    if (e === mine) {
      managedFields.push(applyEntry);
      placed = true;
    } else if (e.set.size > 0) managedFields.push({ ...e.entry, fieldsV1: e.set.toFieldsV1() });
  }
  if (!placed) managedFields.push(applyEntry);
  return { object: merged, managedFields: managedFields.filter((e) => Object.keys(e.fieldsV1).length > 0 || e === applyEntry) };
}

/** After a removal, drops maps left empty unless someone owns them. */
function pruneEmptyParents(obj: JsonObject, path: FieldPath, ownerSets: readonly FieldSet[], appliedSet: FieldSet): void {
  let parentPath = path.slice(0, -1);
  while (parentPath.length > 0 && parentPath[parentPath.length - 1]!.startsWith('f:')) {
    const value = valueAt(obj, parentPath);
    if (!isObject(value) || Object.keys(value).length > 0) return;
    if (appliedSet.has(parentPath) || ownerSets.some((s) => s.has(parentPath))) return;
    removeAt(obj, parentPath);
    parentPath = parentPath.slice(0, -1);
  }
}

export interface UpdateInput {
  before: JsonObject | undefined;
  after: JsonObject;
  managedFields: readonly ManagedFieldsEntry[];
  manager: string;
  apiVersion: string;
  time: string;
  subresource?: string;
}

/**
 * Records a non-apply write: the writer takes ownership of every field it added or changed (other
 * managers lose them, no conflicts), and fields it removed are forgotten by everyone.
 */
export function recordUpdate(input: UpdateInput): ManagedFieldsEntry[] {
  const beforeSet = input.before ? fieldSetOf(input.before) : new FieldSet();
  const afterSet = fieldSetOf(input.after);
  const changed: PathElement[][] = [];
  for (const path of afterSet.paths()) {
    if (path[path.length - 1] === '.') {
      if (!beforeSet.has(path)) changed.push(path);
      continue;
    }
    if (!deepEqual(valueAt(input.before ?? {}, path), valueAt(input.after, path))) changed.push(path);
  }
  const removed = beforeSet.paths().filter((p) => !afterSet.has(p) && valueAt(input.after, p) === undefined);
  const entries = input.managedFields.map((e) => ({ entry: e, set: FieldSet.fromFieldsV1(e.fieldsV1) }));
  for (const e of entries) {
    for (const p of removed) e.set.deletePrefix(p[p.length - 1] === '.' ? p.slice(0, -1) : p);
    for (const p of changed) e.set.delete(p);
  }
  let mine = entries.find((e) => sameEntry(e.entry, input.manager, 'Update', input.subresource));
  if (changed.length === 0 && !mine) return entries.filter((e) => e.set.size > 0).map((e) => ({ ...e.entry, fieldsV1: e.set.toFieldsV1() }));
  if (!mine) {
    const entry: ManagedFieldsEntry = {
      manager: input.manager,
      operation: 'Update',
      apiVersion: input.apiVersion,
      time: input.time,
      fieldsType: 'FieldsV1',
      fieldsV1: {},
    };
    if (input.subresource) entry.subresource = input.subresource;
    mine = { entry, set: new FieldSet() };
    entries.push(mine);
  }
  for (const p of changed) mine.set.add(p);
  if (changed.length > 0) mine.entry = { ...mine.entry, time: input.time };
  return entries.filter((e) => e.set.size > 0).map((e) => ({ ...e.entry, fieldsV1: e.set.toFieldsV1() }));
}
