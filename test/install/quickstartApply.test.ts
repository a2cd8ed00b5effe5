// The quickstart overlay as a user applies it (`kubectl apply --server-side -k`), into the
// simulator: every object is accepted, and the Deployment the API server stores carries the
// probes and the locked-down security context.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/index.ts';
import { simObject } from '../e2e/support.ts';
import { REPO_ROOT } from './support.ts';

const exec = promisify(execFile);
let sim: Simulator;
let dir: string;

beforeAll(async () => {
  sim = await startSimulator();
  dir = await mkdtemp(path.join(os.tmpdir(), 'keelson-quickstart-'));
  await sim.writeKubeconfig(path.join(dir, 'kubeconfig'));
});

afterAll(async () => {
  await sim?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('kubectl apply --server-side -k deploy/kustomize/overlays/quickstart', () => {
  it('is accepted whole, and the stored Deployment has the probes and security context', async () => {
    // async: the simulator answers from this very process
    const { stdout } = await exec('kubectl', [
      '--kubeconfig', path.join(dir, 'kubeconfig'), '--cache-dir', path.join(dir, 'cache'),
      'apply', '--server-side', '-k', path.join(REPO_ROOT, 'deploy', 'kustomize', 'overlays', 'quickstart'),
    ]);
    const applied = stdout.trim().split('\n').map((line) => line.replace(/-[a-z0-9]{10} serverside-applied$/, ' serverside-applied'));
    expect(applied.sort()).toEqual([
      'clusterrole.rbac.authorization.k8s.io/keelson serverside-applied',
      'clusterrolebinding.rbac.authorization.k8s.io/keelson serverside-applied',
      'deployment.apps/keelson serverside-applied',
      'namespace/keelson serverside-applied',
      'poddisruptionbudget.policy/keelson serverside-applied',
      'secret/keelson-database serverside-applied',
      'secret/keelson-postgres serverside-applied',
      'service/keelson serverside-applied',
      'service/keelson-postgres serverside-applied',
      'serviceaccount/keelson serverside-applied',
      'statefulset.apps/keelson-postgres serverside-applied',
    ]);

    const deployment = simObject(sim, 'Deployment', 'keelson', 'keelson') as { spec: { template: { spec: Record<string, unknown> } } } | undefined;
    const pod = deployment?.spec.template.spec as {
      securityContext: Record<string, unknown>;
      containers: Array<{ livenessProbe: unknown; readinessProbe: unknown; securityContext: unknown }>;
    };
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } });
    const container = pod.containers[0];
    expect(container?.livenessProbe).toMatchObject({ httpGet: { path: '/healthz', port: 'http' } });
    expect(container?.readinessProbe).toMatchObject({ httpGet: { path: '/readyz', port: 'http' } });
    expect(container?.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
  });
});
