// Migration 0005: a version 1 snapshot stored mid-apply (with the rendered objects, Secret data
// included, in the work and in the apply's input) loses them; other snapshots stay as they are;
// and the result is what the runtime restores (migratePersistedSnapshot accepts it).
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { migratePersistedSnapshot } from '../../machines/deployment.machine.ts';
import { loadMigrations, migrate, MIGRATIONS_DIR } from '../../src/db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../helpers.ts';

const SECRET = 'canary-0005-value';
const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db' }, stringData: { password: SECRET } };
let t: TestDatabase;

beforeAll(async () => {
  t = await createTestDatabase({ migrate: false });
});

afterAll(async () => {
  await t.drop();
});

async function deployment(environment: string): Promise<string> {
  return await t.db.oneFirst(sql.type(z.object({ id: z.string() }))`
    insert into deployments (project, environment, image_ref) values ('shop', ${environment}, 'shop:1') returning id`);
}

async function snapshotOf(id: string): Promise<unknown> {
  return await t.db.oneFirst(sql.type(z.object({ snapshot: z.unknown() }))`select snapshot from deployment_snapshots where deployment_id = ${id}`);
}

describe('migration 0005', () => {
  it('drops rendered objects from version 1 snapshots, and only those', async () => {
    // the schema as it was before 0005
    const dir = await mkdtemp(path.join(os.tmpdir(), 'keelson-0005-'));
    for (const m of (await loadMigrations()).filter((m) => m.version < 5)) {
      const file = `${String(m.version).padStart(4, '0')}_${m.name}.sql`;
      await copyFile(path.join(MIGRATIONS_DIR, file), path.join(dir, file));
    }
    await migrate(t.url, { dir });
    await rm(dir, { recursive: true, force: true });

    const applying = await deployment('applying');
    const v1 = {
      status: 'active',
      value: { applying: 'running' },
      context: { deploymentId: applying, work: { actionId: '1-1-deploy', imageRef: 'shop:1', sha: null, rendered: [secret], prune: false } },
      children: { apply: { src: 'apply', snapshot: { status: 'active', input: { deploymentId: applying, namespace: 'shop-prod', objects: [secret], previous: [], prune: false } } } },
    };
    const atRest = await deployment('rest');
    const restSnapshot = { status: 'active', value: { healthy: 'idle' }, context: { deploymentId: atRest, work: null }, children: {} };
    const current = await deployment('current');
    const currentSnapshot = { status: 'active', value: { healthy: 'idle' }, context: { deploymentId: current, work: null, note: SECRET }, children: {} };
    for (const [id, snapshot, version] of [[applying, v1, '1'], [atRest, restSnapshot, '1'], [current, currentSnapshot, '2']] as const) {
      await t.db.query(sql.unsafe`
        insert into deployment_snapshots (deployment_id, snapshot, state, machine_version, seq) values (${id}, ${sql.jsonb(snapshot)}, 'x', ${version}, 1)`);
    }

    const applied = await migrate(t.url);
    expect(applied.applied.map((m) => m.version)).toContain(5);

    const migrated = (await snapshotOf(applying)) as typeof v1;
    expect(JSON.stringify(migrated)).not.toContain(SECRET);
    expect(migrated.context.work).toEqual({ actionId: '1-1-deploy', imageRef: 'shop:1', sha: null, prune: false });
    expect(migrated.children.apply.snapshot.input).toEqual({ deploymentId: applying, namespace: 'shop-prod', previous: [], prune: false });
    // what the runtime restores from it: no plan, and apply's input to render again
    const restored = migratePersistedSnapshot(migrated, '1') as { context: { work: { plan: unknown } }; children: { apply: { snapshot: { input: { plan: unknown; render: unknown } } } } };
    expect(restored.context.work.plan).toBeNull();
    expect(restored.children.apply.snapshot.input).toMatchObject({ plan: null, render: { deploymentId: applying, imageRef: 'shop:1', sha: null } });
    // untouched: a version 1 snapshot without rendered objects, and any version 2 one
    expect(await snapshotOf(atRest)).toEqual(restSnapshot);
    expect(await snapshotOf(current)).toEqual(currentSnapshot);
  });
});
