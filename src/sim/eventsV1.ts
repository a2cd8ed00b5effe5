// events.k8s.io/v1 Event: the same objects as core/v1 Event under other field names, as on a real
// API server, where both groups are one storage (core's) and only the serialisation differs. Pure.
// The mapping is upstream's (pkg/apis/events/v1/conversion.go and zz_generated.conversion.go):
//
//   events.k8s.io/v1              core/v1
//   regarding                  ↔  involvedObject
//   note                       ↔  message
//   reportingController        ↔  reportingComponent   (the internal field is ReportingController)
//   deprecatedSource           ↔  source
//   deprecatedFirstTimestamp   ↔  firstTimestamp
//   deprecatedLastTimestamp    ↔  lastTimestamp
//   deprecatedCount            ↔  count
//   eventTime, series, action, related, type, reason, reportingInstance, metadata: same names
//
// Each side is written as Go's encoding/json writes that version's struct: a zero time is `null`,
// an empty struct `{}`, omitempty strings and counts are left out, and core's reportingComponent
// and reportingInstance (no omitempty) are always there. Fields neither version has are dropped,
// as decoding into the typed struct drops them.
import type { StatusCause } from './status.ts';
import type { KObject } from './store.ts';

type Obj = Record<string, unknown>;

export const EVENTS_GROUP = 'events.k8s.io';
export const EVENTS_API_VERSION = 'events.k8s.io/v1';

/**
 * events.k8s.io/v1 field selector labels → the core labels the storage selects on (upstream's
 * AddFieldLabelConversionsForEvent); any other label is refused, as there.
 */
export const EVENTS_V1_FIELD_LABELS: Readonly<Record<string, string>> = {
  'metadata.name': 'metadata.name',
  'metadata.namespace': 'metadata.namespace',
  reason: 'reason',
  'regarding.kind': 'involvedObject.kind',
  'regarding.namespace': 'involvedObject.namespace',
  'regarding.name': 'involvedObject.name',
  'regarding.uid': 'involvedObject.uid',
  'regarding.apiVersion': 'involvedObject.apiVersion',
  'regarding.resourceVersion': 'involvedObject.resourceVersion',
  'regarding.fieldPath': 'involvedObject.fieldPath',
  reportingController: 'reportingComponent',
  source: 'source',
  type: 'type',
};

/** The core/v1 field selector labels (pkg/apis/core/v1 conversion's list for Event). */
export const CORE_EVENT_FIELD_LABELS: readonly string[] = [
  'metadata.name',
  'metadata.namespace',
  ...['kind', 'namespace', 'name', 'uid', 'apiVersion', 'resourceVersion', 'fieldPath'].map((f) => `involvedObject.${f}`),
  'reason',
  'reportingComponent',
  'source',
  'type',
];

const present = (v: unknown): boolean => v !== undefined && v !== null && v !== '' && v !== 0;

function put(out: Obj, key: string, value: unknown): void {
  if (present(value)) out[key] = value;
}

/** A core/v1 Event as events.k8s.io/v1 serves it. */
export function coreToEventsV1(core: KObject): KObject {
  const c = core as Obj;
  const out: Obj = { apiVersion: EVENTS_API_VERSION, kind: 'Event', metadata: core.metadata, eventTime: c.eventTime ?? null };
  put(out, 'series', c.series);
  put(out, 'reportingController', c.reportingComponent);
  put(out, 'reportingInstance', c.reportingInstance);
  put(out, 'action', c.action);
  put(out, 'reason', c.reason);
  out.regarding = c.involvedObject ?? {};
  put(out, 'related', c.related);
  put(out, 'note', c.message);
  put(out, 'type', c.type);
  out.deprecatedSource = c.source ?? {};
  out.deprecatedFirstTimestamp = c.firstTimestamp ?? null;
  out.deprecatedLastTimestamp = c.lastTimestamp ?? null;
  put(out, 'deprecatedCount', c.count);
  return out as KObject;
}

/** An events.k8s.io/v1 Event as core/v1 stores and serves it. */
export function eventsV1ToCore(event: KObject): KObject {
  const e = event as Obj;
  const out: Obj = { apiVersion: 'v1', kind: 'Event', metadata: event.metadata, involvedObject: e.regarding ?? {} };
  put(out, 'reason', e.reason);
  put(out, 'message', e.note);
  out.source = e.deprecatedSource ?? {};
  out.firstTimestamp = e.deprecatedFirstTimestamp ?? null;
  out.lastTimestamp = e.deprecatedLastTimestamp ?? null;
  put(out, 'count', e.deprecatedCount);
  put(out, 'type', e.type);
  out.eventTime = e.eventTime ?? null;
  put(out, 'series', e.series);
  put(out, 'action', e.action);
  put(out, 'related', e.related);
  out.reportingComponent = e.reportingController ?? '';
  out.reportingInstance = e.reportingInstance ?? '';
  return out as KObject;
}

/**
 * A selectable field of a stored (core) Event, by core label (upstream's ToSelectableFields):
 * `source` is the source component, or the reporting controller when there is none (an event
 * written through events.k8s.io has no source).
 */
export function coreEventField(core: KObject, label: string): unknown {
  const c = core as Obj;
  if (label === 'source') return ((c.source as Obj | undefined)?.component as string | undefined) || c.reportingComponent;
  let value: unknown = core;
  for (const part of label.split('.')) value = (value as Obj | undefined)?.[part];
  return value;
}

// pkg/apis/core/validation/events.go
const REPORTING_INSTANCE_LIMIT = 128;
const ACTION_LIMIT = 128;
const REASON_LIMIT = 128;
const NOTE_LIMIT = 1024;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

const isZeroTime = (v: unknown): boolean => v === undefined || v === null || v === '';
const len = (v: unknown): number => (typeof v === 'string' ? v.length : 0);
const required = (field: string): StatusCause => ({ field, reason: 'FieldValueRequired', message: 'Required value' });
const invalidEmpty = (field: string, detail: string): StatusCause => ({ field, message: `Invalid value: "": ${detail}` });

/** Go's IsQualifiedName messages, for reportingController (a name with an optional DNS prefix). */
function qualifiedNameProblems(value: string): string[] {
  const parts = value.split('/');
  let name = value;
  const problems: string[] = [];
  if (parts.length === 2) {
    const [prefix, rest] = parts as [string, string];
    name = rest;
    if (prefix.length === 0) problems.push('prefix part must be non-empty');
    else if (!DNS_SUBDOMAIN.test(prefix) || prefix.length > 253) {
      problems.push("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
    }
  } else if (parts.length > 2) {
    return ["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"];
  }
  if (name.length === 0) problems.push('name part must be non-empty');
  else if (name.length > 63) problems.push('name part must be no more than 63 characters');
  // unconditional, as in Go: an empty name fails the pattern too
  if (!QUALIFIED_NAME.test(name)) {
    problems.push("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')");
  }
  return problems;
}

/** legacyValidateEvent: what every Event must satisfy, whichever group it is written through. */
function legacyProblems(core: Obj): StatusCause[] {
  const causes: StatusCause[] = [];
  const namespace = (core.metadata as Obj | undefined)?.namespace as string | undefined;
  const involved = (core.involvedObject ?? {}) as Obj;
  const involvedNs = (involved.namespace as string | undefined) ?? '';
  const mismatch = (): StatusCause => ({ field: 'involvedObject.namespace', message: `Invalid value: ${JSON.stringify(involvedNs)}: does not match event.namespace` });
  if (isZeroTime(core.eventTime)) {
    // an event about a cluster-scoped object lives in "default" (or nowhere, for old clients)
    if (involvedNs === '' ? namespace !== '' && namespace !== undefined && namespace !== 'default' : namespace !== involvedNs) causes.push(mismatch());
  } else {
    if (involvedNs === '' && namespace !== 'default' && namespace !== 'kube-system') causes.push(mismatch());
    const controller = (core.reportingComponent as string | undefined) ?? '';
    if (controller.length === 0) causes.push(required('reportingController'));
    for (const problem of qualifiedNameProblems(controller)) causes.push({ field: 'reportingController', message: `Invalid value: ${JSON.stringify(controller)}: ${problem}` });
    if (len(core.reportingInstance) === 0) causes.push(required('reportingInstance'));
    if (len(core.reportingInstance) > REPORTING_INSTANCE_LIMIT) causes.push(invalidEmpty('reportingInstance', `can have at most ${REPORTING_INSTANCE_LIMIT} characters`));
    if (len(core.action) === 0) causes.push(required('action'));
    if (len(core.action) > ACTION_LIMIT) causes.push(invalidEmpty('action', `can have at most ${ACTION_LIMIT} characters`));
    if (len(core.reason) === 0) causes.push(required('reason'));
    if (len(core.reason) > REASON_LIMIT) causes.push(invalidEmpty('reason', `can have at most ${REASON_LIMIT} characters`));
    if (len(core.message) > NOTE_LIMIT) causes.push(invalidEmpty('message', `can have at most ${NOTE_LIMIT} characters`));
  }
  return causes;
}

function seriesProblems(core: Obj): StatusCause[] {
  const series = core.series as Obj | undefined | null;
  if (!series) return [];
  const causes: StatusCause[] = [];
  if (typeof series.count !== 'number' || series.count < 2) causes.push(invalidEmpty('series.count', 'should be at least 2'));
  if (isZeroTime(series.lastObservedTime)) causes.push(required('series.lastObservedTime'));
  return causes;
}

const IMMUTABLE = ['involvedObject', 'reason', 'message', 'source', 'firstTimestamp', 'lastTimestamp', 'count', 'type', 'eventTime', 'action', 'related', 'reportingComponent', 'reportingInstance'] as const;

/**
 * ValidateEventCreate / ValidateEventUpdate, on the core form (field paths are the internal
 * type's, as upstream reports them whichever group the request came through). Writes through
 * core/v1 get only the legacy checks; events.k8s.io/v1 is strict: a new event needs eventTime,
 * a type of Normal or Warning and none of the deprecated fields, and an update may change little
 * more than the series.
 */
export function eventProblems(core: KObject, previous: KObject | undefined, viaEventsV1: boolean, sameJson: (a: unknown, b: unknown) => boolean): StatusCause[] {
  const c = core as Obj;
  const causes = legacyProblems(c);
  if (!viaEventsV1) return causes;
  if (!previous) {
    causes.push(...seriesProblems(c));
    if (isZeroTime(c.eventTime)) causes.push(required('eventTime'));
    if (c.type !== 'Normal' && c.type !== 'Warning') causes.push(invalidEmpty('type', `has invalid value: ${typeof c.type === 'string' ? c.type : ''}`));
    if (!isZeroTime(c.firstTimestamp)) causes.push(invalidEmpty('firstTimestamp', 'needs to be unset'));
    if (!isZeroTime(c.lastTimestamp)) causes.push(invalidEmpty('lastTimestamp', 'needs to be unset'));
    if (present(c.count)) causes.push(invalidEmpty('count', 'needs to be unset'));
    const source = (c.source ?? {}) as Obj;
    if (present(source.component) || present(source.host)) causes.push(invalidEmpty('source', 'needs to be unset'));
    return causes;
  }
  const p = previous as Obj;
  if (!sameJson(c.series ?? null, p.series ?? null)) causes.push(...seriesProblems(c));
  for (const field of IMMUTABLE) {
    if (!sameJson(c[field] ?? null, p[field] ?? null)) {
      // upstream names the internal field, so core's reportingComponent reads reportingController
      const name = field === 'reportingComponent' ? 'reportingController' : field;
      causes.push({ field: name, message: `Invalid value: ${JSON.stringify(c[field] ?? null)}: field is immutable` });
    }
  }
  return causes;
}
