// Hosting: starting a deployment's actor, restored from its persisted snapshot when there is a
// usable one, and the per-actor record the runtime keeps (its fencing epoch, its journal queue,
// its fence). Stopping is `drop` in runtime.ts: it must also discard the queue.
import { createActor, type Actor } from 'xstate';
import { z } from 'zod';
import { migratePersistedSnapshot, type deploymentMachine, type DeploymentSnapshot, type MachineConfig } from '../../machines/deployment.machine.ts';
import type { Logger } from '../logger.ts';
import { leaseDigest } from './leases.ts';
import { journaledFrom, type Journaled } from './projection.ts';

export type DeploymentActor = Actor<ReturnType<typeof deploymentMachine.provide>>;
type ProvidedMachine = ReturnType<typeof deploymentMachine.provide>;

export interface Host {
  readonly id: string;
  /** the lease epoch this actor was started under: every journal write carries it */
  readonly epoch: number;
  readonly actor: DeploymentActor;
  /** aborted when the actor is dropped: its effects stop before their next cluster write */
  readonly fence: AbortController;
  /** performance.now() when hosted (a heartbeat sent before it cannot speak for it) */
  readonly hostedAt: number;
  /** leaseDigest(id, epoch): the heartbeat compares the sum over the actors with the leases it renewed */
  readonly leaseDigest: number;
  journaled: Journaled;
  /** xstate hands back the same snapshot object when an event changed nothing (most TICKs) */
  lastSnapshot: DeploymentSnapshot | undefined;
  /** the top-level state of lastSnapshot, for the tick's per-state gauge (which reads no snapshot) */
  state: string;
  /** the generation last sent to the actor (quarantine lasts until the row's is newer) */
  generation: number;
  chain: Promise<void>;
  notifiedAt: number | null;
  stopped: boolean;
  /** set when the actor threw: it is stopped, the record stays so the lease keeps a holder */
  quarantined: { readonly generation: number; readonly message: string } | null;
  /** the live-health subscription of the deployed inventory while healthy or degraded (runtime.ts) */
  health: { readonly key: string; readonly stop: () => void } | null;
  /** the routine drift check the runtime runs outside the actor, in flight (restingDriftCheck) */
  driftCheck: AbortController | null;
  /** when the next routine drift check is due after the runtime's last one (null: none ran yet) */
  driftCheckedUntil: number | null;
}

const PersistedSnapshot = z.looseObject({
  status: z.literal('active'),
  value: z.union([z.string(), z.record(z.string(), z.unknown())]),
  context: z.looseObject({ deploymentId: z.string(), observedGeneration: z.number(), config: z.looseObject({}) }),
});

export const SnapshotRow = z.object({
  deployment_id: z.string(),
  snapshot: z.unknown(),
  machine_version: z.string(),
  seq: z.number(),
});
export type SnapshotRow = z.infer<typeof SnapshotRow>;

/** The persisted snapshot as this process restores it, or undefined (start afresh). */
export function restorable(
  row: SnapshotRow,
  machineConfig: Partial<MachineConfig>,
  driftSpreadMs: number,
  log: Logger,
): DeploymentSnapshot | undefined {
  // an older machine version's snapshot is brought up to date first (it may hold rendered objects)
  const parsed = PersistedSnapshot.safeParse(migratePersistedSnapshot(row.snapshot, row.machine_version));
  if (parsed.success) {
    // configuration comes from this process, not from the process that persisted it
    const snapshot = parsed.data as unknown as { context: { config: MachineConfig; driftCheckAt: number | null } };
    snapshot.context.config = { ...snapshot.context.config, ...machineConfig };
    // nobody watched the cluster while no process hosted this actor: check it soon, spread
    // over a few ticks so thousands of restored actors do not hit the API server at once
    const spread = Math.min(snapshot.context.config.driftIntervalMs, driftSpreadMs);
    snapshot.context.driftCheckAt = Date.now() + Math.floor(Math.random() * spread);
    return snapshot as unknown as DeploymentSnapshot;
  }
  log.warn(
    { deploymentId: row.deployment_id, version: row.machine_version, issue: parsed.success ? undefined : parsed.error.message },
    'persisted snapshot is unusable; starting the actor afresh',
  );
  return undefined;
}

/** The type of the event each actor is processing, as its machine's transition was given it. */
const processing = new WeakMap<object, string>();
const observedMachines = new WeakMap<ProvidedMachine, ProvidedMachine>();

/**
 * The machine, its transition noting the type of the event each actor processes. The runtime
 * journals a transition with the event that made it, and observers get only the snapshot; but
 * an actor runs one event at a time (its mailbox) and calls `transition(snapshot, event)` and
 * then, synchronously and for that event, notifies its observers of the returned snapshot
 * (xstate's Actor._process → update), so the note an observer reads is its snapshot's event.
 * This replaces `inspect`, which built an inspection event for every event, action, microstep
 * and snapshot of every actor and of its effects — garbage on every drift check — for the one
 * kind the runtime used. Every other method is the machine's (the prototype).
 */
function observed(machine: ProvidedMachine): ProvidedMachine {
  let wrapped = observedMachines.get(machine);
  if (!wrapped) {
    const logic = Object.create(machine) as ProvidedMachine;
    logic.transition = (snapshot, event, scope) => {
      processing.set(scope.self, event.type);
      return machine.transition(snapshot, event, scope);
    };
    observedMachines.set(machine, logic);
    wrapped = logic;
  }
  return wrapped;
}

export interface HostCallbacks {
  onSnapshot(host: Host, snapshot: DeploymentSnapshot, eventType: string): void;
  /** the actor threw (guard, action): it is in error status and does nothing more */
  onError(host: Host, error: unknown): void;
  /** before the actor starts: a restored actor re-runs its in-flight effect at once, which looks the record up */
  onCreated(host: Host): void;
}

export function startHost(
  machine: ProvidedMachine,
  id: string,
  epoch: number,
  restored: DeploymentSnapshot | undefined,
  seq: number,
  machineConfig: Partial<MachineConfig>,
  callbacks: HostCallbacks,
): Host {
  const record: Host = {
    id,
    epoch,
    actor: undefined as unknown as DeploymentActor,
    fence: new AbortController(),
    hostedAt: performance.now(),
    leaseDigest: leaseDigest(id, epoch),
    // what was journaled already: only later changes are written
    journaled: journaledFrom(restored, seq),
    lastSnapshot: undefined,
    state: 'idle',
    generation: restored?.context.observedGeneration ?? 0,
    chain: Promise.resolve(),
    notifiedAt: null,
    stopped: false,
    quarantined: null,
    health: null,
    driftCheck: null,
    driftCheckedUntil: null,
  };
  const actorRef = createActor(observed(machine), {
    id: `deployment:${id}`,
    input: { deploymentId: id, config: machineConfig },
    ...(restored ? { snapshot: restored } : {}),
  });
  (record as { actor: DeploymentActor }).actor = actorRef;
  actorRef.subscribe({
    // every snapshot the actor takes, the first (at start, no transition: xstate.init) included
    next: (snapshot) => {
      if (snapshot.status === 'error') return;
      callbacks.onSnapshot(record, snapshot, processing.get(actorRef) ?? 'xstate.init');
    },
    // an error observer: without one xstate rethrows the actor's error outside, and it would
    // take the whole process (every other deployment) down
    error: (error: unknown) => callbacks.onError(record, error),
  });
  callbacks.onCreated(record);
  actorRef.start();
  return record;
}
