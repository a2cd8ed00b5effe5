// The seam between the pure machine and the world: the runtime turns plain async functions into
// the machine's invoked actors, timing them and classifying their failures into JSON-safe
// `EffectFailure`s the machine can branch on and persist.
import {
  BackendTerminatedError,
  ConnectionError,
  StatementCancelledError,
  StatementTimeoutError,
} from 'slonik';
import { fromPromise } from 'xstate';
import type {
  CheckResult, PruneInput, StageResult, TargetInput, TargetResult,
  ApplyInput, ApplyResult, DriftInput, DriftResult, EffectFailure, EffectOutput, FindTargetInput, FindTargetResult,
  RenderInput, RenderResult, ScaleInput, ScaleResult, SyncInput, SyncResult, TeardownInput, TeardownResult, VerifyInput, VerifyResult,
} from '../../machines/deployment.machine.ts';
import { KeelsonError } from '../errors.ts';

export interface Effects {
  sync(input: SyncInput, signal: AbortSignal): Promise<SyncResult>;
  render(input: RenderInput, signal: AbortSignal): Promise<RenderResult>;
  apply(input: ApplyInput, signal: AbortSignal): Promise<ApplyResult>;
  verify(input: VerifyInput, signal: AbortSignal): Promise<VerifyResult>;
  scale(input: ScaleInput, signal: AbortSignal): Promise<ScaleResult>;
  findRollbackTarget(input: FindTargetInput, signal: AbortSignal): Promise<FindTargetResult | null>;
  checkDrift(input: DriftInput, signal: AbortSignal): Promise<DriftResult>;
  teardown(input: TeardownInput, signal: AbortSignal): Promise<TeardownResult>;
}

/**
 * A canary's deploy-target verbs (src/targets/): optional, so a runtime without a deploy target
 * (and test doubles written before canaries) leaves them unprovided, and a canary there fails
 * with `effect_missing` naming the verb.
 */
export interface TargetEffects {
  stage(input: TargetInput, signal: AbortSignal): Promise<StageResult>;
  warm(input: TargetInput, signal: AbortSignal): Promise<TargetResult>;
  split(input: TargetInput, signal: AbortSignal): Promise<TargetResult>;
  checkRevision(input: TargetInput, signal: AbortSignal): Promise<CheckResult>;
  drain(input: TargetInput, signal: AbortSignal): Promise<TargetResult>;
  archive(input: TargetInput, signal: AbortSignal): Promise<TargetResult>;
  /** a release applied in place, once its deployment's first canary revision has the traffic */
  pruneInPlace(input: PruneInput, signal: AbortSignal): Promise<TargetResult>;
}

/**
 * Runs before each effect: waits for the actor's queued journal writes (write-ahead: the state
 * the effect runs in is committed first), then takes the deployment's rollout slot (every effect
 * but the drift check, which runs at rest). See createRuntime.
 */
export type BeforeEffect = (effect: keyof Effects | keyof TargetEffects, deploymentId: string, signal: AbortSignal) => Promise<void>;

export function classifyFailure(error: unknown, startedAt: number): EffectFailure {
  const at = Date.now();
  if (error instanceof KeelsonError) {
    return { kind: error.kind, code: error.code, message: error.message, startedAt, at };
  }
  // the database went away mid-lookup: it will come back
  if (
    error instanceof ConnectionError ||
    error instanceof BackendTerminatedError ||
    error instanceof StatementTimeoutError ||
    error instanceof StatementCancelledError
  ) {
    return { kind: 'transient', code: 'database_unavailable', message: `database unavailable: ${error.message}`, startedAt, at };
  }
  const message = error instanceof Error ? error.message : String(error);
  // an unclassified error is a bug or an unexpected input: retrying in a loop would not help
  return { kind: 'terminal', code: 'unexpected', message, startedAt, at };
}

/** The fence of a deployment's actor: aborted when the actor is dropped or its lease is no longer certainly held. */
export type FenceOf = (deploymentId: string) => AbortSignal | undefined;

/**
 * An effect's signal: aborted with the reason of the first of `own` (the machine left the
 * state) and `fence` to abort, like AbortSignal.any — which leaves a weak reference to every
 * composite among the long-lived fence's dependants, cleaned only by garbage collection: one
 * per drift check of every healthy actor, a measurable share of an idle host's CPU. `unlink`
 * takes the listener off the fence once the effect is over; `own` is the effect's alone.
 */
export function linkSignals(own: AbortSignal, fence: AbortSignal): { signal: AbortSignal; unlink: () => void } {
  const controller = new AbortController();
  const first = own.aborted ? own : fence.aborted ? fence : undefined;
  if (first) {
    controller.abort(first.reason);
    return { signal: controller.signal, unlink: () => undefined };
  }
  const onOwn = () => {
    fence.removeEventListener('abort', onFence);
    controller.abort(own.reason);
  };
  const onFence = () => controller.abort(fence.reason);
  own.addEventListener('abort', onOwn, { once: true });
  fence.addEventListener('abort', onFence, { once: true });
  return { signal: controller.signal, unlink: () => fence.removeEventListener('abort', onFence) };
}

export function toMachineActors(effects: Effects & Partial<TargetEffects>, before: BeforeEffect, fenceOf: FenceOf = () => undefined) {
  const wrap = <I extends { deploymentId: string }, O>(name: keyof Effects | keyof TargetEffects, run: (input: I, signal: AbortSignal) => Promise<O>) =>
    fromPromise<EffectOutput<O>, I>(async ({ input, signal: own }) => {
      // the effect stops when the machine leaves its state (own) or when the actor is fenced:
      // every cluster request checks the signal first, so a fenced actor writes nothing more
      const fence = fenceOf(input.deploymentId);
      const { signal, unlink } = fence ? linkSignals(own, fence) : { signal: own, unlink: () => undefined };
      try {
        await before(name, input.deploymentId, signal);
        const startedAt = Date.now();
        try {
          signal.throwIfAborted();
          const value = await run(input, signal);
          return { value, startedAt, finishedAt: Date.now() };
        } catch (error) {
          throw classifyFailure(error, startedAt);
        }
      } finally {
        unlink();
      }
    });
  return {
    sync: wrap('sync', effects.sync.bind(effects)),
    render: wrap('render', effects.render.bind(effects)),
    apply: wrap('apply', effects.apply.bind(effects)),
    verify: wrap('verify', effects.verify.bind(effects)),
    scale: wrap('scale', effects.scale.bind(effects)),
    findRollbackTarget: wrap('findRollbackTarget', effects.findRollbackTarget.bind(effects)),
    checkDrift: wrap('checkDrift', effects.checkDrift.bind(effects)),
    teardown: wrap('teardown', effects.teardown.bind(effects)),
    ...(effects.stage ? { stage: wrap('stage', effects.stage.bind(effects)) } : {}),
    ...(effects.warm ? { warm: wrap('warm', effects.warm.bind(effects)) } : {}),
    ...(effects.split ? { split: wrap('split', effects.split.bind(effects)) } : {}),
    ...(effects.checkRevision ? { checkRevision: wrap('checkRevision', effects.checkRevision.bind(effects)) } : {}),
    ...(effects.drain ? { drain: wrap('drain', effects.drain.bind(effects)) } : {}),
    ...(effects.archive ? { archive: wrap('archive', effects.archive.bind(effects)) } : {}),
    ...(effects.pruneInPlace ? { pruneInPlace: wrap('pruneInPlace', effects.pruneInPlace.bind(effects)) } : {}),
  };
}
