// Conformance of authentication, RBAC and TLS with the real kubectl 1.32: `create token`,
// `auth can-i` (with --list), `auth whoami`, the Forbidden and Unauthorized errors as kubectl
// prints them, RBAC kinds in `kubectl get`, and HTTPS verified against the simulator's own CA.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/index.ts';
import { kubectl, type Kubectl } from './kubectl.ts';

let sim: Simulator;
let root: string;
let admin: Kubectl;
let deployerToken: string;

const SETUP = `apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: deployer, namespace: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: config-reader, namespace: shop}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: deployer-reads-config, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: config-reader}
subjects:
- kind: ServiceAccount
  name: deployer
  namespace: shop
`;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'keelson-kubectl-auth-'));
  sim = await startSimulator({ rbac: true, tls: { dir: path.join(root, 'pki') } });
  admin = await kubectl(sim, root, 'admin');
  const file = path.join(root, 'setup.yaml');
  await writeFile(file, SETUP);
  const applied = await admin(['apply', '--server-side', '-f', file]);
  expect(applied.stderr).toBe('');
  const created = await admin(['create', 'token', 'deployer', '-n', 'shop']);
  expect(created.stderr).toBe('');
  deployerToken = created.stdout.trim();
});

afterAll(async () => {
  await sim?.close();
  await rm(root, { recursive: true, force: true });
});

describe('kubectl against the simulator with TLS and RBAC', () => {
  it('speaks HTTPS verified against the CA the kubeconfig carries, and ca.crt is written', async () => {
    const kubeconfig = sim.kubeconfigYaml();
    expect(sim.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(kubeconfig).toContain('certificate-authority-data:');
    expect(kubeconfig).not.toContain('insecure-skip-tls-verify');
    expect(await readFile(path.join(root, 'pki', 'ca.crt'), 'utf8')).toBe(sim.tls!.caPem);
    const namespaces = await admin(['get', 'namespaces', '-o', 'name']);
    expect(namespaces.stdout).toContain('namespace/shop');

    // A client that trusts another simulator's CA refuses this one's certificate.
    const stranger = await startSimulator({ tls: true });
    try {
      const otherCa = Buffer.from(stranger.tls!.caPem).toString('base64');
      const misled = await kubectl(sim, root, 'misled', { kubeconfig: kubeconfig.replace(/certificate-authority-data: .*/, `certificate-authority-data: ${otherCa}`) });
      const refused = await misled(['get', 'ns']);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('certificate signed by unknown authority');
    } finally {
      await stranger.close();
    }
  });

  it('create token mints a ServiceAccount token that whoami names', async () => {
    expect(deployerToken.split('.')).toHaveLength(3);
    const claims = JSON.parse(Buffer.from(deployerToken.split('.')[1]!, 'base64url').toString('utf8'));
    expect(claims).toMatchObject({ sub: 'system:serviceaccount:shop:deployer', 'kubernetes.io': { namespace: 'shop', serviceaccount: { name: 'deployer' } } });
    const deployer = await kubectl(sim, root, 'whoami', { token: deployerToken });
    const whoami = await deployer(['auth', 'whoami']);
    expect(whoami.stderr).toBe('');
    expect(whoami.stdout).toMatch(/Username\s+system:serviceaccount:shop:deployer/);
    expect(whoami.stdout).toMatch(/Groups\s+\[system:serviceaccounts system:serviceaccounts:shop system:authenticated\]/);
  });

  it('auth can-i answers yes and no with the matching exit codes', async () => {
    const deployer = await kubectl(sim, root, 'can-i', { token: deployerToken });
    const yes = await deployer(['auth', 'can-i', 'list', 'configmaps', '-n', 'shop']);
    expect([yes.code, yes.stdout.trim()]).toEqual([0, 'yes']);
    const no = await deployer(['auth', 'can-i', 'delete', 'configmaps', '-n', 'shop']);
    expect([no.code, no.stdout.trim()]).toEqual([1, 'no']);
    const elsewhere = await deployer(['auth', 'can-i', 'get', 'configmaps', '-n', 'other']);
    expect([elsewhere.code, elsewhere.stdout.trim()]).toEqual([1, 'no']);
    const adminCan = await admin(['auth', 'can-i', 'delete', 'clusterroles']);
    expect([adminCan.code, adminCan.stdout.trim()]).toEqual([0, 'yes']);
  });

  it('auth can-i --list shows the rules that apply in the namespace', async () => {
    const deployer = await kubectl(sim, root, 'can-i-list', { token: deployerToken });
    const list = await deployer(['auth', 'can-i', '--list', '-n', 'shop']);
    expect(list.stderr).toBe('');
    const lines = list.stdout.split('\n');
    expect(lines[0]).toMatch(/^Resources\s+Non-Resource URLs\s+Resource Names\s+Verbs$/);
    expect(lines).toContainEqual(expect.stringMatching(/^configmaps\s+\[\]\s+\[\]\s+\[get list watch\]$/));
    expect(lines).toContainEqual(expect.stringMatching(/^selfsubjectaccessreviews\.authorization\.k8s\.io\s+\[\]\s+\[\]\s+\[create\]$/));
    expect(lines).toContainEqual(expect.stringMatching(/^\s+\[\/version\]\s+\[\]\s+\[get\]$/));
    const elsewhere = await deployer(['auth', 'can-i', '--list', '-n', 'other']);
    expect(elsewhere.stdout).not.toMatch(/^configmaps/m);
  });

  it('prints the real Forbidden and Unauthorized errors', async () => {
    const deployer = await kubectl(sim, root, 'forbidden', { token: deployerToken });
    const other = await deployer(['get', 'configmaps', '-n', 'other']);
    expect(other.code).not.toBe(0);
    expect(other.stderr.trim()).toBe(
      'Error from server (Forbidden): configmaps is forbidden: User "system:serviceaccount:shop:deployer" cannot list resource "configmaps" in API group "" in the namespace "other"',
    );
    const cluster = await deployer(['get', 'clusterroles']);
    expect(cluster.stderr.trim()).toBe(
      'Error from server (Forbidden): clusterroles.rbac.authorization.k8s.io is forbidden: User "system:serviceaccount:shop:deployer" cannot list resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope',
    );
    expect((await deployer(['get', 'configmaps', '-n', 'shop'])).stderr).toBe('No resources found in shop namespace.\n');
    const stranger = await kubectl(sim, root, 'bogus', { token: 'not-a-token' });
    const refused = await stranger(['get', 'pods']);
    // With a cold discovery cache kubectl fails at discovery, as against a real cluster.
    expect(refused.stderr).toContain('couldn\'t get current server API group list: the server has asked for the client to provide credentials');
    expect(refused.stderr.trim().split('\n').at(-1)).toBe('error: You must be logged in to the server (the server has asked for the client to provide credentials)');
    // With discovery cached (here: the admin's cache), the GET's own 401 Status is what it prints.
    const warm = await admin(['--token', 'not-a-token', 'get', 'pods']);
    expect(warm.stderr.trim()).toBe('error: You must be logged in to the server (Unauthorized)');
  });

  it('gets roles and bindings with the real columns', async () => {
    const roles = await admin(['get', 'roles', '-n', 'shop']);
    expect(roles.stdout).toMatch(/^NAME\s+CREATED AT\nconfig-reader\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$/);
    const bindings = await admin(['get', 'clusterrolebindings', '-o', 'wide']);
    expect(bindings.stdout.split('\n')[0]).toMatch(/^NAME\s+ROLE\s+AGE\s+USERS\s+GROUPS\s+SERVICEACCOUNTS$/);
    expect(bindings.stdout).toMatch(/system:discovery\s+ClusterRole\/system:discovery\s+\S+\s+system:authenticated/);
    const roleBindings = await admin(['get', 'rolebindings', '-n', 'shop', '-o', 'wide']);
    expect(roleBindings.stdout).toMatch(/deployer-reads-config\s+Role\/config-reader\s+\S+\s+shop\/deployer/);
  });
});
