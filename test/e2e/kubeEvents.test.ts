// Kubernetes Events end to end: a row deploys through the real runtime, the outbox's events are
// delivered by the dispatcher to the built-in kubernetes-events sink, and the real kubectl shows
// them (`get events`, `describe deployment`) against the simulator.
import { randomUUID } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createKubeClient, type KubeClient } from '../../src/kube/kubeClient.ts';
import { createDispatcher, type Dispatcher } from '../../src/notify/dispatcher.ts';
import { ensureKubeEventsSink, kubernetesEventsDeliverer } from '../../src/notify/sinks/kubernetesEvents.ts';
import { sleepUntil } from '../helpers.ts';
import { kubectl, type Kubectl } from '../sim/kubectl.ts';
import { createOpsRepo, insertRow, log, startE2e, waitStatus, WEB_TEMPLATE, type E2e, type OpsRepo } from './support.ts';

let e2e: E2e;
let repo: OpsRepo;
let kube: KubeClient;
let dispatcher: Dispatcher;
let run: Kubectl;

beforeAll(async () => {
  e2e = await startE2e();
  repo = await createOpsRepo(e2e, 'platform', { 'values.yaml': 'replicas: 1\n', 'web/deployment.yaml': WEB_TEMPLATE });
  await e2e.startRuntime({ failFastGraceMs: 500 });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(e2e.sim.kubeconfigYaml());
  const instanceId = randomUUID();
  kube = createKubeClient({ kubeConfig, log, requestTimeoutMs: 5_000, watchBackoffMs: 100, clientId: instanceId });
  expect(await ensureKubeEventsSink(e2e.db)).toBe(true);
  // a second start finds it there
  expect(await ensureKubeEventsSink(e2e.db)).toBe(false);
  dispatcher = createDispatcher({
    db: e2e.db,
    databaseUrl: e2e.t.url,
    log,
    instanceId,
    pollIntervalMs: 500,
    deliverers: { 'kubernetes-events': kubernetesEventsDeliverer({ kube, reportingInstance: instanceId }) },
  });
  await dispatcher.start();
  run = await kubectl(e2e.sim, e2e.dir, 'events');
}, 60_000);

afterAll(async () => {
  await dispatcher?.stop();
  kube?.close();
  await e2e?.stop();
});

/** Waits until every delivery of the deployment's events of `type` is delivered. */
async function delivered(id: string, type: string) {
  return await sleepUntil(
    async () => {
      const rows = await e2e.db.any(sql.type(z.object({ status: z.string(), last_error: z.string().nullable() }))`
        select d.status, d.last_error from notification_deliveries d join deployment_events ev on ev.id = d.event_id
        where ev.deployment_id = ${id} and ev.type = ${type}`);
      return rows.length > 0 && rows.every((r) => r.status === 'delivered') ? rows : undefined;
    },
    { timeoutMs: 20_000, message: `${type} delivered` },
  );
}

describe('Kubernetes Events', () => {
  let id: string;

  it('after a deploy, kubectl get events shows keelson\'s DeploySucceeded on the Deployment', async () => {
    id = await insertRow(e2e.db, { project: 'web', image: 'registry.example/web:1', opsRepoId: repo.id, manifestPath: 'web' });
    await waitStatus(e2e.db, id, 'healthy');
    await delivered(id, 'deploy.succeeded');
    const get = await run(['get', 'events', '-n', 'web-prod']);
    expect(get.stderr).toBe('');
    expect(get.code).toBe(0);
    expect(get.stdout).toMatch(/LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE/);
    expect(get.stdout).toMatch(/Normal\s+DeploySucceeded\s+deployment\/web\s+Deploy of registry\.example\/web:1 succeeded \(generation 1, commit [0-9a-f]{12}\) in [\d.]+ s\./);
    const json = JSON.parse((await run(['get', 'events', '-n', 'web-prod', '-o', 'json'])).stdout) as { items: Array<Record<string, unknown>> };
    expect(json.items.find((e) => e.reason === 'DeploySucceeded')).toMatchObject({ reportingComponent: 'keelson', source: { component: 'keelson' } });
  });

  it('kubectl describe deployment lists them under Events (found by involvedObject field selectors)', async () => {
    const describe = await run(['describe', 'deployment', 'web', '-n', 'web-prod']);
    expect(describe.code).toBe(0);
    expect(describe.stdout).toMatch(/Events:[\s\S]*Normal\s+DeploySucceeded\s+\S+\s+keelson\s+Deploy of registry\.example\/web:1 succeeded/);
  });

  it('a failing image is a Warning DeployFailed naming the pod\'s reason', async () => {
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/web:doesnotexist' where id = ${id}`);
    await waitStatus(e2e.db, id, 'failed');
    await delivered(id, 'deploy.failed');
    const get = await run(['get', 'events', '-n', 'web-prod', '--field-selector', 'reason=DeployFailed']);
    expect(get.code).toBe(0);
    expect(get.stdout).toMatch(/Warning\s+DeployFailed\s+deployment\/web\s+Deploy of registry\.example\/web:doesnotexist failed \(generation 2\): .*(ErrImagePull|ImagePullBackOff)/);
    expect(get.stdout).not.toMatch(/DeploySucceeded/);
  });
});
