// Action tracking end to end: a pipeline writes a row by SQL and `keelson wait` (a real child
// process) follows that generation through the real runtime and simulated cluster to its end;
// an API PATCH answers 202 with a Location that serves the action's phases while it runs.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type ApiApp } from '../../src/api/app.ts';
import { createToken } from '../../src/api/tokens.ts';
import { createMetrics } from '../../src/metrics.ts';
import { sleepUntil } from '../helpers.ts';
import { createOpsRepo, insertRow, log, startE2e, waitStatus, WEB_TEMPLATE, type E2e, type OpsRepo } from './support.ts';

const root = path.resolve(import.meta.dirname, '../..');
let e2e: E2e;
let repo: OpsRepo;
let api: ApiApp;
let server: Server;
let baseUrl: string;
let token: string;

beforeAll(async () => {
  // pods take a real second to start: a running action is there to be seen
  e2e = await startE2e({ sim: { timeScale: 1, podStartupDelayMs: 1000 } });
  repo = await createOpsRepo(e2e, 'platform', { 'values.yaml': 'replicas: 1\n', 'web/deployment.yaml': WEB_TEMPLATE });
  await e2e.startRuntime({ failFastGraceMs: 500 });
  api = createApp({ db: e2e.db, databaseUrl: e2e.t.url, log, metrics: createMetrics() });
  server = api.app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  token = (await createToken(e2e.db, { name: 'pipeline', permissions: ['deploy:read', 'deploy:promote'], project: null })).token;
}, 60_000);

afterAll(async () => {
  server?.closeAllConnections();
  server?.close();
  await api?.close();
  await e2e?.stop();
});

function wait(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('node', ['src/main.ts', 'wait', ...args], {
    cwd: root,
    env: {
      ...process.env,
      PATH: `${path.join(root, 'node_modules/.bin')}${path.delimiter}${process.env.PATH ?? ''}`,
      KEELSON_URL: baseUrl,
      KEELSON_TOKEN: token,
      KEELSON_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('keelson wait', () => {
  let id: string;

  it('follows the generation a pipeline wrote by SQL to success: exit 0, phases printed', async () => {
    id = await insertRow(e2e.db, { project: 'web', image: 'registry.example/web:1', opsRepoId: repo.id, manifestPath: 'web' });
    const result = await wait(['web', 'prod', '--timeout', '60s']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/phase apply done/);
    expect(result.stdout).toMatch(/phase verify done/);
    expect(result.stdout).toMatch(/web\/prod: deploy of generation 1 succeeded \(image registry\.example\/web:1\)/);
  });

  it('a failing image: exit 1 with the error sentence', async () => {
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/web:doesnotexist' where id = ${id}`);
    const result = await wait(['web', 'prod', '--generation', '2', '--timeout', '60s']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/web\/prod deploy of generation 2 failed \(image registry\.example\/web:doesnotexist\): .*(ErrImagePull|ImagePullBackOff)/);
  });

  it('usage errors, an unknown generation and a timeout exit 2', async () => {
    const usage = await wait(['web']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/Usage: keelson wait/);
    const unknown = await wait(['web', 'prod', '--generation', '99']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/404: web\/prod has no generation 99/);
    // a timeout shorter than any rollout
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/web:2' where id = ${id}`);
    const timeout = await wait(['web', 'prod', '--timeout', '1ms']);
    expect(timeout.code).toBe(2);
    expect(timeout.stderr).toMatch(/did not finish within/);
    await waitStatus(e2e.db, id, 'healthy');
  });
});

describe('API PATCH → 202 → Location', () => {
  it('serves the phases live while the action runs, then its outcome', async () => {
    const response = await fetch(`${baseUrl}/api/projects/web/deployments/prod`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ image_ref: 'registry.example/web:3' }),
    });
    expect(response.status).toBe(202);
    const accepted = (await response.json()) as { generation: number; action: string; status: string };
    expect(accepted).toMatchObject({ action: 'deploy', status: 'pending' });
    const location = response.headers.get('location');
    expect(location).toBe(`/api/projects/web/deployments/prod/actions/${accepted.generation}`);

    const seen: Array<{ status: string; phases: Array<{ name: string }>; state: string | null }> = [];
    const final = await sleepUntil(async () => {
      const view = (await (await fetch(`${baseUrl}${location}`, { headers: { authorization: `Bearer ${token}` } })).json()) as (typeof seen)[number];
      seen.push(view);
      return ['succeeded', 'failed', 'superseded'].includes(view.status) ? view : undefined;
    }, { timeoutMs: 30_000, intervalMs: 25 });
    expect(final).toMatchObject({ status: 'succeeded', phases: [{ name: 'sync' }, { name: 'render' }, { name: 'apply' }, { name: 'verify' }] });
    // while it verified, the applied phases were already served
    const running = seen.filter((v) => v.status === 'running' && v.phases.some((p) => p.name === 'apply'));
    expect(running.length).toBeGreaterThan(0);
    expect(running[0]?.state).toMatch(/^verifying/);
  });
});
