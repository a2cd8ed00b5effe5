// The core/v1 Events the controllers and the kubelet record for a rollout, as a real cluster's
// do: ScalingReplicaSet on the Deployment, SuccessfulCreate/SuccessfulDelete on the ReplicaSet,
// Scheduled, Pulling, Pulled, Created, Started, Failed and BackOff on pods. Cheap and bounded:
// written straight into the store (no managedFields, defaulting or validation to compute for an
// object nobody applies), and only the newest `capacity` are kept — a real cluster expires them
// after an hour; the oldest go first here.
//
// Each names the component that records it, in the form its client-go recorder writes, since
// tools (kubectl describe's From column, `--field-selector source=…`, events.k8s.io's
// reportingController) read it:
// - the legacy core/v1 recorder (tools/record), used by the controllers and the kubelet, sets
//   source {component, host}, reportingComponent = component, reportingInstance = host, the
//   first/last timestamps and count 1, and no eventTime;
// - the events.k8s.io recorder (tools/events), used by the scheduler, sets eventTime (MicroTime),
//   reportingController, reportingInstance `<controller>-<hostname>` and an action, and no
//   source, timestamps or count.
import { randomUUID } from 'node:crypto';
import type { SimClock } from '../clock.ts';
import { apiVersionOf, typeOf } from '../resources.ts';
import type { KObject, Store } from '../store.ts';

export const DEFAULT_EVENT_CAPACITY = 2_000;

/** A component recording through the core/v1 recorder: deployment-controller, kubelet (with its node). */
export interface CoreEventSource {
  /** `source.component` and `reportingComponent` */
  readonly component: string;
  /** `source.host` and `reportingInstance` */
  readonly host?: string;
}

/** A component recording through the events.k8s.io recorder: default-scheduler. */
export interface EventsApiSource {
  readonly reportingController: string;
  readonly reportingInstance: string;
  /** what it did (the scheduler's Scheduled event: `Binding`) */
  readonly action: string;
}

export type EventSource = CoreEventSource | EventsApiSource;

export class EventRecorder {
  private readonly store: Store;
  private readonly clock: SimClock;
  private readonly capacity: number;
  /** keys (`namespace/name`) of the events kept, oldest first */
  private readonly kept: string[] = [];
  private head = 0;
  private counter = 0;

  constructor(store: Store, clock: SimClock, capacity = DEFAULT_EVENT_CAPACITY) {
    this.store = store;
    this.clock = clock;
    this.capacity = capacity;
  }

  record(involved: KObject, type: 'Normal' | 'Warning', reason: string, message: string, source: EventSource, fieldPath?: string): void {
    const namespace = involved.metadata.namespace ?? 'default';
    const eventType = typeOf('Event');
    // a namespace on its way out takes no new content, as the API server refuses it
    const ns = this.store.get(typeOf('Namespace'), undefined, namespace);
    if (!ns || ns.metadata.deletionTimestamp) return;
    const now = this.clock.timestamp();
    const viaEventsApi = 'reportingController' in source;
    // client-go names events <object>.<unix nanos in hex>: here ms in hex and a counter, unique
    const name = `${involved.metadata.name}.${Math.floor(this.clock.now()).toString(16)}${(this.counter++ % 0x10000).toString(16).padStart(4, '0')}`;
    this.store.put(eventType, {
      apiVersion: apiVersionOf(eventType),
      kind: 'Event',
      metadata: { name, namespace, uid: randomUUID(), creationTimestamp: now },
      involvedObject: {
        kind: involved.kind,
        namespace: involved.metadata.namespace,
        name: involved.metadata.name,
        uid: involved.metadata.uid,
        apiVersion: involved.apiVersion,
        resourceVersion: involved.metadata.resourceVersion,
        ...(fieldPath ? { fieldPath } : {}),
      },
      reason,
      message,
      // fields in the order Go writes core/v1 Event; zero times null, an empty source {}
      source: viaEventsApi ? {} : { component: source.component, ...(source.host ? { host: source.host } : {}) },
      firstTimestamp: viaEventsApi ? null : now,
      lastTimestamp: viaEventsApi ? null : now,
      ...(viaEventsApi ? {} : { count: 1 }),
      type,
      eventTime: viaEventsApi ? this.clock.microTimestamp() : null,
      ...(viaEventsApi ? { action: source.action } : {}),
      reportingComponent: viaEventsApi ? source.reportingController : source.component,
      reportingInstance: viaEventsApi ? source.reportingInstance : (source.host ?? ''),
    });
    this.kept.push(`${namespace}/${name}`);
    while (this.kept.length - this.head > this.capacity) {
      const key = this.kept[this.head++]!;
      const slash = key.indexOf('/');
      this.store.remove(eventType, key.slice(0, slash), key.slice(slash + 1));
    }
    // drop the consumed front now and then, not on every event
    if (this.head > this.capacity) {
      this.kept.splice(0, this.head);
      this.head = 0;
    }
  }
}
