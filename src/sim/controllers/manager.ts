// Runs the controllers as controller-runtime does: each has a work queue of object keys, fed
// from store events (an object's own changes, and its controlled objects' changes for its
// owner), and works on those keys only — never a pass over every object. Work that is due at a
// simulated time (a pod ready after its start-up delay, a back-off ending, a progress deadline,
// minReadySeconds) is what a sync returns; it waits in one timer heap, which a steady tick looks
// at the head of. So the cost of a change is the cost of the objects it touches, whatever the
// size of the cluster. Rounds run in a macrotask after the events (coalesced), bounded per
// macrotask so HTTP keeps being served.
import type { KObject, StoreEvent } from '../store.ts';
import type { ControllerContext } from './context.ts';
import { syncDeploymentObject } from './deployment.ts';
import { bindClaim, collectGarbage, terminateNamespace } from './housekeeping.ts';
import { Kubelet } from './kubelet.ts';
import { TimerQueue, WorkQueue } from './queue.ts';
import { syncReplicaSet } from './replicaset.ts';
import { syncDaemonSet, syncJob, syncStatefulSet } from './workloads.ts';

const TICK_MS = 100;
const MAX_ROUNDS = 8;
/** After a sync threw: look again this much simulated time later (controller-runtime requeues on error). */
const RETRY_MS = 1_000;

/** One controller: the kind whose objects it syncs, and the sync (returning when it is due again). */
interface Controller {
  readonly name: string;
  /** the kind of object its keys name; undefined for the garbage collector (keys are uids) */
  readonly kind: string | undefined;
  readonly queue: WorkQueue<string>;
  sync(key: string): number | undefined | void;
}

const keyOf = (o: KObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

export class ControllerManager {
  private readonly ctx: ControllerContext;
  private readonly kubelet = new Kubelet();
  private readonly controllers: Controller[];
  private readonly byKind = new Map<string, Controller>();
  private readonly gc: Controller;
  private readonly namespaces: Controller;
  private readonly timers = new TimerQueue<string>();
  /** Namespaces being terminated: a change to anything in one queues the namespace again. */
  private readonly terminating = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private unsubscribe: (() => void) | undefined;
  private running = false;

  constructor(ctx: ControllerContext) {
    this.ctx = ctx;
    const byKey = (kind: string, sync: (obj: KObject) => number | undefined | void) => (key: string) => {
      const slash = key.indexOf('/');
      const obj = ctx.get(kind, slash > 0 ? key.slice(0, slash) : undefined, key.slice(slash + 1));
      return obj ? sync(obj) : undefined;
    };
    const controller = (name: string, kind: string | undefined, sync: (key: string) => number | undefined | void): Controller => ({ name, kind, queue: new WorkQueue(), sync });
    // The order of the old full pass: owners before what they own, the kubelet after both.
    this.namespaces = controller('namespaces', 'Namespace', byKey('Namespace', (ns) => terminateNamespace(ctx, ns)));
    this.gc = controller('gc', undefined, (uid) => collectGarbage(ctx, uid));
    this.controllers = [
      this.namespaces,
      this.gc,
      controller('deployments', 'Deployment', byKey('Deployment', (d) => syncDeploymentObject(ctx, d))),
      controller('replicasets', 'ReplicaSet', byKey('ReplicaSet', (rs) => syncReplicaSet(ctx, rs))),
      controller('statefulsets', 'StatefulSet', byKey('StatefulSet', (sts) => syncStatefulSet(ctx, sts))),
      controller('daemonsets', 'DaemonSet', byKey('DaemonSet', (ds) => syncDaemonSet(ctx, ds))),
      controller('jobs', 'Job', byKey('Job', (job) => syncJob(ctx, job))),
      controller('kubelet', 'Pod', byKey('Pod', (pod) => this.kubelet.sync(ctx, pod))),
      controller('pvc', 'PersistentVolumeClaim', byKey('PersistentVolumeClaim', (pvc) => bindClaim(ctx, pvc))),
    ];
    for (const c of this.controllers) if (c.kind) this.byKind.set(c.kind, c);
  }

  start(): void {
    this.unsubscribe = this.ctx.api.store.subscribe((e) => this.onEvent(e));
    this.timer = setInterval(() => this.tick(), TICK_MS);
    // what the store holds already (the seeded namespaces and roles)
    for (const c of this.controllers) {
      if (!c.kind || c === this.gc) continue;
      for (const obj of this.ctx.list(c.kind)) c.queue.add(keyOf(obj));
    }
    this.schedule();
  }

  stop(): void {
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  /** Maps one store event to the keys it concerns. */
  private onEvent(event: StoreEvent): void {
    const obj = event.object;
    const kind = event.resource.kind;
    const key = keyOf(obj);
    this.byKind.get(kind)?.queue.add(key);
    // the controller of this object (a pod's ReplicaSet, a ReplicaSet's Deployment) looks again
    const ns = obj.metadata.namespace;
    for (const o of event.previous ? [obj, event.previous] : [obj]) {
      for (const ref of o.metadata.ownerReferences ?? []) {
        if (ref.controller) this.byKind.get(ref.kind)?.queue.add(`${ns ?? ''}/${ref.name}`);
      }
    }
    const uid = obj.metadata.uid;
    if (event.type === 'DELETED') {
      if (kind === 'Pod' && uid) this.kubelet.forget(uid);
      // what it owned may now be garbage
      if (uid) for (const [, dependent] of this.ctx.api.store.dependents(uid)) this.gc.queue.add(dependent.metadata.uid!);
    } else if (uid && obj.metadata.ownerReferences?.length && !obj.metadata.ownerReferences.some((r) => this.ctx.api.store.hasUid(r.uid))) {
      this.gc.queue.add(uid); // created or re-owned after its owners went
    }
    if (kind === 'Namespace' && !ns) {
      if (event.type !== 'DELETED' && obj.metadata.deletionTimestamp) this.terminating.add(obj.metadata.name);
      else this.terminating.delete(obj.metadata.name);
    } else if (ns && this.terminating.has(ns)) this.namespaces.queue.add(`/${ns}`);
    this.schedule();
  }

  /** Moves the work due by now (simulated time) into the queues. */
  private tick(): void {
    const due = this.timers.popDue(this.ctx.now());
    if (due.length === 0) return;
    for (const entry of due) {
      const at = entry.indexOf('\n');
      this.controllers.find((c) => c.name === entry.slice(0, at))?.queue.add(entry.slice(at + 1));
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.immediate || this.running || !this.timer) return;
    this.immediate = setImmediate(() => {
      this.immediate = undefined;
      this.run();
    });
  }

  /** Rounds until every queue is empty; bounded, the rest in the next macrotask. */
  run(): void {
    this.running = true;
    try {
      for (let round = 0; round < MAX_ROUNDS && this.pending(); round++) {
        for (const c of this.controllers) this.drain(c);
      }
    } finally {
      this.running = false;
    }
    if (this.pending()) this.schedule();
  }

  private pending(): boolean {
    return this.controllers.some((c) => c.queue.size > 0);
  }

  private drain(c: Controller): void {
    for (const key of c.queue.take()) {
      let due: number | undefined | void;
      try {
        due = c.sync(key);
      } catch (error) {
        this.ctx.log.warn({ err: error, controller: c.name, key }, 'simulated controller failed');
        due = this.ctx.now() + RETRY_MS;
      }
      if (typeof due === 'number') this.timers.schedule(`${c.name}\n${key}`, due);
    }
  }
}
