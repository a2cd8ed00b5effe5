// events.k8s.io/v1 ↔ core/v1 Event conversion and the Event validation rules, as tables
// (upstream: pkg/apis/events/v1/conversion.go, pkg/apis/core/validation/events.go).
import { describe, expect, it } from 'vitest';
import { coreEventField, coreToEventsV1, eventProblems, eventsV1ToCore, EVENTS_V1_FIELD_LABELS } from '../../src/sim/eventsV1.ts';
import { deepEqual } from '../../src/sim/ssa.ts';
import type { StatusCause } from '../../src/sim/status.ts';
import type { KObject } from '../../src/sim/store.ts';

const meta = { name: 'web.1', namespace: 'shop', uid: 'u-1', resourceVersion: '7', creationTimestamp: '2025-01-01T00:00:00Z' };
const ref = { kind: 'Pod', namespace: 'shop', name: 'web-abc', uid: 'p-1', apiVersion: 'v1', resourceVersion: '5', fieldPath: 'spec.containers{main}' };
const related = { kind: 'Node', name: 'sim-node', apiVersion: 'v1' };

const core = (fields: Record<string, unknown>): KObject => ({ apiVersion: 'v1', kind: 'Event', metadata: { ...meta }, ...fields });
const v1 = (fields: Record<string, unknown>): KObject => ({ apiVersion: 'events.k8s.io/v1', kind: 'Event', metadata: { ...meta }, ...fields });

// Each row: the same Event as core/v1 and as events.k8s.io/v1 serve it (Go's JSON of each struct).
const PAIRS: { name: string; core: KObject; v1: KObject }[] = [
  {
    name: 'a kubelet event from the old recorder (source, timestamps, count)',
    core: core({
      involvedObject: ref,
      reason: 'Pulled',
      message: 'Successfully pulled image "nginx:1.27"',
      source: { component: 'kubelet', host: 'sim-node' },
      firstTimestamp: '2025-01-01T00:00:01Z',
      lastTimestamp: '2025-01-01T00:00:02Z',
      count: 3,
      type: 'Normal',
      eventTime: null,
      reportingComponent: 'kubelet',
      reportingInstance: 'sim-node',
    }),
    v1: v1({
      eventTime: null,
      reportingController: 'kubelet',
      reportingInstance: 'sim-node',
      reason: 'Pulled',
      regarding: ref,
      note: 'Successfully pulled image "nginx:1.27"',
      type: 'Normal',
      deprecatedSource: { component: 'kubelet', host: 'sim-node' },
      deprecatedFirstTimestamp: '2025-01-01T00:00:01Z',
      deprecatedLastTimestamp: '2025-01-01T00:00:02Z',
      deprecatedCount: 3,
    }),
  },
  {
    name: 'a new-style event (eventTime, series, action, related; no deprecated fields)',
    core: core({
      involvedObject: ref,
      reason: 'FailedScheduling',
      message: '0/1 nodes are available',
      source: {},
      firstTimestamp: null,
      lastTimestamp: null,
      type: 'Warning',
      eventTime: '2025-01-01T00:00:03.000000Z',
      series: { count: 4, lastObservedTime: '2025-01-01T00:01:00.000000Z' },
      action: 'Scheduling',
      related,
      reportingComponent: 'default-scheduler',
      reportingInstance: 'default-scheduler-sim',
    }),
    v1: v1({
      eventTime: '2025-01-01T00:00:03.000000Z',
      series: { count: 4, lastObservedTime: '2025-01-01T00:01:00.000000Z' },
      reportingController: 'default-scheduler',
      reportingInstance: 'default-scheduler-sim',
      action: 'Scheduling',
      reason: 'FailedScheduling',
      regarding: ref,
      related,
      note: '0/1 nodes are available',
      type: 'Warning',
      deprecatedSource: {},
      deprecatedFirstTimestamp: null,
      deprecatedLastTimestamp: null,
    }),
  },
  {
    name: 'an empty event: zero times are null, empty structs {}, core keeps its reporting strings',
    core: core({ involvedObject: {}, source: {}, firstTimestamp: null, lastTimestamp: null, eventTime: null, reportingComponent: '', reportingInstance: '' }),
    v1: v1({ eventTime: null, regarding: {}, deprecatedSource: {}, deprecatedFirstTimestamp: null, deprecatedLastTimestamp: null }),
  },
];

describe('events.k8s.io/v1 conversion', () => {
  it.each(PAIRS)('core → events.k8s.io: $name', ({ core: c, v1: e }) => {
    expect(coreToEventsV1(c)).toEqual(e);
  });

  it.each(PAIRS)('events.k8s.io → core: $name', ({ core: c, v1: e }) => {
    expect(eventsV1ToCore(e)).toEqual(c);
  });

  it('fills what the other version always writes and drops what neither has', () => {
    // a core event as a client might send it: no source, no timestamps, an unknown field
    const sparse = core({ involvedObject: ref, reason: 'Deployed', message: 'ok', type: 'Normal', bogus: 1 });
    const served = coreToEventsV1(sparse);
    expect(served).toEqual(v1({ eventTime: null, reason: 'Deployed', regarding: ref, note: 'ok', type: 'Normal', deprecatedSource: {}, deprecatedFirstTimestamp: null, deprecatedLastTimestamp: null }));
    expect(eventsV1ToCore(served)).toEqual(
      core({ involvedObject: ref, reason: 'Deployed', message: 'ok', source: {}, firstTimestamp: null, lastTimestamp: null, type: 'Normal', eventTime: null, reportingComponent: '', reportingInstance: '' }),
    );
  });

  it('relabels every events.k8s.io field selector label to a core label the storage selects on', () => {
    expect(EVENTS_V1_FIELD_LABELS).toMatchObject({ 'regarding.name': 'involvedObject.name', reportingController: 'reportingComponent', source: 'source', type: 'type' });
    const stored = PAIRS[1]!.core;
    // `source` falls back to the reporting controller when the event has no source component
    expect(coreEventField(stored, 'source')).toBe('default-scheduler');
    expect(coreEventField(PAIRS[0]!.core, 'source')).toBe('kubelet');
    expect(coreEventField(stored, 'involvedObject.fieldPath')).toBe('spec.containers{main}');
  });
});

const newStyle = (fields: Record<string, unknown> = {}): KObject =>
  eventsV1ToCore(v1({ eventTime: '2025-01-01T00:00:03.000000Z', reportingController: 'keelson.dev/deployer', reportingInstance: 'keelson-0', action: 'Deploy', reason: 'Deployed', regarding: ref, type: 'Normal', ...fields }));
const fieldsOf = (causes: StatusCause[]) => causes.map((c) => `${c.field}: ${c.message}`);

describe('Event validation', () => {
  it.each([
    { name: 'a complete new-style event', event: newStyle(), problems: [] },
    { name: 'no eventTime, type or reporting fields', event: eventsV1ToCore(v1({ regarding: ref, reason: 'X' })), problems: ['eventTime: Required value', 'type: Invalid value: "": has invalid value: '] },
    {
      name: 'an eventTime needs the reporting fields and an action',
      event: newStyle({ reportingController: undefined, reportingInstance: undefined, action: undefined }),
      // an empty qualified name is reported three times, as upstream does (required, empty, pattern)
      problems: [
        'reportingController: Required value',
        'reportingController: Invalid value: "": name part must be non-empty',
        expect.stringMatching(/^reportingController: Invalid value: "": name part must consist of/),
        'reportingInstance: Required value',
        'action: Required value',
      ],
    },
    { name: 'a reporting controller that is not a qualified name', event: newStyle({ reportingController: 'bad controller!' }), problems: [expect.stringMatching(/^reportingController: Invalid value: "bad controller!": name part must consist of/)] },
    {
      name: 'deprecated fields are refused on create',
      event: newStyle({ deprecatedSource: { component: 'x' }, deprecatedFirstTimestamp: '2025-01-01T00:00:00Z', deprecatedCount: 2 }),
      problems: ['firstTimestamp: Invalid value: "": needs to be unset', 'count: Invalid value: "": needs to be unset', 'source: Invalid value: "": needs to be unset'],
    },
    { name: 'a series starts at 2', event: newStyle({ series: { count: 1 } }), problems: ['series.count: Invalid value: "": should be at least 2', 'series.lastObservedTime: Required value'] },
    { name: 'a note over 1 kB', event: newStyle({ note: 'x'.repeat(1025) }), problems: ['message: Invalid value: "": can have at most 1024 characters'] },
    { name: 'the regarded object in another namespace', event: newStyle({ regarding: { ...ref, namespace: 'other' } }), problems: [] },
  ])('events.k8s.io create: $name', ({ event, problems }) => {
    expect(fieldsOf(eventProblems(event, undefined, true, deepEqual))).toEqual(problems);
  });

  it.each([
    { name: 'an old-style event about an object in its namespace', event: PAIRS[0]!.core, problems: [] },
    { name: 'an old-style event in another namespace than its object', event: core({ involvedObject: { ...ref, namespace: 'other' } }), problems: ['involvedObject.namespace: Invalid value: "other": does not match event.namespace'] },
    { name: 'an old-style event about a cluster-scoped object outside "default"', event: core({ involvedObject: { kind: 'Node', name: 'n' } }), problems: ['involvedObject.namespace: Invalid value: "": does not match event.namespace'] },
    { name: 'no strict rules: no type, deprecated fields set', event: core({ involvedObject: ref, count: 2, source: { component: 'x' } }), problems: [] },
  ])('core/v1 create (legacy rules only): $name', ({ event, problems }) => {
    expect(fieldsOf(eventProblems(event, undefined, false, deepEqual))).toEqual(problems);
  });

  it('events.k8s.io updates may change the series and metadata, nothing else', () => {
    const before = newStyle();
    const series = newStyle({ series: { count: 2, lastObservedTime: '2025-01-01T00:02:00.000000Z' } });
    expect(eventProblems(series, before, true, deepEqual)).toEqual([]);
    const edited = newStyle({ note: 'changed', reportingController: 'other' });
    expect(fieldsOf(eventProblems(edited, before, true, deepEqual))).toEqual(['message: Invalid value: "changed": field is immutable', 'reportingController: Invalid value: "other": field is immutable']);
    // through core/v1 the same edit is allowed (legacy validation only)
    expect(eventProblems(edited, before, false, deepEqual)).toEqual([]);
  });
});
