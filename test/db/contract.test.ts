// The database contract pipelines rely on, proven on real PostgreSQL.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createListener } from '../../src/db/listen.ts';
import { createTestDatabase, sleepUntil, type TestDatabase } from '../helpers.ts';

let t: TestDatabase;
let client: pg.Client;

beforeAll(async () => {
  t = await createTestDatabase();
  client = new pg.Client({ connectionString: t.url });
  await client.connect();
});

afterAll(async () => {
  await client.end();
  await t.drop();
});

async function insert(project: string, environment: string, extra: Record<string, unknown> = {}) {
  const columns = ['project', 'environment', 'image_ref', ...Object.keys(extra)];
  const values = [project, environment, 'registry.example/shop:1.0.0', ...Object.values(extra)];
  const placeholders = values.map((_, i) => `$${i + 1}`).join(', ');
  const { rows } = await client.query(
    `insert into deployments (${columns.join(', ')}) values (${placeholders}) returning *`,
    values,
  );
  return rows[0] as Record<string, unknown>;
}

describe('deployments constraints', () => {
  it('accepts a pipeline-style insert ... on conflict and fills the defaults', async () => {
    const sql = `
      insert into deployments (project, environment, image_ref)
      values ('shop', 'staging', 'registry.example/shop:1.0.0')
      on conflict (project, environment) do update set image_ref = excluded.image_ref
      returning *`;
    const first = (await client.query(sql)).rows[0];
    expect(first).toMatchObject({
      desired_status: 'active',
      current_status: 'idle',
      generation: '1',
      observed_generation: '0',
      auto_rollback: false,
      values_override: {},
      drift: 'repair',
      drift_detected: null,
    });
    const again = (await client.query(sql.replace('1.0.0', '1.1.0'))).rows[0];
    expect(again.id).toBe(first.id);
    expect(again.generation).toBe('2');
  });

  it.each([
    ['an unknown desired_status', { desired_status: 'paused' }, 'deployments_desired_status_valid'],
    ['a current_status outside the eight states', { current_status: 'deploying' }, 'deployments_current_status_valid'],
    ['values_override that is not an object', { values_override: JSON.stringify([1, 2]) }, 'deployments_values_override_object'],
    ['a namespace that is not a DNS label', { namespace: 'Bad_NS' }, 'deployments_namespace_format'],
    ['an unknown drift policy', { drift: 'ignore' }, 'deployments_drift_valid'],
  ])('refuses %s, naming the constraint', async (_label, extra, constraint) => {
    await expect(insert('shop', `env-${constraint.length}`, extra)).rejects.toThrow(constraint);
  });

  it.each([
    ['Shop', 'prod', 'deployments_project_format'],
    ['-shop', 'prod', 'deployments_project_format'],
    ['shop_app', 'prod', 'deployments_project_format'],
    ['a'.repeat(64), 'prod', 'deployments_project_format'],
    ['shop', 'Prod!', 'deployments_environment_format'],
  ])('refuses project %j / environment %j', async (project, environment, constraint) => {
    await expect(insert(project, environment)).rejects.toThrow(constraint);
  });

  it('refuses an image_ref with whitespace and a duplicate project/environment', async () => {
    await expect(
      client.query(`insert into deployments (project, environment, image_ref) values ('x', 'y', 'a b')`),
    ).rejects.toThrow('deployments_image_ref_format');
    await insert('dup', 'prod');
    await expect(insert('dup', 'prod')).rejects.toThrow('deployments_project_environment_key');
  });
});

describe('generation and notifications', () => {
  it('bumps generation by one and notifies once with the row id on a desired-state change only', async () => {
    const row = await insert('notify', 'prod');
    const received: string[] = [];
    const subscriber = createListener(t.url, ['keelson_deployments']);
    subscriber.events.on('notification', (_channel, payload) => received.push(payload));
    await subscriber.ready();
    try {
      await client.query(`update deployments set image_ref = 'registry.example/shop:2.0.0' where id = $1`, [row.id]);
      await sleepUntil(() => received.length >= 1, { message: 'notification for image_ref update' });
      let current = (await client.query('select generation from deployments where id = $1', [row.id])).rows[0];
      expect(current.generation).toBe('2');

      // keelson's own writes of observed columns, and the drift policy: no bump, no notification
      await client.query(`update deployments set drift = 'detect' where id = $1`, [row.id]);
      await client.query(
        `update deployments set current_status = 'syncing', observed_generation = 2, last_error = null, drift_detected = 'x' where id = $1`,
        [row.id],
      );
      // a later desired change proves the channel is still delivering, so silence above is real
      await client.query(`update deployments set desired_status = 'stopped' where id = $1`, [row.id]);
      await sleepUntil(() => received.length >= 2, { message: 'notification for desired_status update' });
      current = (await client.query('select generation from deployments where id = $1', [row.id])).rows[0];
      expect(current.generation).toBe('3');
      expect(received).toEqual([row.id, row.id]);

      // a writer cannot move generation by hand
      await client.query('update deployments set generation = 99 where id = $1', [row.id]);
      current = (await client.query('select generation from deployments where id = $1', [row.id])).rows[0];
      expect(current.generation).toBe('3');

      // an update that sets a desired column to its current value changes nothing
      await client.query(`update deployments set desired_status = 'stopped' where id = $1`, [row.id]);
      await client.query('delete from deployments where id = $1', [row.id]);
      await sleepUntil(() => received.length >= 3, { message: 'notification for delete' });
      expect(received).toEqual([row.id, row.id, row.id]);
    } finally {
      await subscriber.close();
    }
  });

  it('notifies on insert', async () => {
    const received: string[] = [];
    const subscriber = createListener(t.url, ['keelson_deployments']);
    subscriber.events.on('notification', (_channel, payload) => received.push(payload));
    await subscriber.ready();
    try {
      const row = await insert('fresh', 'prod');
      await sleepUntil(() => received.includes(String(row.id)), { message: 'notification for insert' });
    } finally {
      await subscriber.close();
    }
  });
});

describe('other tables', () => {
  it('refuses unknown token permissions and history values', async () => {
    await expect(
      client.query(`insert into api_tokens (name, token_hash, permissions) values ('ci', 'h', '{deploy:everything}')`),
    ).rejects.toThrow('api_tokens_permissions_valid');
    const row = await insert('hist', 'prod');
    await expect(
      client.query(
        `insert into deployment_history (deployment_id, action_id, action, status, image_ref, generation)
         values ($1, 'a1', 'deploy', 'maybe', 'x', 1)`,
        [row.id],
      ),
    ).rejects.toThrow('deployment_history_status_valid');
  });
});
