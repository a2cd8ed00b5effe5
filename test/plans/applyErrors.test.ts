// The apply effect (src/runtime/rolloutEffects.ts) with a cluster that refuses a Secret by quoting
// its value, as an API server's 422 may: the failure that becomes last_error, history and logs
// carries no Secret value, plain or base64. The cluster side is a stand-in KubeClient (the
// effect's own handling is what is tested); the plan cache is the real one.
import { describe, expect, it } from 'vitest';
import type { Desired } from '../../machines/deployment.machine.ts';
import type { Db } from '../../src/db/pool.ts';
import { TerminalError } from '../../src/errors.ts';
import type { KubeClient } from '../../src/kube/kubeClient.ts';
import type { KubeObject } from '../../src/kube/types.ts';
import { createLogger } from '../../src/logger.ts';
import type { Source } from '../../src/source/source.ts';
import { createPlanCache } from '../../src/plans/planCache.ts';
import type { Renderer } from '../../src/render/renderer.ts';
import { createRolloutEffects } from '../../src/runtime/rolloutEffects.ts';

const VALUE = 'sup3r-s3cret-value';
const b64 = (text: string) => Buffer.from(text).toString('base64');
const desired: Desired = {
  generation: 1, desiredStatus: 'active', imageRef: 'shop:1', project: 'shop', environment: 'prod', namespace: 'shop-prod',
  opsRepoId: null, manifestPath: null, valuesOverride: {}, autoRollback: false,
};

describe('apply failures', () => {
  it.each([
    ['stringData', { stringData: { password: VALUE } }, `Invalid value: "${VALUE}"`],
    ['data, quoted decoded', { data: { password: b64(VALUE) } }, `Invalid value: "${VALUE}"`],
    ['data, quoted as stored', { data: { password: b64(VALUE) } }, `Invalid value: "${b64(VALUE)}"`],
  ])('%s: the value is scrubbed from the message', async (_name, fields, quoted) => {
    const secret: KubeObject = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db' }, ...fields };
    let given: KubeObject[] = [];
    const kube = {
      apply: async (objects: KubeObject[]) => {
        given = objects;
        throw new TerminalError(`Kubernetes API rejected Secret shop-prod/db (422): Secret "db" is invalid: data[password]: ${quoted}: too long`, {
          code: 'kube_rejected',
          cause: { body: { message: quoted } },
        });
      },
    } as unknown as KubeClient;
    const plans = createPlanCache();
    const effects = createRolloutEffects({
      db: {} as Db,
      kube,
      source: {} as Source,
      renderer: {} as Renderer,
      log: createLogger({ level: 'silent', format: 'json' }),
      plans,
    });
    const plan = plans.put([secret]);
    const failure = await effects
      .apply({ deploymentId: 'd', namespace: 'shop-prod', plan, render: { deploymentId: 'd', desired, imageRef: 'shop:1', sha: null }, previous: [], prune: false }, new AbortController().signal)
      .then(() => undefined, (error: unknown) => error as TerminalError);
    // the plan was applied from the cache (no render), and failed
    expect(given).toEqual([secret]);
    expect(failure).toBeInstanceOf(TerminalError);
    expect(failure?.message).toContain('Secret "db" is invalid: data[password]: Invalid value: "[redacted]": too long');
    expect(failure?.message).not.toContain(VALUE);
    expect(failure?.message).not.toContain(b64(VALUE));
    expect(JSON.stringify(failure?.cause ?? null)).not.toContain(VALUE);
    // a failed apply keeps its plan for the retry
    expect(plans.get(plan)).toBeDefined();
  });
});
