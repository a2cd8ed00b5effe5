// The simulated scheduler and kubelet: binds pods to the one node, then derives each pod's status
// from simulated time since creation: ContainerCreating → Running/Ready after the start-up delay;
// images matching the pull-failure patterns go ErrImagePull → ImagePullBackOff; crash-loop
// images run ~1 s, crash, and back off 10 s, 20 s, … 300 s with restartCount rising; pods of
// Jobs (restartPolicy Never/OnFailure) complete after running for the start-up delay.
import { clone } from '../ssa.ts';
import type { KObject } from '../store.ts';
import { EVENT_SOURCES, NODE_NAME, type Any, type ControllerContext } from './context.ts';

const RUN_BEFORE_CRASH_MS = 1_000;
const BACKOFF_AFTER_PULL_ERROR_MS = 5_000;

interface PodRuntime {
  createdAt: number;
  ip: string;
}

export class Kubelet {
  private readonly runtimes = new Map<string, PodRuntime>();
  private ipCounter = 2;

  /**
   * Syncs one pod; returns the simulated time its status changes next by itself (start-up
   * delay over, a crash, a back-off ending), or undefined when only a change to it would.
   */
  sync(ctx: ControllerContext, pod: KObject): number | undefined {
    if (pod.metadata.deletionTimestamp) return undefined;
    const uid = pod.metadata.uid!;
    let runtime = this.runtimes.get(uid);
    if (!runtime) {
      runtime = { createdAt: ctx.now(), ip: `10.244.0.${this.ipCounter++ % 250}` };
      this.runtimes.set(uid, runtime);
    }
    try {
      return this.syncPod(ctx, pod, runtime);
    } catch (error) {
      ctx.log.debug({ err: error, pod: pod.metadata.name }, 'simulated kubelet sync failed');
      return undefined;
    }
  }

  /** The pod is gone: its container runtime goes with it. */
  forget(uid: string): void {
    this.runtimes.delete(uid);
  }

  private syncPod(ctx: ControllerContext, pod: KObject, runtime: PodRuntime): number | undefined {
    const spec = pod.spec as Any;
    if (!spec.nodeName) {
      const bound = clone(pod);
      (bound.spec as Any).nodeName = NODE_NAME;
      pod = ctx.update(bound, 'kube-scheduler');
      ctx.event(pod, 'Normal', 'Scheduled', `Successfully assigned ${pod.metadata.namespace}/${pod.metadata.name} to ${NODE_NAME}`, EVENT_SOURCES.scheduler);
    }
    const prev = (pod.status ?? {}) as Any;
    if (prev.phase === 'Succeeded' || prev.phase === 'Failed') return undefined;
    const now = ctx.now();
    const elapsed = now - runtime.createdAt;
    // Every "has this much time passed" question below goes through before(): a "not yet" is
    // the next moment this pod's status changes by itself, when the kubelet looks again.
    let next = Number.POSITIVE_INFINITY;
    const before = (ms: number): boolean => {
      if (elapsed >= ms) return false;
      next = Math.min(next, ms);
      return true;
    };
    const delay = ctx.kubelet.podStartupDelayMs;
    const ts = (ms: number) => ctx.timestamp(runtime.createdAt + ms);
    const restartPolicy: string = spec.restartPolicy ?? 'Always';
    const containers = (spec.containers ?? []) as Any[];
    let phase = 'Pending';
    let allReady = containers.length > 0;
    let allTerminated = containers.length > 0;
    let anyFailed = false;
    const statuses = containers.map((c) => {
      const image: string = c.image ?? '';
      const base = { name: c.name, image, imageID: '', ready: false, restartCount: 0, started: false };
      const pullFails = ctx.kubelet.pullFailurePatterns.some((p) => p.test(image));
      const crashes = ctx.kubelet.crashLoopPatterns.some((p) => p.test(image));
      const pullErrorAt = Math.min(delay, 1_000);
      if (pullFails) {
        allReady = false;
        allTerminated = false;
        if (before(pullErrorAt)) return { ...base, state: { waiting: { reason: 'ContainerCreating' } } };
        if (before(pullErrorAt + BACKOFF_AFTER_PULL_ERROR_MS)) {
          return { ...base, state: { waiting: { reason: 'ErrImagePull', message: `failed to pull and unpack image "${image}": not found (simulated)` } } };
        }
        return { ...base, state: { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}"` } } };
      }
      if (before(delay)) {
        allReady = false;
        allTerminated = false;
        return { ...base, state: { waiting: { reason: 'ContainerCreating' } } };
      }
      const withIds = { ...base, imageID: `sim://${image}`, containerID: `sim://${pod.metadata.uid}-${c.name}` };
      if (crashes) {
        if (restartPolicy === 'Never') {
          if (before(delay + RUN_BEFORE_CRASH_MS)) {
            allReady = false;
            allTerminated = false;
            return { ...withIds, started: true, state: { running: { startedAt: ts(delay) } } };
          }
          anyFailed = true;
          allReady = false;
          return { ...withIds, state: { terminated: { exitCode: 1, reason: 'Error', startedAt: ts(delay), finishedAt: ts(delay + RUN_BEFORE_CRASH_MS) } } };
        }
        // Walk the crash timeline: run, crash, back off (10 s doubling to 300 s), run again.
        allReady = false;
        allTerminated = false;
        let start = delay;
        let restarts = 0;
        for (;;) {
          const crashAt = start + RUN_BEFORE_CRASH_MS;
          const last = restarts > 0 ? { terminated: { exitCode: 1, reason: 'Error', startedAt: ts(start - backoff(restarts) - RUN_BEFORE_CRASH_MS), finishedAt: ts(start - backoff(restarts)) } } : {};
          if (before(crashAt)) return { ...withIds, started: true, restartCount: restarts, state: { running: { startedAt: ts(start) } }, lastState: last };
          restarts++;
          const restartAt = crashAt + backoff(restarts);
          if (before(restartAt)) {
            return {
              ...withIds,
              restartCount: restarts,
              state: { waiting: { reason: 'CrashLoopBackOff', message: `back-off ${backoff(restarts) / 1000}s restarting failed container=${c.name} pod=${pod.metadata.name}` } },
              lastState: { terminated: { exitCode: 1, reason: 'Error', startedAt: ts(start), finishedAt: ts(crashAt) } },
            };
          }
          start = restartAt;
        }
      }
      if (restartPolicy !== 'Always' && !before(delay + Math.max(delay, 1_000))) {
        allReady = false;
        return { ...withIds, state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: ts(delay), finishedAt: ts(delay + Math.max(delay, 1_000)) } } };
      }
      allTerminated = false;
      return { ...withIds, ready: true, started: true, state: { running: { startedAt: ts(delay) } } };
    });
    if (!before(delay) && statuses.some((s) => s.started || s.restartCount > 0 || 'terminated' in s.state)) phase = 'Running';
    if (allTerminated) phase = anyFailed ? 'Failed' : 'Succeeded';
    if (anyFailed && restartPolicy === 'Never' && statuses.every((s) => 'terminated' in s.state)) phase = 'Failed';
    const ready = allReady && phase === 'Running';
    const prevConds = (prev.conditions ?? []) as Any[];
    const cond = (type: string, status: boolean, at: number, reason?: string) => {
      const s = status ? 'True' : 'False';
      const existing = prevConds.find((c) => c.type === type);
      const c: Any = { type, status: s, lastProbeTime: null, lastTransitionTime: existing?.status === s ? existing.lastTransitionTime : ctx.timestamp(status ? runtime.createdAt + at : now) };
      if (!status && reason) c.reason = reason;
      return c;
    };
    const status: Any = {
      phase,
      conditions: [
        cond('PodReadyToStartContainers', !before(Math.min(delay, 1_000)), Math.min(delay, 1_000)),
        cond('Initialized', true, 0),
        cond('Ready', ready, delay, phase === 'Succeeded' ? 'PodCompleted' : 'ContainersNotReady'),
        cond('ContainersReady', ready, delay, phase === 'Succeeded' ? 'PodCompleted' : 'ContainersNotReady'),
        cond('PodScheduled', true, 0),
      ],
      hostIP: '192.168.49.2',
      hostIPs: [{ ip: '192.168.49.2' }],
      podIP: runtime.ip,
      podIPs: [{ ip: runtime.ip }],
      startTime: ctx.timestamp(runtime.createdAt),
      containerStatuses: statuses,
      qosClass: 'BestEffort',
    };
    recordContainerEvents(ctx, pod, containers, (prev.containerStatuses ?? []) as Any[], statuses as Any[], delay);
    ctx.updateStatus(pod, status, 'kubelet');
    return Number.isFinite(next) ? runtime.createdAt + next : undefined;
  }
}

/** The kubelet's events for what changed in each container's state since the last status. */
function recordContainerEvents(ctx: ControllerContext, pod: KObject, containers: Any[], before: Any[], after: Any[], delay: number): void {
  containers.forEach((c, i) => {
    const prev = before.find((s) => s.name === c.name);
    const next = after[i];
    if (!next) return;
    const at = `spec.containers{${c.name}}`;
    const event = (type: 'Normal' | 'Warning', reason: string, message: string) => ctx.event(pod, type, reason, message, EVENT_SOURCES.kubelet, at);
    const waiting = (s: Any | undefined): string | undefined => s?.state?.waiting?.reason;
    if (!prev) event('Normal', 'Pulling', `Pulling image "${next.image}"`);
    const reason = waiting(next);
    if (reason && reason !== waiting(prev)) {
      if (reason === 'ErrImagePull') {
        event('Warning', 'Failed', `Failed to pull image "${next.image}": ${next.state.waiting.message ?? 'not found'}`);
        event('Warning', 'Failed', 'Error: ErrImagePull');
      } else if (reason === 'ImagePullBackOff') {
        event('Normal', 'BackOff', `Back-off pulling image "${next.image}"`);
        event('Warning', 'Failed', 'Error: ImagePullBackOff');
      } else if (reason === 'CrashLoopBackOff') {
        event('Warning', 'BackOff', `Back-off restarting failed container ${c.name} in pod ${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})`);
      }
    }
    if (next.state?.running && (!prev?.state?.running || (prev.restartCount ?? 0) !== (next.restartCount ?? 0))) {
      if (!prev?.imageID) event('Normal', 'Pulled', `Successfully pulled image "${next.image}" in ${delay}ms`);
      else event('Normal', 'Pulled', `Container image "${next.image}" already present on machine`);
      event('Normal', 'Created', `Created container: ${c.name}`);
      event('Normal', 'Started', `Started container ${c.name}`);
    }
  });
}

function backoff(restarts: number): number {
  return Math.min(10_000 * 2 ** (restarts - 1), 300_000);
}
