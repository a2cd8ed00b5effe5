// What an apply would change, decided the way Flux's SSA manager decides "configured" versus
// "unchanged": compare the server's dry-run result of applying keelson's object with the live
// object, over labels, annotations and everything outside metadata and status. The dry-run
// already contains every defaulted, normalised and foreign-owned field, so any difference is one
// that keelson's apply would make. Pure: no I/O.
//
// Hazard: with `force`, keelson's apply takes back fields another manager has since changed.
// That is the point for `kubectl edit` or `kubectl set image` (drift to repair), but not for an
// autoscaler, which sets `spec.replicas` through the `scale` subresource: fields whose live owner
// wrote them through `scale` are reported apart (`autoscaled`), and are not drift.
import type { KubeObject } from './types.ts';

type Json = unknown;
type JsonMap = Record<string, unknown>;

function isMap(value: Json): value is JsonMap {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function deepEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const other = b as Json[];
    return a.length === other.length && a.every((item, i) => deepEqual(item, other[i]));
  }
  const ak = Object.keys(a as JsonMap).filter((k) => (a as JsonMap)[k] !== undefined);
  const bk = Object.keys(b as JsonMap).filter((k) => (b as JsonMap)[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => deepEqual((a as JsonMap)[k], (b as JsonMap)[k]));
}

// Merge keys of the lists Kubernetes treats as maps (x-kubernetes-list-type: map), tried in order:
// containers/env/volumes by name, ports by number and protocol, mounts by path.
const LIST_KEYS: ReadonlyArray<readonly string[]> = [['name'], ['containerPort', 'protocol'], ['port', 'protocol'], ['mountPath'], ['devicePath'], ['ip']];

/** The key of a list item as SSA prints it: `[name="web"]`, `[containerPort=8080,protocol="TCP"]`. */
function keyOf(item: JsonMap, keys: readonly string[]): string {
  const parts = [...keys].sort().map((k) => `${k}=${JSON.stringify(item[k] ?? (k === 'protocol' ? 'TCP' : null))}`);
  return `[${parts.join(',')}]`;
}

/** The merge keys that identify every item of both lists uniquely, or undefined (atomic list). */
function listKeys(a: Json[], b: Json[]): readonly string[] | undefined {
  const items = [...a, ...b];
  if (items.length === 0 || !items.every(isMap)) return undefined;
  for (const keys of LIST_KEYS) {
    const first = keys[0] as string;
    if (!items.every((item) => (item as JsonMap)[first] !== undefined)) continue;
    const unique = (list: Json[]) => new Set(list.map((item) => keyOf(item as JsonMap, keys))).size === list.length;
    if (unique(a) && unique(b)) return keys;
  }
  return undefined;
}

/** `own`: only the fields `intended` sets are compared (it is not a dry-run: no server defaults). */
function walk(intended: Json, live: Json, path: string, out: string[], own = false): void {
  if (deepEqual(intended, live)) return;
  if (isMap(intended) && isMap(live)) {
    const keys = own ? Object.keys(intended) : new Set([...Object.keys(intended), ...Object.keys(live)]);
    for (const key of keys) walk(intended[key], live[key], `${path}.${key}`, out, own);
    return;
  }
  if (Array.isArray(intended) && Array.isArray(live)) {
    const keys = listKeys(intended, live);
    if (keys) {
      const byKey = (list: Json[]) => new Map(list.map((item) => [keyOf(item as JsonMap, keys), item] as const));
      const a = byKey(intended);
      const b = byKey(live);
      for (const key of own ? a.keys() : new Set([...a.keys(), ...b.keys()])) walk(a.get(key), b.get(key), `${path}${key}`, out, own);
      return;
    }
  }
  out.push(path || '.');
}

function comparable(obj: KubeObject): JsonMap {
  const { metadata, status: _status, ...rest } = obj;
  return { metadata: { labels: metadata.labels ?? {}, annotations: metadata.annotations ?? {} }, ...rest };
}

/**
 * The field paths at which `intended` (a server-side-apply dry-run result) differs from `live`,
 * in SSA's notation: `.spec.template.spec.containers[name="web"].image`, `.metadata.labels.tier`.
 * apiVersion and kind are ignored (the same object may be served in two versions).
 */
export function changedPaths(intended: KubeObject, live: KubeObject): string[] {
  const out: string[] = [];
  const { apiVersion: _a, kind: _k, ...a } = comparable(intended);
  const { apiVersion: _b, kind: _l, ...b } = comparable(live);
  walk(a, b, '', out);
  return out;
}

/** FieldsV1 (`{"f:spec":{"f:replicas":{}}}`) → the leaf paths it owns, in the notation above. */
export function fieldsV1Paths(fields: Json): string[] {
  const out: string[] = [];
  const visit = (node: Json, path: string) => {
    const children = isMap(node) ? Object.keys(node).filter((k) => k !== '.') : [];
    if (children.length === 0 || (isMap(node) && '.' in node)) {
      if (path) out.push(path);
    }
    for (const child of children) {
      const next = (node as JsonMap)[child];
      if (child.startsWith('f:')) visit(next, `${path}.${child.slice(2)}`);
      else if (child.startsWith('k:')) {
        let key: JsonMap = {};
        try {
          const parsed: unknown = JSON.parse(child.slice(2));
          if (isMap(parsed)) key = parsed;
        } catch {
          // an unparsable key names no field keelson could compare
          continue;
        }
        visit(next, `${path}${keyOf(key, Object.keys(key))}`);
      } else if (child.startsWith('v:')) visit(next, `${path}[=${child.slice(2)}]`);
      else if (child.startsWith('i:')) visit(next, `${path}[${child.slice(2)}]`);
    }
  };
  visit(fields, '');
  return out;
}

interface ManagedFieldsEntry {
  manager?: unknown;
  subresource?: unknown;
  fieldsV1?: unknown;
}

/** Paths the live object's field managers other than `fieldManager` set through the `scale` subresource. */
export function autoscaledPaths(live: KubeObject, fieldManager: string): string[] {
  const entries = live.metadata.managedFields;
  if (!Array.isArray(entries)) return [];
  return (entries as ManagedFieldsEntry[])
    .filter((entry) => entry.subresource === 'scale' && entry.manager !== fieldManager)
    .flatMap((entry) => fieldsV1Paths(entry.fieldsV1));
}

function within(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`);
}

export interface DriftAssessment {
  /** Every path an apply would change (empty: the apply is a no-op). */
  changed: string[];
  /** The changed paths that are drift: all but those an autoscaler owns. */
  drifted: string[];
}

/**
 * The paths of keelson's own object (not a dry-run) whose values differ from `live`: what its
 * apply changes, for an apply known to change the object without asking the server. Only the
 * fields keelson sets are compared, so server defaults are not differences; a value the server
 * normalises (a quantity, a port given as a string) may be named although unchanged, and a field
 * keelson stops setting (which the apply removes) is not named.
 */
export function ownChangedPaths(own: KubeObject, live: KubeObject): string[] {
  const out: string[] = [];
  const { apiVersion: _a, kind: _k, ...a } = comparable(own);
  const { apiVersion: _b, kind: _l, ...b } = comparable(live);
  walk(a, b, '', out, true);
  return out;
}

export function assessDrift(dryRun: KubeObject, live: KubeObject, fieldManager: string): DriftAssessment {
  const changed = changedPaths(dryRun, live);
  const autoscaled = autoscaledPaths(live, fieldManager);
  return { changed, drifted: changed.filter((path) => !autoscaled.some((prefix) => within(path, prefix))) };
}
