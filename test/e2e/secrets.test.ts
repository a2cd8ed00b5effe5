// #11 item 5, end to end: an ops repo renders a Secret (stringData and data) holding a random
// canary value; keelson deploys it, updates it, rolls it back, and resumes it after a SIGKILL
// mid-apply — once from its own (machine version 2) snapshot and once from a version 1 snapshot
// that still carried the rendered objects. The Secret in the cluster holds the canary (so the
// test can fail); the canary, plain or base64, is in no row of any table, no API response
// (every GET route of the OpenAPI document, the event streams), no log line of the server or of
// the killed runtime process, and no UI page.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MACHINE_VERSION } from '../../machines/deployment.machine.ts';
import { createToken } from '../../src/api/tokens.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { sleepUntil } from '../helpers.ts';
import {
  createOpsRepo, history, insertRow, simDeployment, simObject, spawnRealRuntime, startE2e, waitRow, waitStatus, WEB_TEMPLATE,
  type E2e, type OpsRepo, type RuntimeProcess,
} from './support.ts';

const CANARY = `canary-${randomBytes(16).toString('hex')}`;
const CANARY_DATA = `canary-data-${randomBytes(16).toString('hex')}`;
const b64 = (text: string) => Buffer.from(text).toString('base64');
/** Every form the canaries could leak in. */
const FORMS = [CANARY, b64(CANARY), CANARY_DATA, b64(CANARY_DATA)];

const SECRET_TEMPLATE = `apiVersion: v1
kind: Secret
metadata:
  name: {{ project }}-credentials
type: Opaque
stringData:
  password: {{ values.password }}
data:
  token: {{ values.token }}
`;

let e2e: E2e;
let repo: OpsRepo;
let server: RunningServer | undefined;
let adminToken: string;
let id: string;
const logLines: string[] = [];
const responses: Array<{ what: string; body: string }> = [];
const killed: RuntimeProcess[] = [];

async function serve(): Promise<RunningServer> {
  const kubeconfig = path.join(e2e.dir, 'sim.kubeconfig');
  await e2e.sim.writeKubeconfig(kubeconfig);
  const config = loadConfig(
    {
      DATABASE_URL: e2e.t.url,
      KUBECONFIG: kubeconfig,
      KEELSON_DATA_DIR: path.join(e2e.dir, 'data'),
      KEELSON_ALLOW_FILE_REPOS: 'true',
      KEELSON_TICK_INTERVAL: '200ms',
      PORT: '0',
      KEELSON_LOG_LEVEL: 'trace',
      KEELSON_LOG_FORMAT: 'json',
    },
    {},
    false,
  );
  // every log line of the server, at the most verbose level
  const log = createLogger({ level: 'trace', format: 'json', destination: { write: (line: string) => void logLines.push(line) } });
  return await startServer({ config, log, demo: false, machineConfig: { driftIntervalMs: 1000, retryBaseMs: 200, retryMaxMs: 2000 } });
}

async function get(url: string, what = url): Promise<string> {
  const response = await fetch(`${server?.url}${url}`, { headers: { authorization: `Bearer ${adminToken}` } });
  const body = await response.text();
  responses.push({ what: `${what} → ${response.status}`, body });
  return body;
}

/** Reads an event stream until `until(text)` holds, then closes it; the text is kept as a response. */
async function readStream(url: string, headers: Record<string, string>, until: (text: string) => boolean | Promise<boolean>): Promise<string> {
  const controller = new AbortController();
  const response = await fetch(`${server?.url}${url}`, { headers: { authorization: `Bearer ${adminToken}`, ...headers }, signal: controller.signal });
  expect(response.status).toBe(200);
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      text += decoder.decode(value, { stream: true });
    }
  })();
  try {
    await sleepUntil(() => until(text), { timeoutMs: 60_000, message: `event stream ${url}` });
  } finally {
    controller.abort();
    await pump;
  }
  responses.push({ what: `stream ${url}`, body: text });
  return text;
}

/** Opens the all-deployments stream now; `stop()` closes it and keeps what arrived. */
function followAllEvents(): { stop: () => Promise<string> } {
  const controller = new AbortController();
  let text = '';
  const done = (async () => {
    const response = await fetch(`${server?.url}/api/events`, { headers: { authorization: `Bearer ${adminToken}` }, signal: controller.signal });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done: ended } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (ended) return;
      text += decoder.decode(value, { stream: true });
    }
  })().catch(() => undefined);
  return {
    stop: async () => {
      controller.abort();
      await done;
      responses.push({ what: 'stream /api/events', body: text });
      return text;
    },
  };
}

function secretInCluster(): { password?: string; token?: string } {
  const secret = simObject(e2e.sim, 'Secret', 'vault-prod', 'vault-credentials') as { data?: Record<string, string> } | undefined;
  const data = secret?.data ?? {};
  return {
    password: data.password && Buffer.from(data.password, 'base64').toString(),
    token: data.token && Buffer.from(data.token, 'base64').toString(),
  };
}

const maxSeq = async () =>
  await e2e.db.oneFirst(sql.type(z.object({ seq: z.number() }))`select coalesce(max(seq), 0)::int as seq from deployment_transitions where deployment_id = ${id}`);

beforeAll(async () => {
  e2e = await startE2e();
  repo = await createOpsRepo(e2e, 'vault-ops', {
    'vault/values.yaml': `replicas: 2\npassword: "${CANARY}"\ntoken: "${b64(CANARY_DATA)}"\n`,
    'vault/deployment.yaml': WEB_TEMPLATE,
    'vault/secret.yaml': SECRET_TEMPLATE,
  });
  adminToken = (await createToken(e2e.db, { name: 'canary-admin', permissions: ['admin'] })).token;
  server = await serve();
}, 120_000);

afterAll(async () => {
  await Promise.all(killed.map((p) => p.kill('SIGKILL')));
  await server?.close();
  await e2e?.stop();
});

describe('a Secret with a canary value', () => {
  it('deploys, updates and rolls back; the cluster holds the canary', async () => {
    const events = followAllEvents();
    id = await insertRow(e2e.db, { project: 'vault', image: 'registry.example/vault:1', opsRepoId: repo.id });
    await waitStatus(e2e.db, id, 'healthy', 60_000);
    expect(secretInCluster()).toEqual({ password: CANARY, token: CANARY_DATA });

    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/vault:2' where id = ${id}`);
    await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/vault:2' && r.observed_generation === r.generation, 'vault:2', 60_000);
    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'rollback' where id = ${id}`);
    await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/vault:1' && r.observed_generation === r.generation, 'rolled back', 60_000);
    expect(await events.stop()).toContain('event: transition');
    expect(secretInCluster()).toEqual({ password: CANARY, token: CANARY_DATA });
  });

  it('resumes after a SIGKILL mid-apply, from its own snapshot, which holds a plan handle and no Secret data', async () => {
    await server?.close();
    server = undefined;
    const runtime = await spawnRealRuntime(e2e, { LEASE_TTL_MS: '1500', TICK_MS: '200', LOG_LEVEL: 'trace' });
    killed.push(runtime);
    // every API answer waits: the apply is still running when the process dies
    e2e.sim.faults.setLatency(1_500);
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/vault:3' where id = ${id}`);
    await waitRow(e2e.db, id, (r) => r.current_status === 'applying', 'applying', 30_000);
    const snapshot = await e2e.db.oneFirst(sql.type(z.object({ snapshot: z.unknown() }))`select snapshot from deployment_snapshots where deployment_id = ${id}`);
    expect(JSON.stringify(snapshot)).toMatch(/"plan":\{"id":"[0-9a-f-]{36}","hash":"[0-9a-f]{64}"/);
    await runtime.kill('SIGKILL');
    logLines.push(runtime.output());
    e2e.sim.faults.setLatency(0);

    server = await serve();
    await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/vault:3' && r.observed_generation === r.generation, 'vault:3 after the crash', 60_000);
    expect(simDeployment(e2e.sim, 'vault-prod', 'vault')?.image).toBe('registry.example/vault:3');
    expect(secretInCluster()).toEqual({ password: CANARY, token: CANARY_DATA });
  });

  it('resumes from a version 1 snapshot that still held the rendered objects, and the next snapshot holds none', async () => {
    await server?.close();
    server = undefined;
    const runtime = await spawnRealRuntime(e2e, { LEASE_TTL_MS: '1500', TICK_MS: '200', LOG_LEVEL: 'trace' });
    killed.push(runtime);
    e2e.sim.faults.setLatency(1_500);
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/vault:4' where id = ${id}`);
    await waitRow(e2e.db, id, (r) => r.current_status === 'applying', 'applying', 30_000);
    await runtime.kill('SIGKILL');
    logLines.push(runtime.output());
    e2e.sim.faults.setLatency(0);

    // what a version 1 keelson had journaled at this point: the rendered objects, Secret included,
    // in the work and in the in-flight apply's input
    const rendered = [
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'vault-credentials' }, type: 'Opaque', stringData: { password: CANARY }, data: { token: b64(CANARY_DATA) } },
    ];
    await e2e.db.query(sql.unsafe`
      update deployment_snapshots set machine_version = '1', snapshot =
        jsonb_set(jsonb_set(snapshot #- '{context,work,plan}', '{context,work,rendered}', ${sql.jsonb(rendered)}),
                  '{children,apply,snapshot,input}',
                  (snapshot #> '{children,apply,snapshot,input}') - 'plan' - 'render' || jsonb_build_object('objects', ${sql.jsonb(rendered)}))
      where deployment_id = ${id}`);
    expect(JSON.stringify(await e2e.db.oneFirst(sql.type(z.object({ snapshot: z.unknown() }))`select snapshot from deployment_snapshots where deployment_id = ${id}`))).toContain(CANARY);

    server = await serve();
    await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/vault:4' && r.observed_generation === r.generation, 'vault:4 after the restore', 60_000);
    expect(secretInCluster()).toEqual({ password: CANARY, token: CANARY_DATA });
    const version = await e2e.db.oneFirst(sql.type(z.object({ machine_version: z.string() }))`select machine_version from deployment_snapshots where deployment_id = ${id}`);
    expect(version).toBe(MACHINE_VERSION);
    // resumed from the converted snapshot, not started afresh: the action's sync ran once
    expect(logLines.join('\n')).not.toContain('persisted snapshot is unusable');
    const generation = await e2e.db.oneFirst(sql.type(z.object({ generation: z.number() }))`select generation::int from deployments where id = ${id}`);
    const syncs = await e2e.db.anyFirst(sql.type(z.object({ to_state: z.string() }))`
      select to_state from deployment_transitions where deployment_id = ${id} and generation = ${generation} and to_state like 'syncing.fetching%'`);
    expect(syncs).toHaveLength(1);
    expect((await history(e2e.db, id)).map((h) => `${h.action}:${h.status}:${h.image_ref}`)).toEqual([
      'deploy:succeeded:registry.example/vault:1',
      'deploy:succeeded:registry.example/vault:2',
      'rollback:succeeded:registry.example/vault:1',
      'deploy:succeeded:registry.example/vault:3',
      'deploy:succeeded:registry.example/vault:4',
    ]);
  });

  it('the canary is in no table of the database', async () => {
    const tables = await e2e.db.anyFirst(sql.type(z.object({ name: z.string() }))`
      select format('%I.%I', table_schema, table_name) as name from information_schema.tables
      where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')`);
    expect(tables.length).toBeGreaterThan(5);
    expect(tables).toContain('public.deployment_snapshots');
    const leaks: string[] = [];
    for (const table of tables) {
      const rows = await e2e.db.anyFirst(sql.type(z.object({ row: z.string() }))`select t::text as row from ${sql.identifier(table.split('.'))} t`);
      for (const row of rows) if (FORMS.some((form) => row.includes(form))) leaks.push(`${table}: ${row.slice(0, 200)}`);
    }
    expect(leaks).toEqual([]);
  });

  it('the canary is in no API response, event stream or UI page', async () => {
    const openapi = JSON.parse(await get('/openapi.json')) as { paths: Record<string, Record<string, unknown>> };
    const params: Record<string, string> = { project: 'vault', env: 'prod', name: 'vault', id: repo.id, path: '' };
    let routes = 0;
    for (const [route, methods] of Object.entries(openapi.paths)) {
      if (!('get' in methods) || route.endsWith('/events')) continue;
      const url = route.replace(/\{(\w+)\}/g, (_m, name: string) => encodeURIComponent(params[name] ?? 'x'));
      await get(url, `GET ${route}`);
      routes++;
    }
    expect(routes).toBeGreaterThan(10);
    // replay of the deployment's whole transition log
    const last = await maxSeq();
    await readStream('/api/projects/vault/deployments/prod/events', { 'last-event-id': '0' }, (text) => text.includes(`id: ${last}\n`));
    for (const page of ['/ui/', '/ui/deployments/vault/prod', '/ui/static/index.html', '/ui/static/api.js', '/ui/static/app.js', '/ui/static/deployment.js', '/ui/static/list.js', '/ui/static/statechart.js', '/ui/static/util.js', '/healthz', '/readyz', '/metrics', '/docs/']) {
      await get(page);
    }
    // the responses are real: the detail and the snapshot of this deployment came back
    const detail = responses.find((r) => r.what.startsWith('GET /api/projects/{project}/deployments/{env} →'));
    expect(detail?.what).toContain('→ 200');
    expect(detail?.body).toContain('registry.example/vault:4');
    expect(responses.find((r) => r.what.startsWith('GET /api/projects/{project}/deployments/{env}/snapshot →'))?.body).toContain(`"machine_version":"${MACHINE_VERSION}"`);
    const leaks = responses.filter((r) => FORMS.some((form) => r.body.includes(form))).map((r) => r.what);
    expect(leaks).toEqual([]);
  });

  it('the canary is in no log line', async () => {
    // the server logged at trace level throughout, and the killed runtimes' output was kept
    expect(logLines.length).toBeGreaterThan(50);
    expect(logLines.join('\n')).toContain('applied objects');
    const leaks = logLines.filter((line) => FORMS.some((form) => line.includes(form)));
    await writeFile(path.join(e2e.dir, 'leaks.txt'), leaks.join('\n'));
    expect(leaks.map((line) => line.slice(0, 300))).toEqual([]);
  });
});
