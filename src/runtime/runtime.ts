// The actor host: exactly one deployment actor per row this process holds the lease of.
// Wake-ups come from LISTEN keelson_deployments (a hint: the actor re-reads the row) and from
// the tick, which also rescans for rows whose generation is ahead of observed_generation, so a
// lost notification costs at most one tick. Every state change is journaled in one transaction
// (journal.ts), strictly in order per actor.
import { createHash, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { sql } from 'slonik';
import { createActor, type Actor, type InspectionEvent } from 'xstate';
import { z } from 'zod';
import {
  deploymentMachine,
  MACHINE_VERSION,
  migratePersistedSnapshot,
  topLevelState,
  type DeploymentSnapshot,
  type MachineConfig,
} from '../../machines/deployment.machine.ts';
import { createListener, type Subscriber } from '../db/listen.ts';
import type { Db } from '../db/pool.ts';
import { CURRENT_STATUSES, DeploymentRow, type CurrentStatus } from '../db/rows.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { rowToDesired } from './desired.ts';
import { toMachineActors, type BeforeEffect, type Effects } from './effects.ts';
import { DeploymentGoneError, LostOwnershipError, writeJournal, type JournalEntry } from './journal.ts';
import { claim, heartbeat, registerInstance, release } from './leases.ts';
import { RolloutSlots } from './semaphore.ts';

export interface RuntimeOptions {
  readonly db: Db;
  readonly databaseUrl: string;
  readonly log: Logger;
  readonly effects: Effects;
  readonly metrics?: Metrics;
  readonly tickIntervalMs?: number;
  readonly maxConcurrentRollouts?: number;
  readonly machineConfig?: Partial<MachineConfig>;
  /** how long a lease lives without renewal; takeover happens within ttl + heartbeat */
  readonly leaseTtlMs?: number;
  readonly heartbeatMs?: number;
  readonly instanceId?: string;
}

export interface TransitionNotice {
  readonly deploymentId: string;
  readonly seq: number;
  readonly from: string | null;
  readonly to: string;
  readonly event: string;
  readonly generation: number;
  /** when the journal transaction committed (ms since epoch) */
  readonly committedAt: number;
}

export interface Runtime {
  readonly instanceId: string;
  readonly events: EventEmitter<{ transition: [TransitionNotice] }>;
  start(): Promise<void>;
  /** Journals every actor, stops them and hands their leases back. */
  stop(): Promise<void>;
  isListening(): boolean;
  hosted(): string[];
  stats(): { hosted: number; activeRollouts: number; lastTickMs: number };
}

/**
 * At rest: no action in flight. `stopped.scaling` is not (the stop is under way), although its
 * top-level state, which current_status mirrors, is `stopped`.
 */
export function isAtRest(path: string): boolean {
  return path === 'idle' || path === 'failed' || path === 'stopped.idle' || path === 'healthy' || path.startsWith('healthy.');
}

type DeploymentActor = Actor<ReturnType<typeof deploymentMachine.provide>>;

interface Host {
  readonly id: string;
  readonly actor: DeploymentActor;
  seq: number;
  /** xstate hands back the same snapshot object when an event changed nothing (most TICKs) */
  lastSnapshot: DeploymentSnapshot | undefined;
  /** the last journaled change, normalised (see changeKey) */
  lastKey: string;
  lastState: string | null;
  lastCompletedId: string | null;
  chain: Promise<void>;
  waking: boolean;
  again: boolean;
  notifiedAt: number | null;
  stopped: boolean;
}

const PersistedSnapshot = z.looseObject({
  status: z.literal('active'),
  value: z.union([z.string(), z.record(z.string(), z.unknown())]),
  context: z.looseObject({ deploymentId: z.string(), observedGeneration: z.number(), config: z.looseObject({}) }),
});

const SnapshotRow = z.object({
  deployment_id: z.string(),
  snapshot: z.unknown(),
  machine_version: z.string(),
  seq: z.number(),
});

async function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  return await new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export function statePath(value: DeploymentSnapshot['value'] | unknown): string {
  if (typeof value === 'string') return value;
  const [key, child] = Object.entries(value as Record<string, unknown>)[0] ?? ['idle', undefined];
  return child === undefined ? key : `${key}.${statePath(child)}`;
}

/**
 * Healthy deployments move between `healthy.idle` and `healthy.checking` (drift checks) all
 * the time; those moves are not journaled: restoring into `healthy.idle` re-runs a due check.
 */
function journaledState(path: string): string {
  return path.startsWith('healthy') ? 'healthy' : path;
}

/** A digest, not the JSON itself: 10,000 hosted actors would otherwise keep 10,000 copies. */
function changeKey(snapshot: DeploymentSnapshot): string {
  const json = JSON.stringify({ s: journaledState(statePath(snapshot.value)), c: { ...snapshot.context, driftCheckAt: null } });
  return createHash('sha1').update(json).digest('base64');
}

export function createRuntime(options: RuntimeOptions): Runtime {
  const { db, log } = options;
  const instanceId = options.instanceId ?? randomUUID();
  const tickIntervalMs = options.tickIntervalMs ?? 10_000;
  const leaseTtlMs = options.leaseTtlMs ?? 10_000;
  const heartbeatMs = options.heartbeatMs ?? Math.max(50, Math.floor(leaseTtlMs / 3));
  const machineConfig = options.machineConfig ?? {};
  const slots = new RolloutSlots(options.maxConcurrentRollouts ?? 32);
  const hosts = new Map<string, Host>();
  const before: BeforeEffect = async (effect, id, signal) => {
    if (effect === 'findRollbackTarget') {
      // it reads deployment_history: the rows this actor has queued (an auto-rollback's failed
      // deploy, a success a moment ago) must be committed first. The snapshot that started this
      // effect is enqueued in the same macrotask, after the effect started.
      await new Promise((resolve) => setImmediate(resolve));
      const chain = hosts.get(id)?.chain;
      if (chain) await abortable(chain, signal);
    }
    if (effect !== 'checkDrift') await slots.enter(id, signal);
  };
  const machine = deploymentMachine.provide({ actors: toMachineActors(options.effects, before) });
  const events = new EventEmitter<{ transition: [TransitionNotice] }>();
  let listener: Subscriber | undefined;
  let listening = false;
  let closing = false;
  let timers: NodeJS.Timeout[] = [];
  let heartbeatRunning: Promise<void> | undefined;
  let lastTickMs = 0;

  // ---- journal ----

  function onSnapshot(host: Host, snapshot: DeploymentSnapshot, eventType: string): void {
    if (host.stopped || snapshot === host.lastSnapshot) return;
    host.lastSnapshot = snapshot;
    const path = statePath(snapshot.value);
    const atRest = isAtRest(path);
    if (atRest) slots.leave(host.id);
    const key = changeKey(snapshot);
    if (key === host.lastKey) return;
    host.lastKey = key;
    const state = journaledState(path);
    const transition = state !== host.lastState ? { from: host.lastState, to: state, event: eventType } : null;
    host.lastState = state;
    const { context } = snapshot;
    const completed = context.completed && context.completed.actionId !== host.lastCompletedId ? context.completed : null;
    if (completed) host.lastCompletedId = completed.actionId;
    const entry: JournalEntry = {
      deploymentId: host.id,
      instanceId,
      seq: ++host.seq,
      snapshot: machine.getPersistedSnapshot(snapshot),
      machineVersion: MACHINE_VERSION,
      state: path,
      status: topLevelState(snapshot.value) as CurrentStatus,
      transition,
      generation: context.work?.generation ?? context.desired?.generation ?? context.observedGeneration,
      // observed_generation = generation tells pipelines the newest desired state is fully acted
      // on (succeeded or failed): it moves only when the actor comes to rest
      observedGeneration: atRest ? context.observedGeneration : 0,
      completed,
      deployed: context.deployed,
      lastError: context.lastError,
    };
    const notifiedAt = host.notifiedAt;
    const leavesRest = transition !== null && isAtRest(transition.from ?? 'idle') && !atRest;
    if (leavesRest) host.notifiedAt = null;
    host.chain = host.chain.then(() => journal(host, entry, leavesRest ? notifiedAt : null));
  }

  async function journal(host: Host, entry: JournalEntry, notifiedAt: number | null): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await writeJournal(db, entry);
        const committedAt = Date.now();
        if (entry.transition) {
          options.metrics?.transitions.inc({ from: entry.transition.from ?? 'none', to: entry.transition.to.split('.')[0] });
          if (notifiedAt !== null) options.metrics?.wakeupLatency.observe((performance.now() - notifiedAt) / 1000);
          events.emit('transition', {
            deploymentId: entry.deploymentId,
            seq: entry.seq,
            from: entry.transition.from,
            to: entry.transition.to,
            event: entry.transition.event,
            generation: entry.generation,
            committedAt,
          });
        }
        if (entry.completed && result.historyWritten) {
          const phases = entry.completed.phases;
          const first = phases[0] ? Date.parse(phases[0].started_at) : committedAt;
          options.metrics?.rolloutDuration.observe(
            { action: entry.completed.action, status: entry.completed.status },
            Math.max(0, committedAt - first) / 1000,
          );
          log.info(
            { deploymentId: entry.deploymentId, action: entry.completed.action, status: entry.completed.status, image: entry.completed.imageRef, error: entry.completed.error ?? undefined },
            `${entry.completed.action} ${entry.completed.status}`,
          );
        }
        return;
      } catch (error) {
        if (error instanceof LostOwnershipError || error instanceof DeploymentGoneError) {
          log.warn({ deploymentId: host.id, reason: error.message }, 'dropping actor');
          drop(host);
          return;
        }
        if (closing && attempt > 3) {
          log.error({ deploymentId: host.id, err: errorMessage(error) }, 'journal write lost at shutdown; the actor resumes from its previous snapshot');
          return;
        }
        // the database is unreachable: keep the entry and retry in order; nothing is lost
        const delay = Math.min(5000, 100 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2);
        log.warn({ deploymentId: host.id, attempt, err: errorMessage(error) }, 'journal write failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  // ---- hosting ----

  function drop(host: Host): void {
    if (host.stopped) return;
    host.stopped = true;
    host.actor.stop();
    slots.leave(host.id);
    if (hosts.get(host.id) === host) hosts.delete(host.id);
  }

  function host(id: string, snapshotRow: z.infer<typeof SnapshotRow> | undefined): Host {
    let restored: DeploymentSnapshot | undefined;
    if (snapshotRow) {
      // an older machine version's snapshot is brought up to date first (it may hold rendered objects)
      const parsed = PersistedSnapshot.safeParse(migratePersistedSnapshot(snapshotRow.snapshot, snapshotRow.machine_version));
      if (parsed.success) {
        // configuration comes from this process, not from the process that persisted it
        const snapshot = parsed.data as unknown as { context: { config: MachineConfig; driftCheckAt: number | null } };
        snapshot.context.config = { ...snapshot.context.config, ...machineConfig };
        // nobody watched the cluster while no process hosted this actor: check it soon, spread
        // over a few ticks so thousands of restored actors do not hit the API server at once
        const spread = Math.min(snapshot.context.config.driftIntervalMs, 10 * tickIntervalMs);
        snapshot.context.driftCheckAt = Date.now() + Math.floor(Math.random() * spread);
        restored = snapshot as unknown as DeploymentSnapshot;
      } else {
        log.warn(
          { deploymentId: id, version: snapshotRow.machine_version, issue: parsed.success ? undefined : parsed.error.message },
          'persisted snapshot is unusable; starting the actor afresh',
        );
      }
    }
    const record: Host = {
      id,
      actor: undefined as unknown as DeploymentActor,
      seq: snapshotRow?.seq ?? 0,
      lastSnapshot: undefined,
      lastKey: '',
      lastState: null,
      lastCompletedId: null,
      chain: Promise.resolve(),
      waking: false,
      again: false,
      notifiedAt: null,
      stopped: false,
    };
    // the inspector may be called while createActor() runs, before the ref exists
    const ref: { current?: DeploymentActor } = {};
    const inspect = (event: InspectionEvent) => {
      if (event.type === '@xstate.snapshot' && ref.current && event.actorRef === ref.current) {
        onSnapshot(record, event.snapshot as DeploymentSnapshot, event.event.type);
      }
    };
    const actorRef = createActor(machine, {
      id: `deployment:${id}`,
      input: { deploymentId: id, config: machineConfig },
      ...(restored ? { snapshot: restored } : {}),
      inspect,
    });
    ref.current = actorRef;
    (record as { actor: DeploymentActor }).actor = actorRef;
    if (restored) {
      // what was journaled already: only later changes are written
      record.lastKey = changeKey(restored);
      record.lastState = journaledState(statePath(restored.value));
      record.lastCompletedId = restored.context.completed?.actionId ?? null;
    }
    hosts.set(id, record);
    actorRef.start();
    return record;
  }

  async function adopt(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const array = sql.array(ids, 'uuid');
    const [rows, snapshots] = await Promise.all([
      db.any(sql.type(DeploymentRow)`select * from deployments where id = any(${array})`),
      db.any(sql.type(SnapshotRow)`select deployment_id, snapshot, machine_version, seq from deployment_snapshots where deployment_id = any(${array})`),
    ]);
    const snapshotById = new Map(snapshots.map((row) => [row.deployment_id, row]));
    for (const row of rows) {
      if (closing || hosts.has(row.id)) continue;
      const record = host(row.id, snapshotById.get(row.id));
      record.actor.send({ type: 'DESIRED_CHANGED', desired: rowToDesired(row) });
    }
    log.debug({ count: rows.length }, 'adopted deployments');
  }

  /** Re-reads the row and tells the actor; coalesces wake-ups that arrive while one runs. */
  async function wake(id: string): Promise<void> {
    const record = hosts.get(id);
    if (!record) {
      if (closing) return;
      const claimed = await claim(db, instanceId, leaseTtlMs, { ids: [id] });
      await adopt(claimed);
      return;
    }
    if (record.waking) {
      record.again = true;
      return;
    }
    record.waking = true;
    try {
      do {
        record.again = false;
        const row = await db.maybeOne(sql.type(DeploymentRow)`select * from deployments where id = ${id}`);
        if (record.stopped) return;
        if (!row) {
          log.info({ deploymentId: id }, 'deployment deleted; stopping its actor');
          drop(record);
          return;
        }
        record.actor.send({ type: 'DESIRED_CHANGED', desired: rowToDesired(row) });
      } while (record.again && !record.stopped);
    } finally {
      record.waking = false;
    }
  }

  function wakeSafely(id: string): void {
    wake(id).catch((error: unknown) => log.warn({ deploymentId: id, err: errorMessage(error) }, 'wake-up failed; the next tick retries'));
  }

  // ---- wake-up sources ----

  async function rescan(): Promise<void> {
    const rows = await db.any(sql.type(z.object({ id: z.string() }))`
      select d.id from deployments d
      join deployment_leases l on l.deployment_id = d.id and l.instance_id = ${instanceId}
      where d.generation > d.observed_generation`);
    for (const { id } of rows) wakeSafely(id);
  }

  function tick(): void {
    const started = performance.now();
    const now = Date.now();
    const counts = new Map<string, number>(CURRENT_STATUSES.map((s) => [s, 0]));
    for (const record of hosts.values()) {
      record.actor.send({ type: 'TICK', now });
      const state = topLevelState(record.actor.getSnapshot().value);
      counts.set(state, (counts.get(state) ?? 0) + 1);
    }
    for (const [state, count] of counts) options.metrics?.deploymentsByState.set({ state }, count);
    lastTickMs = performance.now() - started;
    rescan().catch((error: unknown) => log.warn({ err: errorMessage(error) }, 'rescan failed; retrying at the next tick'));
  }

  async function ownershipCycle(): Promise<void> {
    const beat = await heartbeat(db, instanceId, leaseTtlMs);
    for (const record of [...hosts.values()]) {
      if (!beat.owned.has(record.id)) {
        log.warn({ deploymentId: record.id }, 'lease lost; another process hosts this deployment now');
        drop(record);
      }
    }
    const share = Math.ceil(beat.totalDeployments / beat.liveInstances);
    if (hosts.size < share) {
      await adopt(await claim(db, instanceId, leaseTtlMs, { limit: share - hosts.size }));
    } else if (hosts.size > share + 1) {
      // another instance joined: hand over resting deployments until the split is fair
      const excess = [...hosts.values()]
        .filter((r) => isAtRest(statePath(r.actor.getSnapshot().value)) && !r.waking)
        .slice(0, hosts.size - share);
      for (const record of excess) {
        await record.chain;
        drop(record);
      }
      if (excess.length > 0) {
        await release(db, instanceId, excess.map((r) => r.id));
        log.info({ released: excess.length, share }, 'rebalanced deployments to other instances');
      }
    }
  }

  function runOwnershipCycle(): void {
    if (heartbeatRunning || closing) return;
    heartbeatRunning = ownershipCycle()
      .catch((error: unknown) => log.warn({ err: errorMessage(error) }, 'lease heartbeat failed; retrying'))
      .finally(() => {
        heartbeatRunning = undefined;
      });
  }

  async function startListener(attempt = 0): Promise<void> {
    if (closing) return;
    const subscriber = createListener(options.databaseUrl);
    listener = subscriber;
    subscriber.events.on('connected', () => {
      listening = true;
      log.debug('listening on keelson_deployments');
      // notifications sent while the connection was down are gone: look at every row
      rescan().catch((error: unknown) => log.warn({ err: errorMessage(error) }, 'rescan after reconnect failed'));
    });
    subscriber.events.on('reconnect', (n) => {
      listening = false;
      log.warn({ attempt: n }, 'LISTEN connection lost; reconnecting');
    });
    subscriber.events.on('error', (error) => {
      listening = false;
      log.warn({ err: error.message }, 'LISTEN connection failed; replacing it');
      // pg-listen gives up after a failed re-initialisation: start a new subscriber
      void subscriber.close().catch(() => undefined);
      if (listener === subscriber) scheduleListenerRestart(1);
    });
    subscriber.notifications.on('keelson_deployments', (payload: unknown) => {
      const id = String(payload);
      const record = hosts.get(id);
      if (record && isAtRest(statePath(record.actor.getSnapshot().value))) record.notifiedAt ??= performance.now();
      wakeSafely(id);
    });
    try {
      await subscriber.connect();
      await subscriber.listenTo('keelson_deployments');
    } catch (error) {
      listening = false;
      log.warn({ err: errorMessage(error), attempt }, 'cannot LISTEN yet; retrying (the tick covers wake-ups meanwhile)');
      void subscriber.close().catch(() => undefined);
      if (listener === subscriber) scheduleListenerRestart(attempt + 1);
    }
  }

  function scheduleListenerRestart(attempt: number): void {
    if (closing) return;
    const delay = Math.min(5000, 100 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2);
    const timer = setTimeout(() => void startListener(attempt), delay);
    timers.push(timer);
  }

  return {
    instanceId,
    events,
    isListening: () => listening,
    hosted: () => [...hosts.keys()],
    stats: () => ({ hosted: hosts.size, activeRollouts: slots.active, lastTickMs }),
    async start() {
      await registerInstance(db, instanceId);
      await startListener();
      await ownershipCycle();
      timers.push(setInterval(tick, tickIntervalMs), setInterval(runOwnershipCycle, heartbeatMs));
      log.info({ instanceId, hosted: hosts.size, tickIntervalMs, leaseTtlMs }, 'runtime started');
    },
    async stop() {
      if (closing) return;
      closing = true;
      for (const timer of timers) clearInterval(timer);
      timers = [];
      await heartbeatRunning;
      await listener?.close().catch(() => undefined);
      listening = false;
      // every change is journaled as it happens; wait for the queued writes, then stop
      const records = [...hosts.values()];
      await Promise.all(records.map((r) => r.chain));
      for (const record of records) drop(record);
      await release(db, instanceId).catch((error: unknown) =>
        log.warn({ err: errorMessage(error) }, 'could not release leases; they expire on their own'),
      );
      log.info({ instanceId, persisted: records.length }, 'runtime stopped');
    },
  };
}
