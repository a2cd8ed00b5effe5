// `keelson token` and the people CLI as child processes (Node 24 from node_modules/.bin) against
// the test database and an in-process API server; the test plays the runtime.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleepUntil } from '../helpers.ts';
import { startHarness, type Harness } from './harness.ts';

const root = path.resolve(import.meta.dirname, '../..');
let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});

afterAll(async () => {
  await h.close();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function keelson(args: string[], env: Record<string, string> = {}): { done: Promise<Run>; output: () => string } {
  const child = spawn('node', ['src/main.ts', ...args], {
    cwd: root,
    env: { ...process.env, PATH: `${path.join(root, 'node_modules/.bin')}${path.delimiter}${process.env.PATH ?? ''}`, DATABASE_URL: h.t.url, KEELSON_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<Run>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { done, output: () => stdout };
}

describe('keelson token', () => {
  let token: string;

  it('create prints the token once and stores only its sha-256 hash', async () => {
    const run = await keelson(['token', 'create', '--name', 'ci', '--permissions', 'deploy:read,deploy:promote', '--project', 'shop']).done;
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const found = run.stdout.match(/kls_[A-Za-z0-9_-]{43}/g) ?? [];
    expect(found).toHaveLength(1);
    token = found[0] ?? '';
    const { rows } = await h.pg.query("select * from api_tokens where name = 'ci'");
    expect(rows).toHaveLength(1);
    expect(rows[0].token_hash).toBe(createHash('sha256').update(token).digest('hex'));
    expect(rows[0]).toMatchObject({ permissions: ['deploy:read', 'deploy:promote'], project: 'shop', revoked_at: null });
    expect(JSON.stringify(rows)).not.toContain(token);
    expect((await h.request('GET', '/api/projects/shop/deployments', { token })).status).toBe(200);
  });

  it('list shows the token without its secret', async () => {
    const run = await keelson(['token', 'list']).done;
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/ci\s+deploy:read,deploy:promote\s+shop/);
    expect(run.stdout).not.toContain(token);
  });

  it('refuses a bad permission and a duplicate name with exit code 1', async () => {
    const bad = await keelson(['token', 'create', '--name', 'x', '--permissions', 'deploy:write']).done;
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/deploy:read, deploy:promote, admin/);
    const dup = await keelson(['token', 'create', '--name', 'ci', '--permissions', 'admin']).done;
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/already exists/);
  });

  it('revoke makes the API refuse the token', async () => {
    const run = await keelson(['token', 'revoke', 'ci']).done;
    expect(run.code).toBe(0);
    expect((await h.request('GET', '/api/projects/shop/deployments', { token })).status).toBe(401);
    const again = await keelson(['token', 'revoke', 'ci']).done;
    expect(again.code).toBe(1);
  });
});

describe('keelson deploy / stop / status', () => {
  let token: string;
  let id: string;
  const client = (args: string[]) => keelson(args, { KEELSON_URL: h.baseUrl, KEELSON_TOKEN: token });

  /** Plays the runtime: journals transitions, then writes the observed state. */
  async function settle(generation: number, states: string[], final: string, imageRef: string | null) {
    let from: string | null = (await h.pg.query('select current_status from deployments where id = $1', [id])).rows[0].current_status;
    const { rows } = await h.pg.query('select coalesce(max(seq), 0)::int as seq from deployment_transitions where deployment_id = $1', [id]);
    let seq = rows[0].seq as number;
    for (const state of [...states, final]) {
      await h.journal(id, ++seq, state, from);
      from = state;
    }
    await h.pg.query(
      `update deployments set current_status = $2, observed_generation = $3, current_image_ref = coalesce($4, current_image_ref),
              deployed_at = case when $2 = 'healthy' then now() else deployed_at end where id = $1`,
      [id, final, generation, imageRef],
    );
  }

  beforeAll(async () => {
    token = await h.token(['deploy:read', 'deploy:promote'], null, 'people');
    id = await h.insertDeployment('shop', 'staging');
  });

  it('deploy follows the rollout live and exits 0 when healthy', async () => {
    const run = client(['deploy', 'shop', 'staging', '--image', 'registry.example/shop:2.0.0']);
    const row = await sleepUntil(async () => (await h.pg.query("select generation from deployments where id = $1 and image_ref = 'registry.example/shop:2.0.0'", [id])).rows[0]);
    await sleepUntil(() => run.output().includes('Updated shop/staging'));
    await settle(Number(row.generation), ['syncing', 'applying', 'verifying'], 'healthy', 'registry.example/shop:2.0.0');
    const result = await run.done;
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/applying → verifying/);
    expect(result.stdout).toMatch(/verifying → healthy/);
    expect(result.stdout).toMatch(/shop\/staging is healthy/);
  });

  it('stop exits 1 when the deployment ends failed instead of stopped', async () => {
    const run = client(['stop', 'shop', 'staging']);
    const row = await sleepUntil(async () => (await h.pg.query("select generation from deployments where id = $1 and desired_status = 'stopped'", [id])).rows[0]);
    await settle(Number(row.generation), [], 'failed', null);
    const result = await run.done;
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/healthy → failed/);
  });

  it('status lists the deployments', async () => {
    const result = await client(['status', 'shop']).done;
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/shop\s+staging\s+stopped\s+failed/);
  });

  it('rollback exits 1 with the API message when there is no previous version', async () => {
    const result = await client(['rollback', 'shop', 'staging']).done;
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/409: .*no previous healthy version/);
  });

  it('rollback --release names the release; one that is not this deployment\'s is refused with the API\'s sentence', async () => {
    const result = await client(['rollback', 'shop', 'staging', '--release', '999999']).done;
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/404: History entry 999999 is not a release of shop\/staging/);
    const bad = await client(['rollback', 'shop', 'staging', '--release', 'latest']).done;
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--release: expected a history id/);
  });
});

describe('keelson delete', () => {
  let token: string;
  const client = (args: string[]) => keelson(args, { KEELSON_URL: h.baseUrl, KEELSON_TOKEN: token });
  const deleting = async (id: string) =>
    await sleepUntil(async () => (await h.pg.query("select generation from deployments where id = $1 and desired_status = 'deleted'", [id])).rows[0]);

  beforeAll(async () => {
    token = await h.token(['deploy:read', 'deploy:promote'], null, 'deleter');
  });

  it('follows the teardown and exits 0 once the row is gone', async () => {
    const id = await h.insertDeployment('shop', 'gone');
    const run = client(['delete', 'shop', 'gone']);
    await deleting(id);
    // the test plays the runtime: tearing down, then the row goes
    await h.pg.query("update deployments set current_status = 'tearing-down' where id = $1", [id]);
    await sleepUntil(() => run.output().includes('tearing-down'));
    await h.pg.query('delete from deployments where id = $1', [id]);
    const result = await run.done;
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Tearing down shop\/gone \(generation 2\)/);
    expect(result.stdout).toMatch(/shop\/gone is gone/);
  });

  it('exits 1 with the error when the teardown fails', async () => {
    const id = await h.insertDeployment('shop', 'stuck');
    const run = client(['delete', 'shop', 'stuck']);
    const row = await deleting(id);
    await h.pg.query("update deployments set current_status = 'failed', observed_generation = $2, last_error = 'forbidden: clusterroles' where id = $1", [id, row.generation]);
    const result = await run.done;
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/the teardown of shop\/stuck failed: forbidden: clusterroles/);
  });
});
