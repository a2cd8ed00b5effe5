// verify against the simulator, reading the shared cluster cache: healthy rollouts, fail-fast pod
// states, progress deadlines, aborts, dropped watches and an unreachable server.
import { describe, expect, it } from 'vitest';
import { TerminalError, TransientError } from '../../src/errors.ts';
import { sleepUntil } from '../helpers.ts';
import { configMap, deployment, read, since, startHarness, uniqueNamespace, useHarness } from './harness.ts';

describe('verify', () => {
  const h = useHarness({ sim: { podStartupDelayMs: 200 } });

  it('resolves once a healthy Deployment is available', async () => {
    const ns = uniqueNamespace('healthy');
    const { inventory } = await h.client.apply([deployment('web', 'shop:1', { replicas: 2 }), configMap('c')], { namespace: ns, deploymentId: 'v1', signal: h.signal });
    const result = await h.client.verify(inventory, {});
    expect(result.message).toBe(`1 workload is Current: Deployment ${ns}/web.`);
    expect((await read(h, 'apps/v1', 'Deployment', 'web', ns))?.status.availableReplicas).toBe(2);
  });

  it("judges the new rollout, not the cache's picture from before keelson's own write", async () => {
    const ns = uniqueNamespace('ryw');
    const first = await h.client.apply([deployment('web', 'shop:1')], { namespace: ns, deploymentId: 'v2', signal: h.signal });
    await h.client.verify(first.inventory, {});
    // A lagging cache still holds the healthy shop:1 Deployment right after this apply.
    h.proxy.delayWatches(500);
    const second = await h.client.apply([deployment('web', 'shop:crashloop')], { namespace: ns, deploymentId: 'v2', signal: h.signal }).finally(() => h.proxy.delayWatches(0));
    const error = await h.client.verify(second.inventory, { failFastGraceMs: 300 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TerminalError);
    expect((error as Error).message).toMatch(/pod web-[a-z0-9-]+: container web is waiting: CrashLoopBackOff/);
  });

  it('fails on an ErrImagePull that persists for three grace periods', async () => {
    // At real-time speed the simulated kubelet reports ErrImagePull for 5 s before backing off.
    const ns = uniqueNamespace('errpull');
    const { inventory } = await h.client.apply([deployment('web', 'shop:unpullable')], { namespace: ns, deploymentId: 'v3', signal: h.signal });
    const error = await h.client.verify(inventory, { failFastGraceMs: 300 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TerminalError);
    expect((error as Error).message).toMatch(/pod web-[a-z0-9-]+: container web is waiting: ErrImagePull \(.*shop:unpullable/);
  });

  it('ends promptly with an AbortError when the signal aborts', async () => {
    const ns = uniqueNamespace('abort');
    const { inventory } = await h.client.apply([deployment('web', 'shop:doesnotexist')], { namespace: ns, deploymentId: 'v4', signal: h.signal });
    const controller = new AbortController();
    let progressed = false;
    const outcome = h.client
      .verify(inventory, { signal: controller.signal, failFastGraceMs: 600_000, onProgress: () => (progressed = true) })
      .then(() => 'resolved', (e: unknown) => e);
    await sleepUntil(() => progressed, { message: 'verify reported progress' });
    controller.abort();
    expect(((await outcome) as Error).name).toBe('AbortError');
  });

  it('sends no request of its own once the cache watches the kinds', async () => {
    const ns = uniqueNamespace('quiet');
    const { inventory } = await h.client.apply([deployment('web', 'shop:1', { replicas: 2 })], { namespace: ns, deploymentId: 'v5', signal: h.signal });
    const from = h.proxy.requests.length;
    await h.client.verify(inventory, {});
    expect(since(h, from).filter((r) => r.verb !== 'watch')).toEqual([]);
  });
});

describe('verify through trouble', () => {
  it('rides out dropped watch streams, resuming them without a LIST', async () => {
    const h = await startHarness({ sim: { podStartupDelayMs: 1_500 } });
    try {
      const ns = uniqueNamespace('drop');
      const { inventory } = await h.client.apply([deployment('web', 'shop:1')], { namespace: ns, deploymentId: 't1', signal: h.signal });
      let progressed = false;
      const verifying = h.client.verify(inventory, { onProgress: () => (progressed = true) });
      await sleepUntil(() => progressed, { message: 'verify reported progress' });
      const from = h.proxy.requests.length;
      h.sim.faults.dropWatches();
      const result = await verifying;
      expect(result.message).toContain('is Current');
      await sleepUntil(() => since(h, from).some((r) => r.verb === 'watch'), { message: 'watches re-established' });
      expect(since(h, from).filter((r) => r.verb === 'list')).toEqual([]);
      const restarts = (await h.metrics.kubeWatchRestarts.get()).values.filter((v) => v.labels.reason === 'closed');
      expect(restarts.length).toBeGreaterThan(0);
    } finally {
      await h.close();
    }
  });

  it('ends with a TransientError when the server stays unreachable', async () => {
    const h = await startHarness({ sim: { podStartupDelayMs: 60_000 } });
    try {
      const ns = uniqueNamespace('gone');
      const { inventory } = await h.client.apply([deployment('web', 'shop:1')], { namespace: ns, deploymentId: 't2', signal: h.signal });
      let progressed = false;
      const outcome = h.client.verify(inventory, { onProgress: () => (progressed = true) }).catch((e: unknown) => e);
      await sleepUntil(() => progressed, { message: 'verify reported progress' });
      await h.sim.faults.pause();
      const error = await outcome;
      expect(error).toBeInstanceOf(TransientError);
      expect((error as TransientError).code).toBe('kube_unavailable');
    } finally {
      await h.sim.faults.resume();
      await h.close();
    }
  });

  it('classifies 503s as transient and an invalid object as terminal, naming it and quoting the server', async () => {
    const h = await startHarness();
    try {
      h.sim.faults.setErrorRate(1, [503]);
      const unavailable = await h.client.apply([configMap('x')], { namespace: uniqueNamespace('e503'), deploymentId: 't3', signal: h.signal }).catch((e: unknown) => e);
      expect(unavailable).toBeInstanceOf(TransientError);
      expect((unavailable as TransientError).code).toBe('kube_unavailable');
      h.sim.faults.reset();
      const ns = uniqueNamespace('invalid');
      const bad = deployment('web', 'shop:1');
      (bad.spec as { selector: unknown }).selector = { matchLabels: { app: 'something-else' } };
      const invalid = await h.client.apply([bad], { namespace: ns, deploymentId: 't3', signal: h.signal }).catch((e: unknown) => e);
      expect(invalid).toBeInstanceOf(TerminalError);
      expect((invalid as TerminalError).code).toBe('kube_rejected');
      expect((invalid as Error).message).toContain(`Deployment ${ns}/web`);
      expect((invalid as Error).message).toContain('does not match template');
    } finally {
      await h.close();
    }
  });
});

describe('verify on a fast clock', () => {
  // 100 simulated seconds per real second: the simulated kubelet reports ErrImagePull for 5
  // simulated seconds before ImagePullBackOff, and progress deadlines pass quickly.
  const fast = useHarness({ sim: { timeScale: 100 } });

  it('fails fast naming the pod and ImagePullBackOff for an unpullable image', async () => {
    const ns = uniqueNamespace('pull');
    const { inventory } = await fast.client.apply([deployment('web', 'shop:doesnotexist')], { namespace: ns, deploymentId: 'f1', signal: fast.signal });
    const error = await fast.client.verify(inventory, { failFastGraceMs: 300 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TerminalError);
    expect((error as TerminalError).code).toBe('rollout_failed');
    expect((error as Error).message).toMatch(
      new RegExp(`^Deployment ${ns}/web failed: pod web-[a-z0-9]+-[a-z0-9]+: container web is waiting: ImagePullBackOff \\(.*shop:doesnotexist.*\\)\\.$`),
    );
  });

  it('fails verification when the Deployment exceeds its progress deadline', async () => {
    const ns = uniqueNamespace('deadline');
    const { inventory } = await fast.client.apply([deployment('web', 'shop:doesnotexist', { progressDeadlineSeconds: 5 })], { namespace: ns, deploymentId: 'f2', signal: fast.signal });
    // A grace period longer than the test: only the deadline can end this.
    const error = await fast.client.verify(inventory, { failFastGraceMs: 600_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TerminalError);
    expect((error as TerminalError).code).toBe('rollout_failed');
    expect((error as Error).message).toContain(`Deployment ${ns}/web failed: Deployment exceeded its progress deadline`);
  });
});
