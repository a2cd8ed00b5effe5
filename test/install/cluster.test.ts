// openCluster in in-cluster mode: the pod's service account files below a path prefix, as
// Kubernetes mounts them, and a clear refusal when they are missing.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openCluster, SERVICE_ACCOUNT_DIR } from '../../src/cluster.ts';
import { loadConfig } from '../../src/config.ts';
import { TerminalError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';

const log = createLogger({ level: 'silent', format: 'json' });
const pod = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', DATABASE_URL: 'postgresql://k:p@db:5432/k' };
let prefix: string;
const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };

beforeAll(async () => {
  prefix = await mkdtemp(path.join(os.tmpdir(), 'keelson-sa-'));
});

afterEach(() => {
  // client-node's loadFromCluster reads these from process.env itself
  for (const [key, value] of [['KUBERNETES_SERVICE_HOST', saved.host], ['KUBERNETES_SERVICE_PORT', saved.port]] as const) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});

afterAll(async () => {
  await rm(prefix, { recursive: true, force: true });
});

describe('openCluster in-cluster', () => {
  it("refuses to start without the pod's service account token, saying what to do", async () => {
    const config = loadConfig(pod, {}, false);
    const error = await openCluster(config, log, { serviceAccountPrefix: prefix }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TerminalError);
    expect((error as Error).message).toBe(
      `In-cluster mode needs the pod's service account token at ${prefix}${SERVICE_ACCOUNT_DIR}/token, and it is missing: ` +
        "keep automountServiceAccountToken enabled for keelson's pod (deploy/kustomize does), or use --cluster kubeconfig.",
    );
  });

  it('reads the service account below the prefix and the API server from KUBERNETES_SERVICE_HOST/PORT', async () => {
    const dir = `${prefix}${SERVICE_ACCOUNT_DIR}`;
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'token'), 'sa-token');
    await writeFile(path.join(dir, 'ca.crt'), 'not checked until a request is made');
    await writeFile(path.join(dir, 'namespace'), 'keelson-system');
    Object.assign(process.env, { KUBERNETES_SERVICE_HOST: pod.KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT: pod.KUBERNETES_SERVICE_PORT });
    const config = loadConfig(pod, {}, false);
    expect(config.cluster).toBe('in-cluster');
    const cluster = await openCluster(config, log, { serviceAccountPrefix: prefix });
    expect(cluster.kind).toBe('in-cluster');
    expect(cluster.server).toBe('https://10.96.0.1:443');
    expect(cluster.kubeConfig.getCurrentCluster()?.caFile).toBe(path.join(dir, 'ca.crt'));
    expect(cluster.kubeConfig.getContextObject(cluster.kubeConfig.getCurrentContext())?.namespace).toBe('keelson-system');
    const headers: Record<string, string> = {};
    await cluster.kubeConfig.applyToHTTPSOptions({ headers });
    expect(headers.Authorization).toBe('Bearer sa-token');
    await cluster.close();
  });
});
