// `npm start` as a newcomer runs it: nothing configured, so embedded PostgreSQL, the simulated
// cluster and the demo. A real `keelson serve` process, stopped with SIGTERM and started again.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleepUntil } from '../helpers.ts';

let dataDir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'keelson-serve-'));
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await rm(dataDir, { recursive: true, force: true });
});

interface Serve {
  child: ChildProcess;
  output: () => string;
  url: string;
  token: string;
  exit: Promise<number | null>;
}

async function serve(): Promise<Serve> {
  const env: NodeJS.ProcessEnv = { ...process.env, KEELSON_DATA_DIR: dataDir, PORT: '0', KEELSON_TICK_INTERVAL: '500ms', KEELSON_LOG_FORMAT: 'json' };
  for (const key of ['DATABASE_URL', 'KUBECONFIG', 'TEST_DATABASE_URL']) delete env[key];
  const child = spawn(process.execPath, ['src/main.ts', 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await sleepUntil(() => /admin token \(shown once\): kls_/.test(output) || child.exitCode !== null, {
    timeoutMs: 60_000,
    message: 'keelson serve printed its URL and token',
  });
  if (child.exitCode !== null) throw new Error(`keelson serve exited early:\n${output}`);
  const url = /keelson is running at (http:\/\/\S+)/.exec(output)?.[1] ?? '';
  const token = /admin token \(shown once\): (kls_\S+)/.exec(output)?.[1] ?? '';
  return { child, output: () => output, url, token, exit };
}

async function demoStatus(s: Serve) {
  const response = await fetch(`${s.url}/api/projects/demo/deployments/local`, { headers: { authorization: `Bearer ${s.token}` } });
  if (response.status !== 200) return undefined;
  const body = (await response.json()) as { deployment: { current_status: string; current_image_ref: string | null }; history: Array<{ action: string; status: string; triggered_by: string }> };
  return body;
}

describe('keelson serve with nothing configured', () => {
  // two starts of an embedded PostgreSQL and two rollouts: more than the default minute on a busy machine
  it('prints a URL and a token, and the demo deployment reaches healthy; restarts cleanly', { timeout: 180_000 }, async () => {
    const first = await serve();
    expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
    const healthy = await sleepUntil(async () => {
      const body = await demoStatus(first);
      return body?.deployment.current_status === 'healthy' ? body : undefined;
    }, { timeoutMs: 60_000, message: 'demo deployment healthy' });
    expect(healthy.deployment.current_image_ref).toBe('registry.example/demo/web:1.0.0');
    expect(healthy.history.map((h) => `${h.action}:${h.status}`)).toEqual(['deploy:succeeded']);
    await sleepUntil(async () => (await fetch(`${first.url}/readyz`)).status === 200, { message: 'ready' });

    first.child.kill('SIGTERM');
    expect(await first.exit).toBe(0);
    // the embedded PostgreSQL was stopped, not orphaned
    expect(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);

    // same data dir: the data survives, the old token is replaced, and the new (empty)
    // simulated cluster gets the demo again through the drift check
    const second = await serve();
    expect(second.token).not.toBe(first.token);
    expect((await fetch(`${second.url}/api/projects/demo/deployments/local`, { headers: { authorization: `Bearer ${first.token}` } })).status).toBe(401);
    const redeployed = await sleepUntil(async () => {
      const body = await demoStatus(second);
      return body && body.history.length === 2 && body.deployment.current_status === 'healthy' ? body : undefined;
    }, { timeoutMs: 60_000, message: 'demo redeployed into the new cluster' });
    expect(redeployed.history[0]?.triggered_by).toMatch(/^drift: .*Deployment demo.* missing from the cluster$/);
    second.child.kill('SIGTERM');
    expect(await second.exit).toBe(0);
  });

  it('refuses a bad configuration with the variable named, and exits non-zero', async () => {
    const child = spawn(process.execPath, ['src/main.ts', 'serve'], {
      env: { ...process.env, KEELSON_DATA_DIR: dataDir, PORT: '99999' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toContain('PORT / --port: expected an integer from 0 to 65535; got "99999"');
  });
});
