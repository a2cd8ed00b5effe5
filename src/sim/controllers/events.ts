// The core/v1 Events the controllers and the kubelet record for a rollout, as a real cluster's
// do: ScalingReplicaSet on the Deployment, SuccessfulCreate/SuccessfulDelete on the ReplicaSet,
// Scheduled, Pulling, Pulled, Created, Started, Failed and BackOff on pods. Cheap and bounded:
// written straight into the store (no managedFields, defaulting or validation to compute for an
// object nobody applies), and only the newest `capacity` are kept — a real cluster expires them
// after an hour; the oldest go first here.
import { randomUUID } from 'node:crypto';
import type { SimClock } from '../clock.ts';
import { apiVersionOf, typeOf } from '../resources.ts';
import type { KObject, Store } from '../store.ts';

export const DEFAULT_EVENT_CAPACITY = 2_000;

export interface EventSource {
  /** `source.component` and `reportingComponent`: kube-controller-manager, kubelet, default-scheduler */
  readonly component: string;
  readonly host?: string;
}

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
      source: { component: source.component, ...(source.host ? { host: source.host } : {}) },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      type,
      eventTime: null,
      reportingComponent: source.component,
      reportingInstance: source.host ?? '',
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
