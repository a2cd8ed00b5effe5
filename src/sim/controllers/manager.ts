// Runs every controller level-based over the whole store: after any store change (coalesced to
// one pass per macrotask) and on a steady tick so simulated time moves pods and deadlines along.
// One interval timer, cleared by stop(): no per-object timers.
import type { StoreEvent } from '../store.ts';
import type { ControllerContext } from './context.ts';
import { reconcileDeployments } from './deployment.ts';
import { bindClaims, collectGarbage, terminateNamespaces } from './housekeeping.ts';
import { Kubelet } from './kubelet.ts';
import { reconcileReplicaSets } from './replicaset.ts';
import { reconcileDaemonSets, reconcileJobs, reconcileStatefulSets } from './workloads.ts';

const TICK_MS = 100;
const MAX_PASSES = 8;

export class ControllerManager {
  private readonly ctx: ControllerContext;
  private readonly kubelet = new Kubelet();
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private unsubscribe: (() => void) | undefined;
  private dirty = false;
  private running = false;

  constructor(ctx: ControllerContext) {
    this.ctx = ctx;
  }

  start(): void {
    this.unsubscribe = this.ctx.api.store.subscribe((_e: StoreEvent) => this.schedule());
    this.timer = setInterval(() => this.schedule(), TICK_MS);
    this.schedule();
  }

  stop(): void {
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  private schedule(): void {
    this.dirty = true;
    if (this.immediate || this.running || !this.timer) return;
    this.immediate = setImmediate(() => {
      this.immediate = undefined;
      this.run();
    });
  }

  /** One reconcile round: passes until nothing changes (bounded; the tick picks up the rest). */
  run(): void {
    this.running = true;
    try {
      for (let pass = 0; pass < MAX_PASSES && this.dirty; pass++) {
        this.dirty = false;
        this.pass();
      }
    } finally {
      this.running = false;
    }
  }

  private pass(): void {
    const steps: [string, () => void][] = [
      ['namespaces', () => terminateNamespaces(this.ctx)],
      ['gc', () => collectGarbage(this.ctx)],
      ['deployments', () => reconcileDeployments(this.ctx)],
      ['replicasets', () => reconcileReplicaSets(this.ctx)],
      ['statefulsets', () => reconcileStatefulSets(this.ctx)],
      ['daemonsets', () => reconcileDaemonSets(this.ctx)],
      ['jobs', () => reconcileJobs(this.ctx)],
      ['kubelet', () => this.kubelet.reconcile(this.ctx)],
      ['pvc', () => bindClaims(this.ctx)],
    ];
    for (const [name, step] of steps) {
      try {
        step();
      } catch (error) {
        this.ctx.log.warn({ err: error, controller: name }, 'simulated controller failed');
      }
    }
  }
}
