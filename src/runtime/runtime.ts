// The actor host: exactly one deployment actor per row this process holds the lease of.
// Wake-ups come from LISTEN keelson_deployments (a hint: the actor re-reads the row) and from
// the tick, which also rescans for rows whose generation is ahead of observed_generation, so a
// lost notification costs at most one tick. Every state change is journaled in one transaction
// (journal.ts), strictly in order per actor, under the actor's lease epoch (its fencing token).
//
// The jobs live in their own files: projection.ts (snapshot → journal entry, pure), hosting.ts
// (start/restore an actor), wakeups.ts (coalescing, the ownership mutex), leases.ts (the lease
// SQL), ownership.ts (heartbeat on its own connection, self-fencing), ../db/listen.ts (LISTEN).
// This file wires them and owns the journal queues.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { sql } from 'slonik';
import { z } from 'zod';
import {
  deploymentMachine,
  MACHINE_VERSION,
  restingDriftCheck,
  restingDueAt,
  restsHealthy,
  tickMatters,
  topLevelState,
  type CanaryCommand,
  type DeploymentSnapshot,
  type DriftInput,
  type DriftResult,
  type LiveHealthStatus,
  type MachineConfig,
  type ObjectRef,
} from '../../machines/deployment.machine.ts';
import { backoffMs, createListener, type Listener } from '../db/listen.ts';
import { prepared, type Db } from '../db/pool.ts';
import { CURRENT_STATUSES, DeploymentRow } from '../db/rows.ts';
import { errorMessage, TerminalError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { DESIRED_COLUMNS, DesiredRow, rowToDesired } from './desired.ts';
import { linkSignals, toMachineActors, type BeforeEffect, type Effects, type TargetEffects } from './effects.ts';
import { restorable, SnapshotRow, startHost, type Host } from './hosting.ts';
import {
  DeploymentGoneError,
  JournalConflictError,
  LostOwnershipError,
  StaleEpochError,
  writeJournal,
  writeQuarantine,
  type JournalEntry,
} from './journal.ts';
import { claim, DuplicateInstanceError, release, type Heartbeat } from './leases.ts';
import { createLeaseKeeper } from './ownership.ts';
import { isAtRest, project, statePath } from './projection.ts';
import { stepContext } from './stepContext.ts';
import { RolloutSlots } from './semaphore.ts';
import { TickSchedule } from './tickSchedule.ts';
import { Coalescer, Mutex } from './wakeups.ts';

export { isAtRest, statePath } from './projection.ts';

export interface RuntimeOptions {
  readonly db: Db;
  readonly databaseUrl: string;
  readonly log: Logger;
  readonly effects: Effects & Partial<TargetEffects>;
  readonly metrics?: Metrics;
  readonly tickIntervalMs?: number;
  readonly maxConcurrentRollouts?: number;
  readonly machineConfig?: Partial<MachineConfig>;
  /** how long a lease lives without renewal (KEELSON_LEASE_TTL); takeover happens after it expired */
  readonly leaseTtlMs?: number;
  /** default: a quarter of the TTL */
  readonly heartbeatMs?: number;
  /** the lease is taken as lost this long before it expires by the database's clock (default: a fifth of the TTL) */
  readonly leaseMarginMs?: number;
  /** KEELSON_INSTANCE_ID: a restarted process with the same id reclaims its own leases at once */
  readonly instanceId?: string;
  /** journal entries waiting for the database, over all actors; past it the process stops rather than drop one */
  readonly maxQueuedEntries?: number;
  /**
   * Admission: deployments taken out of rest at once, plus queued entries, that new work waits
   * below (a woken row, a claimed one); default half of maxQueuedEntries. Rollouts beyond the
   * rollout slots only wait for a slot anyway, so this costs no throughput.
   */
  readonly maxInFlight?: number;
  /** how long stop() waits for queued journal writes (the database may be away) */
  readonly stopTimeoutMs?: number;
  /**
   * Called when this process must not go on (another incarnation took its instance id, the
   * journal backlog is over its bound). Default: log at fatal and exit with status 70.
   */
  readonly onFatal?: (error: Error) => void;
  /**
   * Live health of an inventory, told when it changes (the kube client's subscribeHealth: from
   * the shared cluster cache, no request per deployment). Without it nothing watches a healthy
   * deployment's workloads after verification.
   */
  readonly watchHealth?: (deploymentId: string, inventory: readonly ObjectRef[], listener: (observation: { status: LiveHealthStatus; message: string }) => void) => () => void;
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

export interface RuntimeStats {
  readonly hosted: number;
  readonly activeRollouts: number;
  readonly lastTickMs: number;
  /** journal entries waiting to be written */
  readonly queuedEntries: number;
  /** entries of dropped actors, discarded rather than committed */
  readonly discardedEntries: number;
  /** times the lease validity ran out and every actor was dropped */
  readonly selfFences: number;
}

export interface Runtime {
  readonly instanceId: string;
  /** a uuid per process start */
  readonly incarnation: string;
  readonly events: EventEmitter<{ transition: [TransitionNotice] }>;
  start(): Promise<void>;
  /** Journals every actor, stops them and hands their leases back. */
  stop(): Promise<void>;
  isListening(): boolean;
  /**
   * Whether this process certainly holds its leases: its last heartbeat succeeded and the lease
   * validity has not run out. False while self-fenced or while the heartbeat fails, even if the
   * API's pool still answers; `/readyz` reports it.
   */
  holdsLeases(): boolean;
  hosted(): string[];
  /** the lease epoch of a hosted deployment's actor */
  epochOf(deploymentId: string): number | undefined;
  stats(): RuntimeStats;
}

/** The journal backlog is over its bound: the process exits rather than drop a completed change. */
export class JournalBacklogError extends TerminalError {
  constructor(limit: number) {
    super(`${limit} journal entries are waiting for the database; stopping rather than dropping one`, { code: 'journal_backlog' });
  }
}

/** Another incarnation with the same instance id took over (it found this one's session gone). */
export class SupersededError extends TerminalError {
  constructor(instanceId: string) {
    super(`another keelson process took over instance id "${instanceId}"; this one stops`, { code: 'instance_superseded' });
  }
}

async function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  return await new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

async function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

class FencedError extends TerminalError {
  constructor(deploymentId: string) {
    super(`the actor of deployment ${deploymentId} was fenced (its lease is no longer certainly held)`, { code: 'fenced' });
  }
}

export function createRuntime(options: RuntimeOptions): Runtime {
  const { db, log } = options;
  const instanceId = options.instanceId ?? randomUUID();
  const incarnation = randomUUID();
  const tickIntervalMs = options.tickIntervalMs ?? 10_000;
  const leaseTtlMs = options.leaseTtlMs ?? 10_000;
  const heartbeatMs = options.heartbeatMs ?? Math.max(50, Math.floor(leaseTtlMs / 4));
  const leaseMarginMs = options.leaseMarginMs ?? Math.floor(leaseTtlMs / 5);
  const maxQueued = options.maxQueuedEntries ?? 10_000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 15_000;
  const machineConfig = options.machineConfig ?? {};
  const onFatal =
    options.onFatal ??
    ((error: Error) => {
      log.fatal({ err: error.message }, 'keelson cannot go on');
      process.exit(70);
    });
  const slots = new RolloutSlots(options.maxConcurrentRollouts ?? 32);
  const hosts = new Map<string, Host>();
  // the hosted actors a TICK can change, by when (set at each snapshot change, see onSnapshot)
  const schedule = new TickSchedule();
  const wakeups = new Coalescer();
  const ownership = new Mutex();
  const keeper = createLeaseKeeper({
    databaseUrl: options.databaseUrl,
    instanceId,
    incarnation,
    ttlMs: leaseTtlMs,
    heartbeatMs,
    marginMs: leaseMarginMs,
    log,
  });

  const before: BeforeEffect = async (effect, id, signal) => {
    // the cheap local fence check: a dropped actor, or a process past its lease validity,
    // starts no effect (and the fence signal stops a running one before its next request)
    const record = hosts.get(id);
    // the validity may have ended a moment before its timer fires: fence now, so the failure
    // this throw causes is never journaled (the actor is stopped first)
    if (!keeper.isValid()) selfFence();
    if (!record || record.stopped) throw new FencedError(id);
    // Write-ahead: an effect starts once the journal holds the state it runs in (the snapshot
    // that started it is enqueued in the same macrotask, after the effect started). So an actor
    // never runs ahead of its journal — the backlog stays bounded by the actors in flight, however
    // fast the effects — and findRollbackTarget, which reads deployment_history, sees the rows
    // this actor queued (an auto-rollback's failed deploy, a success a moment ago).
    await new Promise((resolve) => setImmediate(resolve));
    await abortable(record.chain, signal);
    if (effect !== 'checkDrift') await slots.enter(id, signal);
  };
  const fenceOf = (id: string): AbortSignal | undefined => hosts.get(id)?.fence.signal;
  // Drift found by a routine check the runtime ran outside the actor (checkDriftAtRest), for the
  // machine's own check to answer with, so the finding is acted on without checking twice. Only
  // for the release it was found on: one the invoke never reached is dropped at the next check.
  const driftFindings = new Map<string, { readonly deployed: DriftInput['deployed']; readonly result: DriftResult }>();
  const checkDrift = options.effects.checkDrift.bind(options.effects);
  const effects: Effects & Partial<TargetEffects> = Object.assign(Object.create(options.effects) as Effects & Partial<TargetEffects>, {
    checkDrift: async (input: DriftInput, signal: AbortSignal): Promise<DriftResult> => {
      const found = driftFindings.get(input.deploymentId);
      driftFindings.delete(input.deploymentId);
      return found?.deployed === input.deployed ? found.result : await checkDrift(input, signal);
    },
  });
  const machine = deploymentMachine.provide({ actors: toMachineActors(effects, before, fenceOf) });
  const events = new EventEmitter<{ transition: [TransitionNotice] }>();
  let listener: Listener | undefined;
  let closing = false;
  let fatal = false;
  let timers: NodeJS.Timeout[] = [];
  let cycleRunning: Promise<void> | undefined;
  let heartbeatFailures = 0;
  // the last heartbeat succeeded (a failing one may still leave time on the lease validity)
  let heartbeatOk = false;
  let lastTickMs = 0;
  let queued = 0;
  // Admission: new work (a woken row's desired state, a claimed deployment) waits while the
  // actors out of rest plus the queued entries reach maxInFlight, so a fleet-wide UPDATE or ten
  // thousand new rows pace themselves to the database instead of reaching the bound, which is
  // for a database that stopped answering. Actors already out of rest are not held back: each
  // has about one entry queued at a time (write-ahead, in `before`).
  const admitBelow = Math.max(1, options.maxInFlight ?? Math.floor(maxQueued / 2));
  let admissionWaiters: Array<() => void> = [];
  // admitted wake-ups still running (reading their row): each is about to journal an entry
  let admitted = 0;
  // hosted actors not at rest: each has about one entry queued at a time (effects wait for
  // their actor's journal), so bounding them bounds the backlog
  const busy = new Set<string>();
  let discarded = 0;
  let selfFences = 0;
  let stopDeadline = Number.POSITIVE_INFINITY;

  function die(error: Error): void {
    if (fatal) return;
    fatal = true;
    admitWaiting();
    for (const record of [...hosts.values()]) drop(record, error.message);
    onFatal(error);
  }

  // ---- journal ----

  function onSnapshot(host: Host, snapshot: DeploymentSnapshot, eventType: string): void {
    if (host.stopped || snapshot === host.lastSnapshot) return;
    // every change of an actor's snapshot passes here (its first at start too): the one place
    // its due time can change, so the tick never misses it
    schedule.set(host.id, restingDueAt(snapshot, host.driftCheckedUntil));
    // a routine drift check is about the release at rest: a rollout or a degradation ends it
    if (host.driftCheck && !restsHealthy(snapshot)) {
      host.driftCheck.abort();
      host.driftCheck = null;
    }
    host.state = topLevelState(snapshot.value);
    if (!keeper.isValid()) {
      selfFence();
      return;
    }
    host.lastSnapshot = snapshot;
    try {
      followHealth(host, snapshot);
      const projected = project(host.journaled, snapshot, eventType);
      if (projected.atRest) {
        slots.leave(host.id);
        if (busy.delete(host.id)) admitWaiting();
      } else {
        busy.add(host.id);
      }
      // also without an entry: it may remember a newer context its key holds for
      host.journaled = projected.journaled;
      const entry = projected.entry;
      if (!entry) return;
      const full: JournalEntry = {
        deploymentId: host.id,
        instanceId,
        epoch: host.epoch,
        seq: entry.seq,
        snapshot: machine.getPersistedSnapshot(snapshot),
        machineVersion: MACHINE_VERSION,
        state: entry.state,
        status: entry.status,
        transition: entry.transition,
        generation: entry.generation,
        observedGeneration: entry.observedGeneration,
        completed: entry.completed,
        deployed: entry.deployed,
        lastError: entry.lastError,
        // what the visualizer's time travel shows of this step (the context after it)
        step: entry.transition ? stepContext(snapshot.context) : undefined,
        started: entry.started,
        abandoned: entry.abandoned,
      };
      // a snapshot that cannot be serialised fails here, in this actor, not in the journal
      JSON.stringify(full.snapshot);
      const notifiedAt = host.notifiedAt;
      if (entry.leavesRest) host.notifiedAt = null;
      enqueue(host, full, entry.leavesRest ? notifiedAt : null);
    } catch (error) {
      quarantine(host, error);
    }
  }

  function enqueue(host: Host, entry: JournalEntry, notifiedAt: number | null): void {
    if (queued >= maxQueued) {
      die(new JournalBacklogError(maxQueued));
      return;
    }
    queued += 1;
    host.chain = host.chain.then(() => journal(host, entry, notifiedAt)).finally(() => {
      queued -= 1;
      admitWaiting();
    });
  }

  /** Room for new work in the journal's backlog (see admitBelow); conservative: counts overlap. */
  const room = (): number => admitBelow - queued - busy.size - admitted;

  /**
   * Waits for room in the backlog (not when the process stops) and takes one place; the
   * returned function gives it back once the admitted work has enqueued its entry, or not.
   */
  async function admission(): Promise<() => void> {
    while (room() <= 0 && !closing && !fatal) await new Promise<void>((resolve) => admissionWaiters.push(resolve));
    admitted += 1;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      admitted -= 1;
      admitWaiting();
    };
  }

  function admitWaiting(): void {
    // as many as there is room for: each admitted wake-up journals about one entry
    const n = closing || fatal ? admissionWaiters.length : room();
    if (n <= 0 || admissionWaiters.length === 0) return;
    const released = admissionWaiters.slice(0, n);
    admissionWaiters = admissionWaiters.slice(n);
    for (const resolve of released) resolve();
  }

  async function journal(host: Host, entry: JournalEntry, notifiedAt: number | null): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      // past the lease validity nothing is written: the database may still think the lease
      // valid (its expiry is later), but this process no longer knows it is
      if (!host.stopped && !keeper.isValid()) selfFence();
      if (host.stopped) {
        // a dropped actor's queued entries are discarded: a newer actor (a newer epoch) owns
        // the deployment, or nobody does; committing them would move it backwards
        discarded += 1;
        return;
      }
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
        if (
          error instanceof LostOwnershipError ||
          error instanceof DeploymentGoneError ||
          error instanceof StaleEpochError ||
          error instanceof JournalConflictError
        ) {
          log.warn({ deploymentId: host.id, epoch: host.epoch, reason: error.message }, 'journal write refused; dropping the actor');
          discarded += 1;
          drop(host, error.message);
          return;
        }
        if (closing && performance.now() > stopDeadline) {
          log.error({ deploymentId: host.id, err: errorMessage(error) }, 'journal write not made before the shutdown timeout; the actor resumes from its previous snapshot');
          return;
        }
        // the database is unreachable: keep the entry and retry in order; nothing is lost
        if (attempt === 1 || attempt % 10 === 0) log.warn({ deploymentId: host.id, attempt, err: errorMessage(error) }, 'journal write failed; retrying');
        // at most a second apart: the entries commit within about a second of the database's return
        await new Promise((resolve) => setTimeout(resolve, backoffMs(attempt, 1000)));
      }
    }
  }

  // ---- hosting ----

  /**
   * A healthy (or degraded) actor follows the live health of what it deployed: a change is sent
   * to it as HEALTH, and the machine decides (degraded, recovered, rolled back after the grace).
   * Restored actors subscribe again with their first snapshot; the first observation tells them
   * what the cluster shows now.
   */
  function followHealth(host: Host, snapshot: DeploymentSnapshot): void {
    const watch = options.watchHealth;
    if (!watch) return;
    const path = statePath(snapshot.value);
    const deployed = snapshot.context.deployed;
    const watching = (path.startsWith('healthy') || path.startsWith('failed.degraded')) && deployed !== null && !deployed.stopped && deployed.applied.length > 0;
    const key = watching ? JSON.stringify(deployed.applied) : null;
    if (host.health && host.health.key === key) return;
    stopHealth(host);
    if (!watching || key === null || host.stopped) return;
    const stop = watch(host.id, deployed.applied, (observation) => {
      // called from the cache's own turn (never inside a transition)
      if (host.stopped || host.quarantined) return;
      try {
        host.actor.send({ type: 'HEALTH', status: observation.status, message: observation.message, at: Date.now() });
      } catch (error) {
        quarantine(host, error);
      }
    });
    host.health = { key, stop };
  }

  function stopHealth(host: Host): void {
    const health = host.health;
    host.health = null;
    health?.stop();
  }

  function drop(host: Host, reason: string): void {
    if (host.stopped) return;
    // stopped first: the aborted effects' rejections and the actor's last snapshots are ignored
    host.stopped = true;
    stopHealth(host);
    host.fence.abort(new FencedError(host.id));
    driftFindings.delete(host.id);
    if (host.quarantined === null) host.actor.stop();
    slots.leave(host.id);
    if (hosts.get(host.id) === host) {
      hosts.delete(host.id);
      schedule.delete(host.id);
    }
    if (!hosts.has(host.id) && busy.delete(host.id)) admitWaiting();
    log.debug({ deploymentId: host.id, epoch: host.epoch, reason }, 'actor dropped');
  }

  /** Fault isolation: this actor threw; its deployment fails, every other one carries on. */
  function quarantine(host: Host, error: unknown): void {
    if (host.stopped || host.quarantined) return;
    const message = `keelson could not process this deployment: ${errorMessage(error).replace(/\s+/g, ' ')}; it stays failed until its row changes`;
    host.quarantined = { generation: host.generation, message };
    schedule.delete(host.id);
    stopHealth(host);
    log.error({ deploymentId: host.id, generation: host.generation, err: errorMessage(error) }, 'actor failed; deployment quarantined until its row changes');
    host.fence.abort(new FencedError(host.id));
    slots.leave(host.id);
    if (busy.delete(host.id)) admitWaiting();
    try {
      host.actor.stop();
    } catch {
      // already in error status
    }
    const failure = { deploymentId: host.id, instanceId, epoch: host.epoch, generation: host.generation, message };
    host.chain = host.chain.then(async () => {
      for (let attempt = 1; !host.stopped; attempt++) {
        try {
          await writeQuarantine(db, failure);
          return;
        } catch (writeError) {
          if (writeError instanceof TerminalError || (closing && performance.now() > stopDeadline)) {
            drop(host, errorMessage(writeError));
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, backoffMs(attempt)));
        }
      }
    });
  }

  function send(host: Host, row: DesiredRow): void {
    try {
      host.generation = row.generation;
      host.actor.send({ type: 'DESIRED_CHANGED', desired: rowToDesired(row) });
    } catch (error) {
      quarantine(host, error);
    }
  }

  function host(id: string, epoch: number, snapshotRow: SnapshotRow | undefined): Host {
    const restored = snapshotRow ? restorable(snapshotRow, machineConfig, 10 * tickIntervalMs, log) : undefined;
    const record = startHost(machine, id, epoch, restored, snapshotRow?.seq ?? 0, machineConfig, {
      onSnapshot,
      onError: (h, error) => quarantine(h, error),
      onCreated: (h) => hosts.set(id, h),
    });
    return record;
  }

  /** Hosts freshly claimed deployments (under the ownership mutex). */
  async function adopt(claimed: Map<string, number>): Promise<void> {
    if (claimed.size === 0) return;
    const array = sql.array([...claimed.keys()], 'uuid');
    const [rows, snapshots] = await Promise.all([
      db.any(sql.type(DeploymentRow)`select * from deployments where id = any(${array})`),
      db.any(sql.type(SnapshotRow)`select deployment_id, snapshot, machine_version, seq from deployment_snapshots where deployment_id = any(${array})`),
    ]);
    const snapshotById = new Map(snapshots.map((row) => [row.deployment_id, row]));
    for (const row of rows) {
      const epoch = claimed.get(row.id);
      // past the lease validity an actor would be fenced at its first snapshot: the claimed
      // leases stay orphans, re-hosted once a heartbeat succeeds
      if (closing || fatal || epoch === undefined || !keeper.isValid()) continue;
      const previous = hosts.get(row.id);
      // claims exclude hosted deployments; a record still here is stale
      if (previous) drop(previous, 'replaced by a newer epoch');
      let record: Host;
      try {
        record = host(row.id, epoch, snapshotById.get(row.id));
      } catch (error) {
        // the record may exist already (it is registered before the actor starts): quarantine it
        const started = hosts.get(row.id);
        if (started) quarantine(started, error);
        else log.error({ deploymentId: row.id, err: errorMessage(error) }, 'cannot start the actor');
        continue;
      }
      send(record, row);
    }
    log.debug({ count: rows.length }, 'adopted deployments');
  }

  async function claimAndAdopt(options: { limit?: number; ids?: string[] }): Promise<void> {
    await ownership.run(async () => {
      // never claim without certainly holding the instance's leases: a fenced process waits
      // for its heartbeat
      if (closing || fatal || !keeper.isValid()) return;
      const ids = options.ids?.filter((id) => !hosts.has(id));
      if (ids && ids.length === 0) return;
      // under the mutex no actor is being hosted meanwhile: given ids not hosted now need no exclusion list
      const claimed = await claim(db, instanceId, incarnation, leaseTtlMs, {
        ...(ids ? { ids } : { exclude: [...hosts.keys()] }),
        ...(options.limit !== undefined ? { limit: options.limit } : {}),
      });
      await adopt(claimed);
    });
  }

  /** Re-reads the row and tells the actor; coalesces wake-ups that arrive while one runs. */
  async function wake(id: string): Promise<void> {
    const done = await admission();
    try {
      await wakeAdmitted(id);
    } finally {
      done();
    }
  }

  async function wakeAdmitted(id: string): Promise<void> {
    if (closing || fatal) return;
    if (!hosts.has(id)) {
      await claimAndAdopt({ ids: [id] });
      return;
    }
    await wakeups.run(id, async () => {
      const record = hosts.get(id);
      if (!record || record.stopped) return false;
      const row = await db.maybeOne(prepared(DesiredRow, sql.fragment`select ${DESIRED_COLUMNS} from deployments where id = ${id}`));
      if (record.stopped) return false;
      if (!row) {
        log.info({ deploymentId: id }, 'deployment deleted; stopping its actor');
        drop(record, 'deleted');
        return false;
      }
      if (record.quarantined) {
        if (row.generation <= record.quarantined.generation) return false;
        // the row changed: a fresh actor (a new epoch) from the last good snapshot
        await record.chain;
        drop(record, 'quarantine lifted by a row change');
        await claimAndAdopt({ ids: [id] });
        return false;
      }
      send(record, row);
      if (row.canary_command) await deliverCanaryCommand(record, row.canary_command);
      return true;
    });
  }

  /**
   * An operator's canary command (migration 0012): told to the actor as an event — no new
   * generation, which would supersede the canary — then consumed once the journal holds what it
   * did, only if it is still the one read, so a command written meanwhile waits for its own
   * notification. A crash before the commit leaves the command for the next actor: delivered at
   * least once, and each command is idempotent (a second pause, promote or abort changes nothing).
   */
  async function deliverCanaryCommand(host: Host, command: CanaryCommand): Promise<void> {
    try {
      host.actor.send({ type: 'CANARY', command, at: Date.now() });
    } catch (error) {
      quarantine(host, error);
      return;
    }
    log.info({ deploymentId: host.id, command }, 'canary command');
    // the snapshot the command made is queued already (the actor notifies synchronously)
    await host.chain;
    if (host.stopped) return;
    await db.query(sql.unsafe`update deployments set canary_command = null where id = ${host.id} and canary_command = ${command}`);
  }

  function wakeSafely(id: string): void {
    wake(id).catch((error: unknown) => log.warn({ deploymentId: id, err: errorMessage(error) }, 'wake-up failed; the next tick retries'));
  }

  // ---- wake-up sources ----

  async function rescan(): Promise<void> {
    const rows = await db.any(sql.type(z.object({ id: z.string() }))`
      select d.id from deployments d
      join deployment_leases l on l.deployment_id = d.id and l.instance_id = ${instanceId}
      where d.generation > d.observed_generation or d.canary_command is not null`);
    for (const { id } of rows) wakeSafely(id);
  }

  function tick(): void {
    const started = performance.now();
    const now = Date.now();
    // only the actors a TICK can change now (a drift check due, anything in flight): each is
    // scheduled again from its snapshot after it, as the TICK left it
    for (const id of schedule.takeDue(now)) {
      const record = hosts.get(id);
      // a routine drift check running: its end schedules the actor again
      if (!record || record.stopped || record.quarantined || record.driftCheck) continue;
      try {
        const snapshot = record.actor.getSnapshot();
        const drift = restingDriftCheck(snapshot, now, record.driftCheckedUntil);
        if (drift) {
          checkDriftAtRest(record, drift);
          continue;
        }
        if (tickMatters(snapshot, now)) record.actor.send({ type: 'TICK', now });
        if (!record.stopped && !record.quarantined) schedule.set(id, restingDueAt(record.actor.getSnapshot(), record.driftCheckedUntil));
      } catch (error) {
        quarantine(record, error);
      }
    }
    const counts = new Map<string, number>(CURRENT_STATUSES.map((s) => [s, 0]));
    for (const record of hosts.values()) {
      const state = record.quarantined ? 'failed' : record.state;
      counts.set(state, (counts.get(state) ?? 0) + 1);
    }
    for (const [state, count] of counts) options.metrics?.deploymentsByState.set({ state }, count);
    lastTickMs = performance.now() - started;
    rescan().catch((error: unknown) => log.warn({ err: errorMessage(error) }, 'rescan failed; retrying at the next tick'));
  }

  /**
   * A resting deployment's routine drift check, run here rather than by its actor (see the
   * machine's restingDriftCheck): in sync, or failed, only its next time moves, as the machine's
   * check would have moved it; drift goes to the actor, whose TICK starts `checking`, which
   * answers with this finding (driftFindings) and starts the repair.
   */
  function checkDriftAtRest(host: Host, input: DriftInput): void {
    const own = new AbortController();
    host.driftCheck = own;
    const { signal, unlink } = linkSignals(own.signal, host.fence.signal);
    const run = async () => {
      await before('checkDrift', host.id, signal);
      signal.throwIfAborted();
      return await options.effects.checkDrift(input, signal);
    };
    run()
      .then(
        (result) => afterDriftCheck(host, own, input, result),
        (error: unknown) => afterDriftCheck(host, own, input, undefined, error),
      )
      .finally(unlink);
  }

  function afterDriftCheck(host: Host, own: AbortController, input: DriftInput, result: DriftResult | undefined, error?: unknown): void {
    // another check's, or the actor left its rest meanwhile (onSnapshot ended this one)
    if (host.driftCheck !== own) return;
    host.driftCheck = null;
    if (host.stopped || host.quarantined) return;
    try {
      if (result?.drifted) {
        driftFindings.set(host.id, { deployed: input.deployed, result });
        host.actor.send({ type: 'TICK', now: Date.now() });
      } else {
        if (error !== undefined) log.debug({ deploymentId: host.id, err: errorMessage(error) }, 'drift check failed; checking again at the next interval');
        host.driftCheckedUntil = Date.now() + host.actor.getSnapshot().context.config.driftIntervalMs;
      }
      if (!host.stopped && !host.quarantined) schedule.set(host.id, restingDueAt(host.actor.getSnapshot(), host.driftCheckedUntil));
    } catch (caught) {
      quarantine(host, caught);
    }
  }

  // ---- ownership ----

  /** The lease validity ran out: abort every effect and drop every actor before any further cluster write. */
  function selfFence(): void {
    if (hosts.size === 0) return;
    selfFences += 1;
    log.error(
      { hosted: hosts.size, leaseTtlMs },
      'no successful lease heartbeat within the lease TTL minus the safety margin: self-fenced, every effect aborted and every actor dropped; they are restored when the heartbeat succeeds again',
    );
    for (const record of [...hosts.values()]) drop(record, 'self-fenced');
  }
  keeper.events.on('expired', selfFence);

  async function ownershipCycle(): Promise<void> {
    const beatStarted = performance.now();
    // the leases of the actors hosted now, which this heartbeat speaks for (see below)
    let digest = 0;
    for (const record of hosts.values()) digest += record.leaseDigest;
    const beat = await keeper.beat({ count: hosts.size, digest }).then(
      (result) => {
        heartbeatOk = true;
        return result;
      },
      (error: unknown) => {
        heartbeatOk = false;
        throw error;
      },
    );
    if (!beat.registered) {
      keeper.invalidate();
      die(new SupersededError(instanceId));
      return;
    }
    await ownership.run(async () => {
      if (closing || fatal) return;
      // null: the renewed leases are exactly those of the actors hosted when it was sent (no
      // lease lost, no orphan); otherwise compare them one by one
      if (beat.owned) await reconcileLeases(beat.owned, beatStarted);
      await rebalance(beat);
    });
  }

  /** Drops the actors whose lease is gone or at another epoch; re-hosts leases held without an actor. */
  async function reconcileLeases(owned: Map<string, number>, beatStarted: number): Promise<void> {
    for (const record of [...hosts.values()]) {
      // hosted after the heartbeat was sent: the heartbeat cannot speak for it
      if (record.hostedAt > beatStarted) continue;
      const epoch = owned.get(record.id);
      if (epoch !== record.epoch) {
        log.warn({ deploymentId: record.id, epoch: record.epoch, lease: epoch ?? null }, 'lease lost; another actor hosts this deployment now');
        drop(record, 'lease lost');
      }
    }
    // orphans: leases this incarnation holds with no actor here (an actor dropped by a
    // refused write, a self-fence, a quarantine lifted): host them again, under a new epoch
    const orphans = [...owned.keys()].filter((id) => !hosts.has(id));
    if (orphans.length > 0 && keeper.isValid()) {
      log.info({ count: orphans.length }, 're-hosting deployments whose lease this process holds without an actor');
      await adopt(await claim(db, instanceId, incarnation, leaseTtlMs, { ids: orphans }));
    }
  }

  /** Claims up to this instance's fair share, or hands resting deployments over above it. */
  async function rebalance(beat: Heartbeat): Promise<void> {
    const share = Math.ceil(beat.totalDeployments / beat.liveInstances);
    if (hosts.size < share) {
      // in steps the backlog has room for (an adopted row with a new generation journals at
      // once; one restored at rest does not): the next cycle adopts the rest
      while (hosts.size < share && room() > 0 && keeper.isValid() && !closing && !fatal) {
        const claimed = await claim(db, instanceId, incarnation, leaseTtlMs, { limit: Math.min(share - hosts.size, room()), exclude: [...hosts.keys()] });
        if (claimed.size === 0) break;
        await adopt(claimed);
      }
    } else if (hosts.size > share + 1) {
      // another instance joined: hand over resting deployments until the split is fair
      const excess = [...hosts.values()]
        .filter((r) => !r.quarantined && isAtRest(statePath(r.actor.getSnapshot().value)) && !wakeups.isRunning(r.id))
        .slice(0, hosts.size - share);
      for (const record of excess) {
        await record.chain;
        drop(record, 'rebalanced');
      }
      if (excess.length > 0) {
        await release(db, instanceId, incarnation, excess.map((r) => r.id));
        log.info({ released: excess.length, share }, 'rebalanced deployments to other instances');
      }
    }
  }

  /** Heartbeats every heartbeatMs; after a failure every 500 ms at most, so a returning database is noticed at once. */
  function scheduleOwnershipCycle(delayMs: number): void {
    if (closing || fatal) return;
    const timer = setTimeout(() => {
      timers = timers.filter((t) => t !== timer);
      let failed = false;
      cycleRunning = ownershipCycle()
        .catch((error: unknown) => {
          failed = true;
          // another incarnation holds this instance id now: this process must not go on
          if (error instanceof DuplicateInstanceError) die(new SupersededError(instanceId));
          else if (heartbeatFailures++ === 0 || heartbeatFailures % 20 === 0) {
            log.warn({ err: errorMessage(error), failures: heartbeatFailures }, 'ownership cycle failed; retrying');
          }
        })
        .finally(() => {
          cycleRunning = undefined;
          if (!failed) heartbeatFailures = 0;
          scheduleOwnershipCycle(failed ? Math.min(heartbeatMs, 500) : heartbeatMs);
        });
    }, delayMs);
    timers.push(timer);
  }

  function startListener(): Listener {
    const subscriber = createListener(options.databaseUrl, ['keelson_deployments'], { maxBackoffMs: 1000 });
    subscriber.events.on('connected', () => {
      log.debug('listening on keelson_deployments');
      // notifications sent while the connection was down are gone: look at every row
      rescan().catch((error: unknown) => log.warn({ err: errorMessage(error) }, 'rescan after reconnect failed'));
    });
    subscriber.events.on('disconnected', (error, attempt) => {
      if (attempt === 1 || attempt % 10 === 0) log.warn({ attempt, err: error.message }, 'LISTEN connection lost; reconnecting (the tick covers wake-ups meanwhile)');
    });
    subscriber.events.on('notification', (_channel, payload) => {
      const record = hosts.get(payload);
      if (record && !record.quarantined && isAtRest(statePath(record.actor.getSnapshot().value))) record.notifiedAt ??= performance.now();
      wakeSafely(payload);
    });
    return subscriber;
  }

  return {
    instanceId,
    incarnation,
    events,
    isListening: () => listener?.isConnected() ?? false,
    holdsLeases: () => heartbeatOk && keeper.isValid(),
    hosted: () => [...hosts.keys()],
    epochOf: (id) => hosts.get(id)?.epoch,
    stats: () => ({
      hosted: hosts.size,
      activeRollouts: slots.active,
      lastTickMs,
      queuedEntries: queued,
      discardedEntries: discarded,
      selfFences,
    }),
    async start() {
      // refuses to run (DuplicateInstanceError) when a live process has this instance id
      await keeper.register();
      listener = startListener();
      // first wait briefly for LISTEN (it keeps trying in the background)
      await withDeadline(listener.ready(), 2000);
      // reclaims this instance id's leases of a previous incarnation at once (own leases first)
      await ownershipCycle();
      timers.push(setInterval(tick, tickIntervalMs));
      scheduleOwnershipCycle(heartbeatMs);
      log.info({ instanceId, incarnation, hosted: hosts.size, tickIntervalMs, leaseTtlMs }, 'runtime started');
    },
    async stop() {
      if (closing) return;
      closing = true;
      admitWaiting();
      // one budget for everything, the database answering or not: queued journal writes get
      // all of it but the share kept for releasing the leases
      const startedAt = performance.now();
      const releaseBudgetMs = Math.min(2000, Math.floor(stopTimeoutMs / 4));
      stopDeadline = startedAt + stopTimeoutMs - releaseBudgetMs;
      const left = (until: number) => Math.max(100, until - performance.now());
      for (const timer of timers) clearTimeout(timer);
      timers = [];
      const listenerClosed = listener?.close().catch(() => undefined);
      await withDeadline(cycleRunning ?? Promise.resolve(), Math.min(2000, left(stopDeadline)));
      // every change is journaled as it happens; wait for the queued writes (bounded), then stop
      const records = [...hosts.values()];
      await withDeadline(Promise.all(records.map((r) => r.chain)), left(stopDeadline));
      for (const record of records) drop(record, 'shutdown');
      const released = await withDeadline(
        release(db, instanceId, incarnation).then(
          () => true,
          (error: unknown) => {
            log.warn({ err: errorMessage(error) }, 'could not release leases; they expire on their own');
            return false;
          },
        ),
        left(startedAt + stopTimeoutMs),
      );
      if (released === undefined) log.warn('could not release leases in time; they expire on their own');
      await Promise.all([listenerClosed, keeper.close()]);
      log.info({ instanceId, persisted: records.length, queued }, 'runtime stopped');
    },
  };
}
