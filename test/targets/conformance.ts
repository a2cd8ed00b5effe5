// The deploy-target conformance suite (issue #16): what every target must do, whatever its
// provider. It knows the contract (src/targets/contract.ts) and nothing of Kubernetes: a subject
// gives it a target whose provider calls are counted, plans for revisions, and a way to read the
// provider's state. Each check throws a `ConformanceFailure` naming the rule broken, so the
// self-test (conformance.selftest.test.ts) can prove that each rule catches its violation.
import { isDeepStrictEqual } from 'node:util';
import { it } from 'vitest';
import type { DeployTarget, Inventory, TrafficSplitEntry } from '../../src/targets/contract.ts';
import {
  InvalidRevisionName,
  InvalidTargetInput,
  isPreconditionError,
  isProviderError,
  RevisionCarriesTraffic,
  RevisionNotFound,
  SplitForOtherDeployment,
  SplitNotFound,
  WeightsDoNotSum,
} from '../../src/targets/errors.ts';

export interface CountedTarget {
  readonly target: DeployTarget;
  /** Provider calls made so far (the subject wraps its provider or transport with a counter). */
  calls(): number;
}

export interface ConformanceSubject {
  /** A target over a provider wrapped with a call counter. */
  makeTarget(): CountedTarget | Promise<CountedTarget>;
  /** A new deployment id, with its own room in the provider (a namespace, a directory). */
  newDeployment(label: string): string;
  /** The plan of a revision: what the caller would hand the target, opaque to the suite. */
  plan(deploymentId: string, revision: string): unknown;
  /** A plan that passes the target's pure checks but that the provider refuses. */
  rejectedPlan(deploymentId: string, revision: string): unknown;
  /** The provider's state for a deployment, read past the target, equal for equal states. */
  state(deploymentId: string): Promise<unknown>;
  /** Makes every provider call fail as an outage would, until the returned function is called. */
  failProvider?(): Promise<() => Promise<void>> | (() => Promise<void>);
  /** How long observing may take to show a write (a provider read through a cache); 10 s by default. */
  settleMs?: number;
}

/** A broken rule: `rule` is stable (`idempotent:stage`, `precondition:weights-do-not-sum`, …). */
export class ConformanceFailure extends Error {
  readonly rule: string;
  constructor(rule: string, message: string) {
    super(`${rule}: ${message}`);
    this.name = 'ConformanceFailure';
    this.rule = rule;
  }
}

export interface ConformanceCheck {
  readonly name: string;
  run(subject: ConformanceSubject): Promise<void>;
}

const signal = new AbortController().signal;
const options = { signal };

function show(value: unknown): string {
  return JSON.stringify(value);
}

function inventory(subject: ConformanceSubject, deploymentId: string, revisions: readonly string[], split?: readonly TrafficSplitEntry[]): Inventory {
  return {
    deploymentId,
    revisions: revisions.map((name) => ({ name, plan: subject.plan(deploymentId, name) })),
    ...(split ? { split: { deploymentId, entries: split.map((e) => ({ ...e })) } } : {}),
  };
}

async function poll(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Calls `verb` twice: the outcomes and the provider's state after each must be equal. */
async function twice<T>(subject: ConformanceSubject, verb: string, deploymentId: string, call: () => Promise<T>): Promise<T> {
  const first = await call();
  const afterFirst = await subject.state(deploymentId);
  let second: T;
  try {
    second = await call();
  } catch (error) {
    throw new ConformanceFailure(`idempotent:${verb}`, `a second ${verb} failed where the first succeeded: ${(error as Error).message}`);
  }
  const afterSecond = await subject.state(deploymentId);
  if (!isDeepStrictEqual(first, second)) throw new ConformanceFailure(`idempotent:${verb}`, `a second ${verb} answered ${show(second)}, the first ${show(first)}`);
  if (!isDeepStrictEqual(afterFirst, afterSecond)) {
    throw new ConformanceFailure(`idempotent:${verb}`, `a second ${verb} changed the provider's state from ${show(afterFirst)} to ${show(afterSecond)}`);
  }
  return first;
}

/** Expects the precondition error `expected` with no provider call, and never a provider error. */
async function refused(
  target: CountedTarget,
  rule: string,
  expected: abstract new (...args: never[]) => Error,
  call: () => Promise<unknown>,
  detail?: (error: Error) => string | undefined,
): Promise<void> {
  const before = target.calls();
  let error: unknown;
  try {
    await call();
  } catch (caught) {
    error = caught;
  }
  const made = target.calls() - before;
  if (error === undefined) throw new ConformanceFailure(rule, `the call succeeded (${made} provider calls); expected ${expected.name}`);
  if (isProviderError(error)) throw new ConformanceFailure(rule, `reported as a provider error: ${(error as Error).message}`);
  if (!(error instanceof expected) || !isPreconditionError(error)) throw new ConformanceFailure(rule, `expected ${expected.name}, got ${(error as Error).name}: ${(error as Error).message}`);
  if (made !== 0) throw new ConformanceFailure(rule, `${expected.name} came after ${made} provider call${made === 1 ? '' : 's'}; preconditions are checked before any`);
  const wrong = detail?.(error);
  if (wrong) throw new ConformanceFailure(rule, wrong);
}

export const CHECKS: readonly ConformanceCheck[] = [
  {
    name: 'every verb twice gives the same outcome and the same provider state',
    async run(subject) {
      const { target } = await subject.makeTarget();
      const id = subject.newDeployment('twice');
      const one = inventory(subject, id, ['r1']);
      await twice(subject, 'stage', id, () => target.stage(one, 'r1', options));
      await twice(subject, 'warm', id, () => target.warm(one, 'r1', options));
      const verified = await twice(subject, 'verify', id, () => target.verify(one, 'r1', options));
      if (verified.status !== 'ready') throw new ConformanceFailure('verify:ready', `a warmed revision verifies ${show(verified)}`);
      const both = inventory(subject, id, ['r1', 'r2'], [{ revision: 'r1', weightBps: 10_000 }]);
      await twice(subject, 'applySplit', id, () => target.applySplit(both, options));
      await twice(subject, 'stage', id, () => target.stage(both, 'r2', options));
      await twice(subject, 'drain', id, () => target.drain(both, 'r2', options));
      await twice(subject, 'archive', id, () => target.archive(both, 'r2', options));
      // Observing is read-only; once the provider shows the split and no more of the archived
      // revision, two reads agree.
      const settled = await poll(async () => {
        const observed = await target.observe(id, options);
        return observed.recordedSplit !== null && !observed.revisions.some((r) => r.revision === 'r2');
      }, subject.settleMs ?? 10_000);
      if (!settled) throw new ConformanceFailure('observe:settles', 'observe never showed the recorded split without the archived revision');
      await twice(subject, 'observe', id, () => target.observe(id, options));
    },
  },
  {
    name: 'each precondition error comes before any provider call, never as a provider error',
    async run(subject) {
      const counted = await subject.makeTarget();
      const { target } = counted;
      const id = subject.newDeployment('pre');
      const inv = inventory(subject, id, ['r1', 'r2']);
      for (const verb of ['stage', 'warm', 'verify', 'drain', 'archive'] as const) {
        await refused(counted, 'precondition:revision-not-found', RevisionNotFound, () => target[verb](inv, 'r9', options));
      }
      await refused(counted, 'precondition:invalid-revision-name', InvalidRevisionName, () => target.stage({ ...inv, revisions: [...inv.revisions, { name: 'Not_A_Name', plan: subject.plan(id, 'r3') }] }, 'Not_A_Name', options));
      await refused(counted, 'precondition:invalid-input', InvalidTargetInput, () => target.stage({ revisions: inv.revisions } as unknown as Inventory, 'r1', options));
      await refused(counted, 'precondition:split-not-found', SplitNotFound, () => target.applySplit(inv, options));
      await refused(
        counted,
        'precondition:weights-do-not-sum',
        WeightsDoNotSum,
        () => target.applySplit(inventory(subject, id, ['r1', 'r2'], [{ revision: 'r1', weightBps: 6000 }, { revision: 'r2', weightBps: 3000 }]), options),
        (error) => ((error as WeightsDoNotSum).sum === 9000 ? undefined : `the error says the sum is ${(error as WeightsDoNotSum).sum}, not 9000`),
      );
      await refused(counted, 'precondition:split-for-other-deployment', SplitForOtherDeployment, () =>
        target.applySplit({ ...inv, split: { deploymentId: `${id}-other`, entries: [{ revision: 'r1', weightBps: 10_000 }] } }, options),
      );
      await refused(counted, 'precondition:split-revision-not-found', RevisionNotFound, () => target.applySplit(inventory(subject, id, ['r1'], [{ revision: 'r1', weightBps: 5000 }, { revision: 'r2', weightBps: 5000 }]), options));
      const serving = inventory(subject, id, ['r1', 'r2'], [{ revision: 'r1', weightBps: 10_000 }]);
      await refused(counted, 'precondition:revision-carries-traffic', RevisionCarriesTraffic, () => target.drain(serving, 'r1', options));
      await refused(counted, 'precondition:revision-carries-traffic', RevisionCarriesTraffic, () => target.archive(serving, 'r1', options));
    },
  },
  {
    name: "a split for one deployment leaves another's recorded and enforced split untouched, and echoes exactly what it applied",
    async run(subject) {
      const { target } = await subject.makeTarget();
      const a = subject.newDeployment('split-a');
      const b = subject.newDeployment('split-b');
      const bEntries = [
        { revision: 'b1', weightBps: 7000 },
        { revision: 'b2', weightBps: 3000 },
      ];
      const bInventory = inventory(subject, b, ['b1', 'b2'], bEntries);
      for (const r of ['b1', 'b2']) await target.stage(bInventory, r, options);
      await target.applySplit(bInventory, options);
      const settled = await poll(async () => isDeepStrictEqual((await target.observe(b, options)).recordedSplit?.entries, bEntries), subject.settleMs ?? 10_000);
      if (!settled) throw new ConformanceFailure('observe:recorded-split', `observe never showed deployment ${b}'s recorded split ${show(bEntries)}`);
      const bState = await subject.state(b);
      const bObserved = await target.observe(b, options);

      // Unsorted, with a zero weight: the echo must be exactly this.
      const aEntries = [
        { revision: 'a2', weightBps: 2500 },
        { revision: 'a3', weightBps: 0 },
        { revision: 'a1', weightBps: 7500 },
      ];
      const aInventory = inventory(subject, a, ['a1', 'a2', 'a3'], aEntries);
      for (const r of ['a1', 'a2', 'a3']) await target.stage(aInventory, r, options);
      const outcome = await target.applySplit(aInventory, options);
      if (!isDeepStrictEqual(outcome, { deploymentId: a, entries: aEntries })) {
        throw new ConformanceFailure('echo:split', `applying ${show(aEntries)} for ${a} answered ${show(outcome)}`);
      }
      await poll(async () => isDeepStrictEqual((await target.observe(a, options)).recordedSplit?.entries, aEntries), subject.settleMs ?? 10_000);
      const bStateAfter = await subject.state(b);
      if (!isDeepStrictEqual(bState, bStateAfter)) throw new ConformanceFailure('isolation:sibling-split', `a split for ${a} changed ${b}'s provider state from ${show(bState)} to ${show(bStateAfter)}`);
      const bObservedAfter = await target.observe(b, options);
      if (!isDeepStrictEqual(bObserved.recordedSplit, bObservedAfter.recordedSplit) || !isDeepStrictEqual(bObserved.enforcedSplit, bObservedAfter.enforcedSplit)) {
        throw new ConformanceFailure(
          'isolation:sibling-split',
          `a split for ${a} changed ${b}'s observed split from ${show([bObserved.recordedSplit, bObserved.enforcedSplit])} to ${show([bObservedAfter.recordedSplit, bObservedAfter.enforcedSplit])}`,
        );
      }
    },
  },
  {
    name: 'archiving an archived revision succeeds',
    async run(subject) {
      const { target } = await subject.makeTarget();
      const id = subject.newDeployment('archive');
      const inv = inventory(subject, id, ['r1', 'r2']);
      await target.stage(inv, 'r1', options);
      const first = await target.archive(inv, 'r1', options);
      const gone = await subject.state(id);
      let again: unknown;
      try {
        again = await target.archive(inv, 'r1', options);
        // Never staged is as archived as archived.
        await target.archive(inv, 'r2', options);
      } catch (error) {
        throw new ConformanceFailure('archive:already-archived', `archiving an archived revision failed: ${(error as Error).message}`);
      }
      if (!isDeepStrictEqual(first, again)) throw new ConformanceFailure('archive:already-archived', `the second archive answered ${show(again)}, the first ${show(first)}`);
      if (!isDeepStrictEqual(gone, await subject.state(id))) throw new ConformanceFailure('archive:already-archived', 'archiving again changed the provider state');
    },
  },
  {
    name: 'a provider failure is a ProviderError naming the request and the response',
    async run(subject) {
      const { target } = await subject.makeTarget();
      const id = subject.newDeployment('fail');
      const inv: Inventory = { deploymentId: id, revisions: [{ name: 'r1', plan: subject.rejectedPlan(id, 'r1') }, { name: 'r2', plan: subject.plan(id, 'r2') }] };
      const expectProviderError = async (rule: string, kind: 'transient' | 'terminal', call: () => Promise<unknown>) => {
        let error: unknown;
        try {
          await call();
        } catch (caught) {
          error = caught;
        }
        if (error === undefined) throw new ConformanceFailure(rule, 'the call succeeded');
        if (!isProviderError(error)) throw new ConformanceFailure(rule, `expected a ProviderError, got ${(error as Error).name}: ${(error as Error).message}`);
        if (!error.request.verb || !error.request.object) throw new ConformanceFailure(rule, `the error names no request: ${show(error.request)}`);
        if (!error.response.message) throw new ConformanceFailure(rule, `the error names no response: ${show(error.response)}`);
        if (error.kind !== kind) throw new ConformanceFailure(rule, `a ${kind} failure was classified ${error.kind}: ${error.message}`);
      };
      await expectProviderError('provider-error:rejected', 'terminal', () => target.stage(inv, 'r1', options));
      if (subject.failProvider) {
        const restore = await subject.failProvider();
        try {
          await expectProviderError('provider-error:unavailable', 'transient', () => target.stage(inv, 'r2', options));
        } finally {
          await restore();
        }
      }
    },
  },
];

export interface CheckResult {
  readonly check: string;
  readonly passed: boolean;
  /** The rule broken (`idempotent:stage`), or `error` for anything else that went wrong. */
  readonly rule?: string;
  readonly message?: string;
}

/** Runs every check (or those whose name matches `only`) and reports each; never throws. */
export async function runConformance(subject: ConformanceSubject, only?: RegExp): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of CHECKS) {
    if (only && !only.test(check.name)) continue;
    try {
      await check.run(subject);
      results.push({ check: check.name, passed: true });
    } catch (error) {
      const rule = error instanceof ConformanceFailure ? error.rule : 'error';
      results.push({ check: check.name, passed: false, rule, message: (error as Error).message });
    }
  }
  return results;
}

/** Registers every check as a vitest test of the enclosing describe block. */
export function conformanceTests(subject: () => ConformanceSubject, testOptions: { timeout?: number } = {}): void {
  for (const check of CHECKS) {
    it(check.name, async () => {
      await check.run(subject());
    }, testOptions.timeout ?? 20_000);
  }
}
