// Deployment endpoints: success and error paths, ETag/If-Match, rollback, pagination,
// idempotent retries and the audit row of every mutation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './harness.ts';

let h: Harness;
let admin: string;
let promote: string;
let kubeMode: 'ok' | 'error' = 'ok';
const liveCalls: Array<[string, string]> = [];

beforeAll(async () => {
  h = await startHarness({
    kube: {
      liveStatus: async (deploymentId, namespace) => {
        liveCalls.push([deploymentId, namespace]);
        if (kubeMode === 'error') throw new Error('connect ECONNREFUSED https://kube:secret-kube-pass@10.0.0.1:6443');
        return [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace, status: 'Current', message: 'Deployment is available. Replicas: 2' }];
      },
    },
  });
  admin = await h.token(['admin'], null, 'admin');
  promote = await h.token(['deploy:read', 'deploy:promote'], null, 'ci');
});

afterAll(async () => {
  expect(h.leaks([admin, promote, 'secret-kube-pass'])).toEqual([]);
  await h.close();
});

async function auditRows(action: string, target: string) {
  const { rows } = await h.pg.query('select actor, action, target, payload, ip from audit_log where action = $1 and target = $2 order by id', [action, target]);
  return rows as Array<{ actor: string; action: string; target: string; payload: Record<string, unknown>; ip: string | null }>;
}

describe('create and list', () => {
  it('creates a deployment: 202, Location of its action, ETag, audit row; then lists it', async () => {
    const created = await h.request('POST', '/api/projects/shop/deployments', {
      token: promote,
      body: { environment: 'staging', image_ref: 'registry.example/shop:1.0.0', values_override: { replicas: 2 }, auto_rollback: true },
    });
    expect(created.status).toBe(202);
    expect(created.headers.get('location')).toBe('/api/projects/shop/deployments/staging/actions/1');
    expect(created.headers.get('etag')).toBe(`"${created.body.id}:1"`);
    expect(created.body).toMatchObject({ project: 'shop', environment: 'staging', desired_status: 'active', auto_rollback: true, generation: 1 });
    expect(created.body).toMatchObject({
      action: 'deploy',
      status: 'pending',
      links: {
        self: '/api/projects/shop/deployments/staging',
        action: '/api/projects/shop/deployments/staging/actions/1',
        deployment: '/api/projects/shop/deployments/staging',
        events: '/api/projects/shop/deployments/staging/events',
      },
    });
    const audit = await auditRows('deployment.create', 'shop/staging');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: 'ci', payload: { image_ref: 'registry.example/shop:1.0.0', values_override: { keys: ['replicas'] } } });
    expect(audit[0]?.ip).toMatch(/127\.0\.0\.1/);

    const list = await h.request('GET', '/api/projects/shop/deployments', { token: promote });
    expect(list.status).toBe(200);
    expect(list.body.items).toEqual([
      expect.objectContaining({ environment: 'staging', image_ref: 'registry.example/shop:1.0.0', desired_status: 'active', current_status: 'idle', deployed_at: null }),
    ]);
  });

  it('refuses a second deployment of the same environment with 409', async () => {
    const again = await h.request('POST', '/api/projects/shop/deployments', { token: promote, body: { environment: 'staging', image_ref: 'x:1' } });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('deployment_exists');
  });

  it('resolves ops_repo by name', async () => {
    const repo = await h.request('POST', '/api/admin/ops-repos', { token: admin, body: { name: 'manifests', repo_url: 'https://git.example/ops.git' } });
    expect(repo.status).toBe(201);
    const created = await h.request('POST', '/api/projects/shop/deployments', {
      token: promote,
      body: { environment: 'qa', image_ref: 'x:1', ops_repo: 'manifests', manifest_path: 'shop/apps', namespace: 'shop-qa-ns' },
    });
    expect(created.status).toBe(202);
    expect(created.body).toMatchObject({ ops_repo_id: repo.body.id, manifest_path: 'shop/apps', namespace: 'shop-qa-ns' });
  });

  it.each([
    ['an image_ref with whitespace', { environment: 'prod', image_ref: 'a b' }, 'image_ref', /image reference/],
    ['a missing image_ref', { environment: 'prod' }, 'image_ref', /image reference/],
    ['an environment that is not a DNS label', { environment: 'Prod_1', image_ref: 'x:1' }, 'environment', /DNS label/],
    ['an unknown desired_status', { environment: 'prod', image_ref: 'x:1', desired_status: 'paused' }, 'desired_status', /active, stopped, rollback/],
    ['values_override that is not an object', { environment: 'prod', image_ref: 'x:1', values_override: [1] }, 'values_override', /JSON object/],
    ['an unknown field', { environment: 'prod', image_ref: 'x:1', replicas: 3 }, 'replicas', /unknown field/],
    ['an unknown ops repo', { environment: 'prod', image_ref: 'x:1', ops_repo: 'nope' }, 'ops_repo', /existing ops repo/],
    ['an unknown ops repo id', { environment: 'prod', image_ref: 'x:1', ops_repo_id: '00000000-0000-4000-8000-000000000000' }, 'ops_repo_id', /existing ops repo/],
    ['a manifest_path escaping the repo', { environment: 'prod', image_ref: 'x:1', manifest_path: '../etc' }, 'manifest_path', /relative path/],
    ['auto_rollback that is not a boolean', { environment: 'prod', image_ref: 'x:1', auto_rollback: 'yes' }, 'auto_rollback', /true or false/],
    ['an unknown drift policy', { environment: 'prod', image_ref: 'x:1', drift: 'ignore' }, 'drift', /repair, detect/],
  ])('answers 400 naming the field for %s', async (_label, body, field, message) => {
    const response = await h.request('POST', '/api/projects/shop/deployments', { token: promote, body });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('invalid_request');
    const detail = response.body.error.details.find((d: { field: string }) => d.field === field);
    expect(detail?.message).toMatch(message);
    const { rows } = await h.pg.query("select 1 from deployments where environment = 'prod'");
    expect(rows).toHaveLength(0);
  });

  it('answers 400 for a body that is not JSON and for a bad project name', async () => {
    const broken = await h.request('POST', '/api/projects/shop/deployments', { token: promote, body: '{"environment":', headers: { 'content-type': 'application/json' } });
    expect(broken.status).toBe(400);
    expect(broken.body.error.code).toBe('invalid_json');
    const badProject = await h.request('GET', '/api/projects/Shop!/deployments', { token: promote });
    expect(badProject.status).toBe(400);
    expect(badProject.body.error.details[0].field).toBe('path.project');
  });

  it('lists across projects at /api/deployments, optionally of one project', async () => {
    await h.insertDeployment('blog', 'prod');
    const all = await h.request('GET', '/api/deployments', { token: promote });
    expect(all.body.items.map((d: { project: string; environment: string }) => `${d.project}/${d.environment}`)).toEqual(['blog/prod', 'shop/qa', 'shop/staging']);
    const blog = await h.request('GET', '/api/deployments?project=blog', { token: promote });
    expect(blog.body.items).toHaveLength(1);
  });
});

describe('detail', () => {
  it('returns the row, recent history, the snapshot summary and the live status, with an ETag', async () => {
    const id = await h.insertDeployment('shop', 'detail');
    await h.pg.query(
      `insert into deployment_history (deployment_id, action_id, action, status, image_ref, generation) values ($1, 'a1', 'deploy', 'succeeded', 'x:1', 1)`,
      [id],
    );
    await h.pg.query(
      `insert into deployment_snapshots (deployment_id, snapshot, state, machine_version, seq)
       values ($1, $2, 'healthy', 'deployment@1', 7)`,
      [id, JSON.stringify({ status: 'active', value: 'healthy', context: { imageRef: 'x:1', attempt: 2, repoUrl: 'https://bob:hunter2-git@git.example/x.git', big: { nested: true } } })],
    );
    const response = await h.request('GET', '/api/projects/shop/deployments/detail', { token: promote });
    expect(response.status).toBe(200);
    expect(response.headers.get('etag')).toBe(`"${id}:1"`);
    expect(response.body.deployment.id).toBe(id);
    expect(response.body.history).toEqual([expect.objectContaining({ action: 'deploy', status: 'succeeded', image_ref: 'x:1' })]);
    expect(response.body.snapshot).toMatchObject({ state: 'healthy', seq: 7, machine_version: 'deployment@1', status: 'active' });
    expect(response.body.snapshot.context).toEqual({ imageRef: 'x:1', attempt: 2, repoUrl: 'https://bob:***@git.example/x.git' });
    expect(response.body.live).toEqual({
      available: true,
      namespace: 'shop-detail',
      resources: [expect.objectContaining({ kind: 'Deployment', name: 'web', status: 'Current' })],
    });
    expect(liveCalls).toContainEqual([id, 'shop-detail']);
  });

  it('serves the canary in flight: its steps, where it is, the split last asked for', async () => {
    const id = await h.insertDeployment('shop', 'canary');
    const snapshot = {
      status: 'active',
      value: { verifying: { canary: { steps: 'pausing' } } },
      context: {
        work: {
          strategy: { kind: 'canary', steps: [{ setWeight: 1000 }, { pauseMs: 30_000 }, { waitHealthy: true }, { setWeight: 5000 }] },
          canary: {
            revision: 'r3', stable: { name: 'r2', render: {} }, step: 1, split: [{ revision: 'r2', weightBps: 9000 }, { revision: 'r3', weightBps: 1000 }],
            pauseUntil: Date.UTC(2026, 11, 2, 4, 0, 0), paused: false, abortReason: null, stableServing: true, at: 0, healthDeadline: null, checkAt: null, refs: [],
          },
        },
      },
    };
    await h.pg.query(`insert into deployment_snapshots (deployment_id, snapshot, state, machine_version, seq) values ($1, $2, 'verifying', '5', 3)`, [id, JSON.stringify(snapshot)]);
    const response = await h.request('GET', '/api/projects/shop/deployments/canary', { token: promote });
    expect(response.body.snapshot.canary).toEqual({
      revision: 'r3',
      stable: 'r2',
      phase: 'steps',
      steps: [
        { step: '10 %', status: 'done' },
        { step: 'pause 30 s', status: 'current' },
        { step: 'wait healthy', status: 'pending' },
        { step: '50 %', status: 'pending' },
      ],
      split: [{ revision: 'r2', weight_bps: 9000 }, { revision: 'r3', weight_bps: 1000 }],
      paused: false,
      pause_until: '2026-12-02T04:00:00.000Z',
      abort_reason: null,
    });
    // no canary in flight (a replace, an older snapshot): null
    const detail = await h.request('GET', '/api/projects/shop/deployments/detail', { token: promote });
    expect(detail.body.snapshot.canary).toBeNull();
  });

  it('reports live: { available: false } when the cluster errors, without failing', async () => {
    kubeMode = 'error';
    try {
      const response = await h.request('GET', '/api/projects/shop/deployments/detail', { token: promote });
      expect(response.status).toBe(200);
      expect(response.body.live.available).toBe(false);
      expect(response.body.live.error).toContain('ECONNREFUSED');
      expect(response.body.live.error).not.toContain('secret-kube-pass');
    } finally {
      kubeMode = 'ok';
    }
  });

  it('redacts credentials in last_error and history errors, wherever the row is served', async () => {
    const id = await h.insertDeployment('shop', 'leaky');
    const leak = 'fetch https://bob:hunter3-git@git.example/x.git failed';
    await h.pg.query('update deployments set last_error = $2 where id = $1', [id, leak]);
    await h.pg.query(
      `insert into deployment_history (deployment_id, action_id, action, status, image_ref, generation, error) values ($1, 'a1', 'deploy', 'failed', 'x:1', 1, $2)`,
      [id, leak],
    );
    const responses = await Promise.all([
      h.request('GET', '/api/projects/shop/deployments/leaky', { token: promote }),
      h.request('GET', '/api/projects/shop/deployments', { token: promote }),
      h.request('GET', '/api/deployments', { token: promote }),
      h.request('GET', '/api/projects/shop/deployments/leaky/history', { token: promote }),
    ]);
    for (const response of responses) {
      expect(response.status).toBe(200);
      const text = JSON.stringify(response.body);
      expect(text).not.toContain('hunter3-git');
      expect(text).toContain('https://bob:***@git.example');
    }
  });

  it('answers 404 for an unknown environment', async () => {
    const response = await h.request('GET', '/api/projects/shop/deployments/nope', { token: promote });
    expect(response.status).toBe(404);
    expect(response.body.error).toMatchObject({ code: 'not_found' });
  });
});

describe('PATCH with If-Match', () => {
  it('updates the desired state, bumps the generation, returns the new ETag and audits', async () => {
    const id = await h.insertDeployment('shop', 'patch');
    const get = await h.request('GET', '/api/projects/shop/deployments/patch', { token: promote });
    const patched = await h.request('PATCH', '/api/projects/shop/deployments/patch', {
      token: promote,
      body: { image_ref: 'x:2', values_override: { password: 'values-secret' } },
      headers: { 'if-match': get.headers.get('etag') ?? '' },
    });
    expect(patched.status).toBe(202);
    expect(patched.body).toMatchObject({ image_ref: 'x:2', generation: 2, action: 'deploy', status: 'pending' });
    expect(patched.headers.get('location')).toBe('/api/projects/shop/deployments/patch/actions/2');
    expect(patched.headers.get('etag')).toBe(`"${id}:2"`);
    const audit = await auditRows('deployment.update', 'shop/patch');
    expect(audit).toHaveLength(1);
    expect(audit[0]?.payload).toMatchObject({ image_ref: 'x:2', generation: { from: 1, to: 2 }, values_override: { keys: ['password'] } });
    expect(JSON.stringify(audit[0]?.payload)).not.toContain('values-secret');
  });

  it('sets the drift policy at create and by PATCH without a new generation (a policy, not desired state)', async () => {
    const created = await h.request('POST', '/api/projects/shop/deployments', { token: promote, body: { environment: 'drift', image_ref: 'x:1', drift: 'detect' } });
    expect(created.status).toBe(202);
    expect(created.body).toMatchObject({ drift: 'detect', drift_detected: null, generation: 1 });
    const defaulted = await h.request('POST', '/api/projects/shop/deployments', { token: promote, body: { environment: 'drift2', image_ref: 'x:1' } });
    expect(defaulted.body).toMatchObject({ drift: 'repair' });
    const patched = await h.request('PATCH', '/api/projects/shop/deployments/drift', { token: promote, body: { drift: 'repair' } });
    expect(patched.status).toBe(202);
    expect(patched.body).toMatchObject({ drift: 'repair', generation: 1 });
    const audit = await auditRows('deployment.update', 'shop/drift');
    expect(audit[0]?.payload).toMatchObject({ drift: 'repair', generation: { from: 1, to: 1 } });
  });

  it('answers 412 for a stale ETag and changes nothing', async () => {
    const { rows } = await h.pg.query("select id from deployments where environment = 'patch'");
    const id = (rows[0] as { id: string }).id;
    const stale = await h.request('PATCH', '/api/projects/shop/deployments/patch', {
      token: promote,
      body: { image_ref: 'x:3' },
      headers: { 'if-match': `"${id}:1"` },
    });
    expect(stale.status).toBe(412);
    expect(stale.body.error.code).toBe('precondition_failed');
    expect(stale.headers.get('etag')).toBe(`"${id}:2"`);
    const { rows: after } = await h.pg.query('select image_ref, generation from deployments where id = $1', [id]);
    expect(after[0]).toEqual({ image_ref: 'x:2', generation: '2' });
    expect(await auditRows('deployment.update', 'shop/patch')).toHaveLength(1);
  });

  it('accepts a weak ETag and *', async () => {
    const { rows } = await h.pg.query("select id from deployments where environment = 'patch'");
    const id = (rows[0] as { id: string }).id;
    const weak = await h.request('PATCH', '/api/projects/shop/deployments/patch', { token: promote, body: { desired_status: 'stopped' }, headers: { 'if-match': `W/"${id}:2"` } });
    expect(weak.status).toBe(202);
    expect(weak.body).toMatchObject({ action: 'stop', status: 'pending' });
    const star = await h.request('PATCH', '/api/projects/shop/deployments/patch', { token: promote, body: { desired_status: 'active' }, headers: { 'if-match': '*' } });
    expect(star.status).toBe(202);
    expect(star.body.generation).toBe(4);
  });

  it.each([
    ['an empty body', {}, '(body)'],
    ['an unknown field', { namespace: 'x' }, 'namespace'],
    ['a bad desired_status', { desired_status: 'paused' }, 'desired_status'],
  ])('answers 400 for %s', async (_label, body, field) => {
    const response = await h.request('PATCH', '/api/projects/shop/deployments/patch', { token: promote, body });
    expect(response.status).toBe(400);
    expect(response.body.error.details.map((d: { field: string }) => d.field)).toContain(field);
  });

  it('answers 404 for an unknown deployment', async () => {
    const response = await h.request('PATCH', '/api/projects/shop/deployments/nope', { token: promote, body: { image_ref: 'x:1' } });
    expect(response.status).toBe(404);
  });
});

describe('delete (teardown)', () => {
  it('answers 202 with the generation, sets desired_status = deleted, audits; 404 for an unknown deployment', async () => {
    const id = await h.insertDeployment('shop', 'td');
    const response = await h.request('DELETE', '/api/projects/shop/deployments/td', { token: promote });
    expect(response.status).toBe(202);
    expect(response.body).toMatchObject({ generation: 2, deployment: { desired_status: 'deleted', generation: 2 } });
    expect(response.headers.get('etag')).toBe(`"${id}:2"`);
    // tracked like every mutation: the action it starts, and where to follow it
    expect(response.body).toMatchObject({ action: 'teardown', status: 'pending', links: { action: '/api/projects/shop/deployments/td/actions/2' } });
    expect(response.headers.get('location')).toBe('/api/projects/shop/deployments/td/actions/2');
    expect((await h.pg.query('select desired_status, generation from deployments where id = $1', [id])).rows[0]).toEqual({ desired_status: 'deleted', generation: '2' });
    expect(await auditRows('deployment.delete', 'shop/td')).toHaveLength(1);
    // the same request again changes nothing: the generation stays
    const again = await h.request('DELETE', '/api/projects/shop/deployments/td', { token: promote });
    expect(again.body.generation).toBe(2);
    expect((await h.request('DELETE', '/api/projects/shop/deployments/nope', { token: promote })).status).toBe(404);
  });
});

describe('canary commands', () => {
  it('sets canary_command with 202 and no new generation, audits it, and refuses an unknown command or a read-only token', async () => {
    await h.insertDeployment('shop', 'cn');
    const response = await h.request('POST', '/api/projects/shop/deployments/cn/canary/pause', { token: promote });
    expect(response.status).toBe(202);
    expect(response.body).toMatchObject({ command: 'pause', generation: 1 });
    const { rows } = await h.pg.query("select canary_command, generation::int from deployments where environment = 'cn'");
    expect(rows[0]).toEqual({ canary_command: 'pause', generation: 1 });
    expect(await auditRows('deployment.canary.pause', 'shop/cn')).toHaveLength(1);

    const unknown = await h.request('POST', '/api/projects/shop/deployments/cn/canary/skip', { token: promote });
    expect(unknown.status).toBe(400);
    // the value sent, quoted, and what is accepted
    expect(unknown.body.error).toMatchObject({
      code: 'invalid_request',
      message: 'Invalid request path: path.command: unknown command "skip"; expected one of pause, resume, promote, abort.',
      details: [{ field: 'path.command', message: 'unknown command "skip"; expected one of pause, resume, promote, abort' }],
    });
    // a long or hostile value: cut to 64 characters and JSON-quoted (its quote and newline escaped)
    const hostile = await h.request('POST', `/api/projects/shop/deployments/cn/canary/${encodeURIComponent(`a"b\n${'x'.repeat(200)}`)}`, { token: promote });
    expect(hostile.status).toBe(400);
    expect(hostile.body.error.details[0].message).toBe(`unknown command ${JSON.stringify(`a"b\n${'x'.repeat(60)}…`)}; expected one of pause, resume, promote, abort`);
    expect(hostile.body.error.message).not.toContain('\n');
    const reader = await h.token(['deploy:read'], null, 'reader');
    expect((await h.request('POST', '/api/projects/shop/deployments/cn/canary/abort', { token: reader })).status).toBe(403);
    expect((await h.request('POST', '/api/projects/shop/deployments/nope/canary/abort', { token: promote })).status).toBe(404);
    // the database states the same rule for SQL writers
    await expect(h.pg.query("update deployments set canary_command = 'skip' where environment = 'cn'")).rejects.toThrow(/deployments_canary_command_valid/);
  });
});

describe('rollback', () => {
  it('answers 409 when there is no previous healthy version', async () => {
    await h.insertDeployment('shop', 'rb');
    const response = await h.request('POST', '/api/projects/shop/deployments/rb/rollback', { token: promote });
    expect(response.status).toBe(409);
    expect(response.body.error.code).toBe('no_rollback_target');
    const { rows } = await h.pg.query("select desired_status from deployments where environment = 'rb'");
    expect(rows[0]).toEqual({ desired_status: 'active' });
  });

  it('accepts with 202, sets desired_status = rollback and names the target', async () => {
    const { rows } = await h.pg.query("select id from deployments where environment = 'rb'");
    const id = (rows[0] as { id: string }).id;
    for (const [n, image] of [['1', 'x:1'], ['2', 'x:2']] as const) {
      await h.pg.query(
        `insert into deployment_history (deployment_id, action_id, action, status, image_ref, generation) values ($1, $2, 'deploy', 'succeeded', $3, $4)`,
        [id, `a${n}`, image, n],
      );
    }
    // as the runtime would have left it: generation 2 deployed x:2
    await h.pg.query("update deployments set image_ref = 'x:2', observed_generation = 2, current_status = 'healthy' where id = $1", [id]);
    const response = await h.request('POST', '/api/projects/shop/deployments/rb/rollback', { token: promote });
    expect(response.status).toBe(202);
    expect(response.body.target.image_ref).toBe('x:1');
    expect(response.body.deployment).toMatchObject({ desired_status: 'rollback', generation: 3 });
    expect(response.body).toMatchObject({ generation: 3, action: 'rollback', status: 'pending' });
    expect(response.headers.get('location')).toBe('/api/projects/shop/deployments/rb/actions/3');
    expect(await auditRows('deployment.rollback', 'shop/rb')).toHaveLength(1);
  });

  it('rolls back to an explicit release (a history id of this deployment that succeeded), or refuses with a sentence', async () => {
    const id = await h.insertDeployment('shop', 'rbx');
    const other = await h.insertDeployment('shop', 'rbx-other');
    const insert = async (deployment: string, n: string, status: string, action = 'deploy'): Promise<number> =>
      Number((await h.pg.query(
        `insert into deployment_history (deployment_id, action_id, action, status, image_ref, generation) values ($1, $2, $3, $4, $5, 1) returning id`,
        [deployment, `a${n}`, action, status, `x:${n}`],
      )).rows[0].id);
    const ok = await insert(id, '1', 'succeeded');
    const failed = await insert(id, '2', 'failed');
    await insert(id, '3', 'succeeded');
    const foreign = await insert(other, '1', 'succeeded');
    const url = '/api/projects/shop/deployments/rbx/rollback';

    const notMine = await h.request('POST', url, { token: promote, body: { release: foreign } });
    expect(notMine.status).toBe(404);
    expect(notMine.body.error).toMatchObject({ code: 'release_not_found' });
    expect(notMine.body.error.message).toBe(`History entry ${foreign} is not a release of shop/rbx; list its releases with GET …/history.`);
    const unsucceeded = await h.request('POST', url, { token: promote, body: { release: failed } });
    expect(unsucceeded.status).toBe(409);
    expect(unsucceeded.body.error.message).toMatch(new RegExp(`^Release ${failed} of shop/rbx failed; only a release that went healthy`));
    expect((await h.request('POST', url, { token: promote, body: { release: 'one' } })).status).toBe(400);
    // nothing was changed by the refusals
    expect((await h.pg.query('select desired_status, rollback_to, generation from deployments where id = $1', [id])).rows[0]).toEqual({ desired_status: 'active', rollback_to: null, generation: '1' });

    const accepted = await h.request('POST', url, { token: promote, body: { release: ok } });
    expect(accepted.status).toBe(202);
    expect(accepted.body.target).toEqual({ image_ref: 'x:1', sha: null, history_id: ok });
    expect((await h.pg.query('select desired_status, rollback_to from deployments where id = $1', [id])).rows[0]).toEqual({ desired_status: 'rollback', rollback_to: String(ok) });
  });
});

describe('actions', () => {
  const A = '/api/projects/shop/deployments/act/actions';
  let id: string;
  const phase = (name: string, error: string | null = null) => ({ name, started_at: '2026-01-01T00:00:00Z', finished_at: '2026-01-01T00:00:01Z', duration_ms: 1000, detail: null, error });

  it('follows a generation written by SQL: pending, running from the snapshot, then done from history', async () => {
    id = await h.insertDeployment('shop', 'act');
    const pending = await h.request('GET', `${A}/1`, { token: promote });
    expect(pending.status).toBe(200);
    expect(pending.body).toMatchObject({ generation: 1, action: 'deploy', action_id: null, status: 'pending', phases: [], links: { self: `${A}/1`, action: `${A}/1` } });

    const work = { actionId: '1-1-deploy', action: 'deploy', generation: 1, imageRef: 'registry.example/shop:1.0.0', phases: [phase('sync')] };
    await h.pg.query(
      `insert into deployment_snapshots (deployment_id, snapshot, state, machine_version, seq) values ($1, $2, 'syncing.rendering', 'v', 2)`,
      [id, JSON.stringify({ value: { syncing: 'rendering' }, context: { work } })],
    );
    const running = await h.request('GET', `${A}/1`, { token: promote });
    expect(running.body).toMatchObject({ status: 'running', action_id: '1-1-deploy', state: 'syncing.rendering', phases: [{ name: 'sync' }] });

    await h.pg.query(
      `insert into deployment_history (deployment_id, action_id, action, status, image_ref, generation, phases, error)
       values ($1, '1-1-deploy', 'deploy', 'failed', 'registry.example/shop:1.0.0', 1, $2, $3)`,
      [id, JSON.stringify([phase('sync', 'fetch https://bot:hunter2@git.example/ops.git failed')]), 'fetch https://bot:hunter2@git.example/ops.git failed'],
    );
    await h.pg.query("update deployments set observed_generation = 1, current_status = 'failed' where id = $1", [id]);
    const failed = await h.request('GET', `${A}/1`, { token: promote });
    expect(failed.body).toMatchObject({ status: 'failed', error: 'fetch https://bot:***@git.example/ops.git failed' });
    expect(failed.text).not.toContain('hunter2');
  });

  it('a generation overtaken before anything ran is superseded; a future one is 404; a bad one 400', async () => {
    await h.pg.query("update deployments set image_ref = 'x:2' where id = $1", [id]);
    await h.pg.query("update deployments set image_ref = 'x:3' where id = $1", [id]);
    const overtaken = await h.request('GET', `${A}/2`, { token: promote });
    expect(overtaken.body).toMatchObject({ status: 'superseded', superseded_by: 3 });
    const future = await h.request('GET', `${A}/4`, { token: promote });
    expect(future.status).toBe(404);
    expect(future.body.error.message).toMatch(/no generation 4; its newest is 3/);
    expect((await h.request('GET', `${A}/0`, { token: promote })).status).toBe(400);
    expect((await h.request('GET', `${A}/abc`, { token: promote })).status).toBe(400);
  });

  it('a token scoped to another project gets 404', async () => {
    const other = await h.token(['deploy:read'], 'other');
    expect((await h.request('GET', `${A}/1`, { token: other })).status).toBe(404);
  });
});

describe('history and transitions pagination', () => {
  it.each(['history', 'transitions'])('pages %s newest first with limit and before', async (kind) => {
    const id = await h.insertDeployment('shop', `page-${kind}`);
    for (let i = 1; i <= 7; i++) {
      if (kind === 'history') {
        await h.pg.query(
          `insert into deployment_history (deployment_id, action_id, action, status, image_ref, generation) values ($1, $2, 'deploy', 'succeeded', $3, 1)`,
          [id, `a${i}`, `x:${i}`],
        );
      } else {
        await h.pg.query(
          `insert into deployment_transitions (deployment_id, from_state, to_state, event, generation, seq) values ($1, 'idle', 'syncing', 'e', 1, $2)`,
          [id, i],
        );
      }
    }
    const path = `/api/projects/shop/deployments/page-${kind}/${kind}`;
    const seen: number[] = [];
    let next: number | null = null;
    let pages = 0;
    do {
      const response = await h.request('GET', `${path}?limit=3${next ? `&before=${next}` : ''}`, { token: promote });
      expect(response.status).toBe(200);
      seen.push(...response.body.items.map((item: { id: number }) => item.id));
      next = response.body.next;
      pages++;
    } while (next !== null);
    expect(pages).toBe(3);
    expect(seen).toHaveLength(7);
    expect([...seen].sort((a, b) => b - a)).toEqual(seen);
    const all = await h.request('GET', path, { token: promote });
    expect(all.body.items).toHaveLength(7);
    expect(all.body.next).toBeNull();
  });

  it.each([['limit=0', 'query.limit'], ['limit=501', 'query.limit'], ['before=abc', 'query.before']])('answers 400 for %s', async (query, field) => {
    const response = await h.request('GET', `/api/projects/shop/deployments/page-history/history?${query}`, { token: promote });
    expect(response.status).toBe(400);
    expect(response.body.error.details[0].field).toBe(field);
  });
});

describe('idempotency', () => {
  it('replays a retried PATCH: one change, one audit row, the same body', async () => {
    await h.insertDeployment('shop', 'idem');
    const send = () => h.request('PATCH', '/api/projects/shop/deployments/idem', { token: promote, body: { image_ref: 'x:9' }, headers: { 'idempotency-key': 'key-1' } });
    const first = await send();
    const second = await send();
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.headers.get('location')).toBe('/api/projects/shop/deployments/idem/actions/2');
    expect(second.body).toEqual(first.body);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    const { rows } = await h.pg.query("select generation from deployments where environment = 'idem'");
    expect(rows[0]).toEqual({ generation: '2' });
    expect(await auditRows('deployment.update', 'shop/idem')).toHaveLength(1);
  });

  it('answers 422 for the same key with a different body, and changes nothing', async () => {
    const response = await h.request('PATCH', '/api/projects/shop/deployments/idem', { token: promote, body: { image_ref: 'x:10' }, headers: { 'idempotency-key': 'key-1' } });
    expect(response.status).toBe(422);
    expect(response.body.error.code).toBe('idempotency_key_reused');
    const { rows } = await h.pg.query("select image_ref from deployments where environment = 'idem'");
    expect(rows[0]).toEqual({ image_ref: 'x:9' });
  });

  it('uses X-Request-ID as the key when Idempotency-Key is absent, and replays a 202 with Location', async () => {
    const send = () => h.request('POST', '/api/projects/shop/deployments', { token: promote, body: { environment: 'idem-create', image_ref: 'x:1' }, headers: { 'x-request-id': 'req-42' } });
    const first = await send();
    const second = await send();
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(second.headers.get('location')).toBe('/api/projects/shop/deployments/idem-create/actions/1');
    expect(second.body).toEqual(first.body);
    expect(await auditRows('deployment.create', 'shop/idem-create')).toHaveLength(1);
  });

  it('executes concurrent duplicates once', async () => {
    await h.insertDeployment('shop', 'idem-race');
    const responses = await Promise.all(
      Array.from({ length: 6 }, () =>
        h.request('PATCH', '/api/projects/shop/deployments/idem-race', { token: promote, body: { image_ref: 'x:race' }, headers: { 'idempotency-key': 'race' } }),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(6).fill(202));
    expect(responses.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(5);
    const { rows } = await h.pg.query("select generation from deployments where environment = 'idem-race'");
    expect(rows[0]).toEqual({ generation: '2' });
    expect(await auditRows('deployment.update', 'shop/idem-race')).toHaveLength(1);
  });

  it('forgets a key older than the TTL (24 h): the request executes again', async () => {
    await h.pg.query("update idempotency_keys set created_at = now() - interval '25 hours' where key = 'key-1'");
    const response = await h.request('PATCH', '/api/projects/shop/deployments/idem', { token: promote, body: { image_ref: 'x:12' }, headers: { 'idempotency-key': 'key-1' } });
    expect(response.status).toBe(202);
    expect(response.headers.get('idempotent-replayed')).toBeNull();
    expect(response.body.image_ref).toBe('x:12');
    // and the key is fresh again: a retry replays
    const retry = await h.request('PATCH', '/api/projects/shop/deployments/idem', { token: promote, body: { image_ref: 'x:12' }, headers: { 'idempotency-key': 'key-1' } });
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
  });

  it('scopes keys by token: another token with the same key executes on its own', async () => {
    const other = await h.token(['deploy:promote', 'deploy:read']);
    const response = await h.request('PATCH', '/api/projects/shop/deployments/idem', { token: other, body: { image_ref: 'x:11' }, headers: { 'idempotency-key': 'key-1' } });
    expect(response.status).toBe(202);
    expect(response.headers.get('idempotent-replayed')).toBeNull();
    expect(response.body.image_ref).toBe('x:11');
  });
});
