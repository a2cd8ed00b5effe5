// The conformance suite catches what it is meant to catch. A second, in-memory target (test
// only: a map for a provider, a counter on every provider call) passes the whole suite — which
// also shows the suite assumes no Kubernetes — and wrappers around it that each break one rule
// fail the suite with that rule.
import { describe, expect, it } from 'vitest';
import type { DeployTarget, Inventory, TargetObservation, TrafficSplit } from '../../src/targets/contract.ts';
import { TerminalProviderError, TransientProviderError, isProviderError } from '../../src/targets/errors.ts';
import { observeCall, retireCall, revisionCall, splitCall } from '../../src/targets/preconditions.ts';
import { runConformance, type ConformanceSubject, type CountedTarget } from './conformance.ts';

interface MemoryPlan {
  image: string;
  replicas: number;
  reject?: boolean;
}

interface MemoryDeployment {
  revisions: Map<string, { image: string; replicas: number }>;
  split: TrafficSplit | null;
}

/** A provider in memory: each method is one provider call, counted. */
class MemoryProvider {
  calls = 0;
  down = false;
  readonly deployments = new Map<string, MemoryDeployment>();

  private call(verb: string, object: string): MemoryDeployment | undefined {
    this.calls += 1;
    if (this.down) throw new TransientProviderError({ verb, object }, { status: 503, message: 'provider unavailable' }, { code: 'provider_unavailable' });
    return undefined;
  }

  deployment(id: string): MemoryDeployment {
    let found = this.deployments.get(id);
    if (!found) this.deployments.set(id, (found = { revisions: new Map(), split: null }));
    return found;
  }

  put(id: string, revision: string, plan: MemoryPlan, replicas: number | 'keep'): void {
    this.call('put', `${id}/${revision}`);
    if (plan.reject) throw new TerminalProviderError({ verb: 'put', object: `${id}/${revision}` }, { status: 422, message: 'image is required' }, { code: 'provider_rejected' });
    const existing = this.deployment(id).revisions.get(revision);
    this.deployment(id).revisions.set(revision, { image: plan.image, replicas: replicas === 'keep' ? (existing?.replicas ?? 0) : replicas });
  }

  scale(id: string, revision: string, replicas: number, missingOk: boolean): void {
    this.call('scale', `${id}/${revision}`);
    const found = this.deployment(id).revisions.get(revision);
    if (!found) {
      if (missingOk) return;
      throw new TerminalProviderError({ verb: 'scale', object: `${id}/${revision}` }, { status: 404, message: 'not found' }, { code: 'provider_not_found' });
    }
    found.replicas = replicas;
  }

  remove(id: string, revision: string): void {
    this.call('remove', `${id}/${revision}`);
    this.deployment(id).revisions.delete(revision);
  }

  record(id: string, split: TrafficSplit): void {
    this.call('record', id);
    this.deployment(id).split = structuredClone(split);
  }

  read(id: string): MemoryDeployment {
    this.call('read', id);
    return structuredClone(this.deployment(id));
  }
}

function memoryTarget(provider: MemoryProvider): DeployTarget {
  return {
    name: 'memory',
    async stage(input, revision) {
      const { inventory, revision: rev } = revisionCall(input, revision);
      provider.put(inventory.deploymentId, rev.name, rev.plan as MemoryPlan, 'keep');
      return { deploymentId: inventory.deploymentId, revision: rev.name, resources: [`${inventory.deploymentId}/${rev.name}`] };
    },
    async warm(input, revision) {
      const { inventory, revision: rev } = revisionCall(input, revision);
      const replicas = (rev.plan as MemoryPlan).replicas;
      provider.scale(inventory.deploymentId, rev.name, replicas, false);
      return { deploymentId: inventory.deploymentId, revision: rev.name, replicas };
    },
    async drain(input, revision) {
      const { inventory, revision: rev } = retireCall(input, revision);
      provider.scale(inventory.deploymentId, rev.name, 0, true);
      return { deploymentId: inventory.deploymentId, revision: rev.name };
    },
    async archive(input, revision) {
      const { inventory, revision: rev } = retireCall(input, revision);
      provider.remove(inventory.deploymentId, rev.name);
      return { deploymentId: inventory.deploymentId, revision: rev.name };
    },
    async applySplit(input) {
      const { split } = splitCall(input);
      provider.record(split.deploymentId, split);
      return { deploymentId: split.deploymentId, entries: split.entries.map((e) => ({ ...e })) };
    },
    async verify(input, revision) {
      const { inventory, revision: rev } = revisionCall(input, revision);
      const found = provider.read(inventory.deploymentId).revisions.get(rev.name);
      return { deploymentId: inventory.deploymentId, revision: rev.name, status: found ? 'ready' : 'missing', message: found ? 'running' : 'absent' };
    },
    async observe(input): Promise<TargetObservation> {
      const id = observeCall(input);
      const state = provider.read(id);
      return {
        deploymentId: id,
        revisions: [...state.revisions].map(([revision, r]) => ({ revision, replicas: r.replicas, readyReplicas: r.replicas, status: 'ready' })),
        recordedSplit: state.split,
        enforcedSplit: state.split ? { mode: 'exact', entries: state.split.entries } : null,
      };
    },
  };
}

function memorySubject(wrap: (good: DeployTarget, provider: MemoryProvider) => DeployTarget = (good) => good): ConformanceSubject {
  const provider = new MemoryProvider();
  let next = 0;
  return {
    makeTarget: (): CountedTarget => ({ target: wrap(memoryTarget(provider), provider), calls: () => provider.calls }),
    newDeployment: (label) => `${label}-${(next += 1)}`,
    plan: (_id, revision) => ({ image: `registry.example/app:${revision}`, replicas: 2 }) satisfies MemoryPlan,
    rejectedPlan: (_id, revision) => ({ image: `registry.example/app:${revision}`, replicas: 2, reject: true }) satisfies MemoryPlan,
    state: async (id) => structuredClone(provider.deployments.get(id) ?? null),
    failProvider: () => {
      provider.down = true;
      return async () => {
        provider.down = false;
      };
    },
    settleMs: 200,
  };
}

/** The rules broken, in order, across the checks that failed. */
async function brokenRules(subject: ConformanceSubject): Promise<string[]> {
  return (await runConformance(subject)).filter((r) => !r.passed).map((r) => r.rule ?? '?');
}

describe('conformance suite self-test', () => {
  it('passes a conforming in-memory target', async () => {
    const results = await runConformance(memorySubject());
    expect(results.filter((r) => !r.passed)).toEqual([]);
    expect(results.length).toBe(5);
  });

  it('catches a target that skips the weights precondition (it normalises the weights instead)', async () => {
    const subject = memorySubject((good) => ({
      ...good,
      async applySplit(inventory: Inventory, options) {
        const split = inventory.split;
        const sum = split?.entries.reduce((s, e) => s + e.weightBps, 0) ?? 10_000;
        if (!split || sum === 10_000 || sum === 0) return good.applySplit(inventory, options);
        const entries = split.entries.map((e) => ({ ...e, weightBps: Math.round((e.weightBps * 10_000) / sum) }));
        return good.applySplit({ ...inventory, split: { ...split, entries } }, options);
      },
    }));
    expect(await brokenRules(subject)).toEqual(['precondition:weights-do-not-sum']);
  });

  it('catches a target that asks the provider before checking its preconditions', async () => {
    const subject = memorySubject((good) => ({
      ...good,
      async stage(inventory, revision, options) {
        await good.observe(inventory.deploymentId, options).catch(() => undefined);
        return good.stage(inventory, revision, options);
      },
    }));
    const results = await runConformance(subject);
    const failed = results.filter((r) => !r.passed);
    expect(failed.map((r) => r.rule)).toEqual(['precondition:revision-not-found']);
    expect(failed[0]?.message).toMatch(/after 1 provider call; preconditions are checked before any/);
  });

  it("catches a target that perturbs a sibling deployment's split", async () => {
    const seen = new Map<string, Inventory>();
    const subject = memorySubject((good) => ({
      ...good,
      async applySplit(inventory, options) {
        const outcome = await good.applySplit(inventory, options);
        seen.set(inventory.deploymentId, inventory);
        for (const [id, other] of seen) {
          if (id === inventory.deploymentId || !other.split) continue;
          // "Rebalances" every deployment it knows: reversed weights.
          const weights = other.split.entries.map((e) => e.weightBps).reverse();
          await good.applySplit({ ...other, split: { ...other.split, entries: other.split.entries.map((e, i) => ({ ...e, weightBps: weights[i] ?? 0 })) } }, options);
        }
        return outcome;
      },
    }));
    expect(await brokenRules(subject)).toEqual(['isolation:sibling-split']);
  });

  it('catches a target whose second stage is not a no-op (it warms as well)', async () => {
    const staged = new Set<string>();
    const subject = memorySubject((good) => ({
      ...good,
      async stage(inventory, revision, options) {
        const outcome = await good.stage(inventory, revision, options);
        const key = `${inventory.deploymentId}/${revision}`;
        if (staged.has(key)) await good.warm(inventory, revision, options);
        staged.add(key);
        return outcome;
      },
    }));
    expect(await brokenRules(subject)).toContain('idempotent:stage');
  });

  it('catches a target whose outcome differs on the second call', async () => {
    let calls = 0;
    const subject = memorySubject((good) => ({
      ...good,
      async warm(inventory, revision, options) {
        const outcome = await good.warm(inventory, revision, options);
        calls += 1;
        return { ...outcome, replicas: outcome.replicas + calls };
      },
    }));
    expect(await brokenRules(subject)).toEqual(['idempotent:warm']);
  });

  it('catches a split outcome that does not echo the entries applied (sorted, zero weights dropped)', async () => {
    const subject = memorySubject((good) => ({
      ...good,
      async applySplit(inventory, options) {
        const outcome = await good.applySplit(inventory, options);
        return { ...outcome, entries: outcome.entries.filter((e) => e.weightBps > 0).sort((x, y) => x.revision.localeCompare(y.revision)) };
      },
    }));
    expect(await brokenRules(subject)).toEqual(['echo:split']);
  });

  it('catches a target that fails to archive an archived revision', async () => {
    const subject = memorySubject((good, provider) => ({
      ...good,
      async archive(inventory, revision, options) {
        retireCall(inventory, revision);
        if (!provider.deployments.get(inventory.deploymentId)?.revisions.has(revision)) throw new Error(`revision ${revision} is not there`);
        return good.archive(inventory, revision, options);
      },
    }));
    expect(await brokenRules(subject)).toEqual(['idempotent:archive', 'archive:already-archived']);
  });

  it('catches a target that reports provider failures without their request and response', async () => {
    const subject = memorySubject((good) => ({
      ...good,
      async stage(inventory, revision, options) {
        try {
          return await good.stage(inventory, revision, options);
        } catch (error) {
          // eslint-disable-next-line preserve-caught-error -- the point: the detail is dropped
          if (isProviderError(error)) throw new Error('stage failed');
          throw error;
        }
      },
    }));
    expect(await brokenRules(subject)).toEqual(['provider-error:rejected']);
  });
});
