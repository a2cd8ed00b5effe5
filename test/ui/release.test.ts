// The deployment page's release view in real headless Chromium (Debian's /usr/bin/chromium via
// playwright-core) against a running keelson with the simulated cluster and a real git ops repo:
// two real releases (a new commit of values.yaml, a new image, a new values_override) and the page
// shows the current release's image, short commit and values hash, the values diff against the
// previous release by path, and the inventory by namespace; history rows a drift repair,
// superseded action and teardown wrote are marked, a succeeded release offers only a copyable
// `keelson rollback … --release <id>`, a dead notification delivery shows its error — and the
// canary secrets in values_override never reach the page (values_redacted only).
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createToken } from '../../src/api/tokens.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { startServer } from '../../src/server.ts';
import { createTestDatabase, sleepUntil, type TestDatabase } from '../helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.resolve('test-artifacts/ui');
// in values_override under secret-looking keys: values_redacted holds "[redacted]" instead
const CANARY_1 = 'canary-1-b7e4d2a9f0c3';
const CANARY_2 = 'canary-2-5d81c6e0a7f2';

const TEMPLATE = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ project }}
spec:
  replicas: {{ values.replicas }}
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ project }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {{ project }}
    spec:
      containers:
        - name: web
          image: {{ image_ref }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ project }}
spec:
  selector:
    app.kubernetes.io/name: {{ project }}
  ports:
    - port: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ project }}-settings
data:
  search: "{{ values.feature.search }}"
  db_host: "{{ values.db.host }}"
`;

let t: TestDatabase;
let server: Awaited<ReturnType<typeof startServer>>;
let dir: string;
let context: BrowserContext;
let page: Page;
let token: string;
let deploymentId: string;
const pageErrors: string[] = [];

const git = async (cwd: string, ...args: string[]) => (await promisify(execFile)('git', args, { cwd })).stdout.trim();

async function commit(repo: string, files: Record<string, string>): Promise<string> {
  for (const [file, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(repo, file)), { recursive: true });
    await writeFile(path.join(repo, file), content);
    await git(repo, 'add', file);
  }
  await git(repo, 'commit', '-q', '-m', 'change');
  return await git(repo, 'rev-parse', 'HEAD');
}

const Row = z.object({ current_status: z.string(), last_error: z.string().nullable(), current_image_ref: z.string().nullable(), current_sha: z.string().nullable(), generation: z.number(), observed_generation: z.number() });
async function waitHealthy(image: string): Promise<z.infer<typeof Row>> {
  const row = await sleepUntil(async () => {
    const r = await server.db.one(sql.type(Row)`select current_status, last_error, current_image_ref, current_sha, generation, observed_generation from deployments where id = ${deploymentId}`);
    const settled = r.current_image_ref === image && r.observed_generation === r.generation && r.current_status === 'healthy';
    return settled || r.current_status === 'failed' ? r : null;
  }, { timeoutMs: 40_000, message: `${image} never became healthy` });
  expect(row.last_error, `${image}: ${String(row.last_error)}`).toBeNull();
  expect(row.current_status).toBe('healthy');
  return row;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'keelson-ui-release-'));
  await mkdir(ARTIFACTS, { recursive: true });
  // the browser starts while the database and the server do
  const browserStarted = chromium.launchPersistentContext(path.join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1600, height: 1100 },
  });
  t = await createTestDatabase();
  const config = loadConfig({ DATABASE_URL: t.url, PORT: '0', KEELSON_DATA_DIR: path.join(dir, 'data'), KEELSON_TICK_INTERVAL: '100ms', KEELSON_LOG_LEVEL: 'warn', KEELSON_ALLOW_FILE_REPOS: 'true' }, {}, false);
  server = await startServer({ config, log: createLogger({ level: 'warn', format: 'json' }), demo: false, simulator: { podStartupDelayMs: 200, timeScale: 50 } });
  token = (await createToken(t.db, { name: 'ui-release', permissions: ['deploy:read'], project: null })).token;
  context = await browserStarted;
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    // a failed load is recorded with its URL by the response handler below (Chromium's own
    // favicon request, answered 404 by /favicon.ico, reaches only the console)
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) pageErrors.push(message.text());
  });
  page.on('response', (response) => {
    if (response.status() >= 400) pageErrors.push(`${response.status()} ${response.url()}`);
  });
}, 120_000);

afterAll(async () => {
  await context?.close();
  await server?.close();
  await t?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the release on the deployment page', () => {
  it('shows two real releases: the values diff, the inventory, marks, the rollback command, a dead delivery; never a secret', async () => {
    // two releases through the real runtime: an ops repo commit, an image and a values_override
    const repo = path.join(dir, 'ops');
    await mkdir(repo, { recursive: true });
    await git(repo, 'init', '-q', '-b', 'main');
    await git(repo, 'config', 'user.name', 'keelson test');
    await git(repo, 'config', 'user.email', 'test@keelson.invalid');
    await commit(repo, { 'values.yaml': 'replicas: 1\nfeature:\n  search: false\ndb:\n  host: db1\nhosts:\n  - a.example\n', 'shop/all.yaml': TEMPLATE });
    const repoId = await server.db.oneFirst(sql.type(z.object({ id: z.string() }))`
      insert into ops_repos (name, repo_url, branch, sync_interval_s) values ('shop-ops', ${`file://${repo}`}, 'main', 0) returning id`);
    deploymentId = await server.db.oneFirst(sql.type(z.object({ id: z.string() }))`
      insert into deployments (project, environment, image_ref, ops_repo_id, manifest_path, values_override)
      values ('shop', 'prod', 'registry.example/shop:1.0.0', ${repoId}, 'shop', ${sql.jsonb({ db: { password: CANARY_1 } })}) returning id`);
    // signed in while the first release rolls out
    await page.goto(`${server.url}/ui`);
    await page.locator('#token-input').fill(token);
    await page.locator('#token-form button[type=submit]').click();
    await page.locator('#deployments').waitFor();
    await waitHealthy('registry.example/shop:1.0.0');
    const second = await commit(repo, { 'values.yaml': 'replicas: 2\nfeature:\n  search: true\ndb:\n  host: db2\ningress:\n  host: shop.example\n' });
    await server.db.query(sql.unsafe`
      update deployments set image_ref = 'registry.example/shop:2.0.0', values_override = ${sql.jsonb({ db: { password: CANARY_2 } })} where id = ${deploymentId}`);
    const healthy = await waitHealthy('registry.example/shop:2.0.0');
    expect(healthy.current_sha).toBe(second);
    const History = z.object({ id: z.number(), values_redacted: z.unknown(), values_override: z.unknown() });
    const releases = await server.db.any(sql.type(History)`select id, values_redacted, values_override from deployment_history where deployment_id = ${deploymentId} order by id desc`);
    expect(releases).toHaveLength(2);
    // the canary is in the row (to render again) and redacted in what a person reads
    expect(JSON.stringify(releases[0]?.values_override)).toContain(CANARY_2);
    expect(JSON.stringify(releases[0]?.values_redacted)).not.toContain(CANARY_2);
    const [current, previous] = releases as [z.infer<typeof History>, z.infer<typeof History>];

    // what a drift repair, a superseded action and a teardown write to history, as marks to show
    await server.db.query(sql.unsafe`
      insert into deployment_history (deployment_id, project, environment, action_id, action, status, image_ref, sha, generation, error, triggered_by)
      values (${deploymentId}, 'shop', 'prod', 'test-drift', 'deploy', 'failed', 'registry.example/shop:2.0.0', ${second}, 2, 'apply: the API server refused', 'drift: live Deployment shop/shop differs'),
             (${deploymentId}, 'shop', 'prod', 'test-superseded', 'deploy', 'superseded', 'registry.example/shop:3.0.0', ${second}, 3, null, 'keelson'),
             (${deploymentId}, 'shop', 'prod', 'test-teardown', 'teardown', 'failed', 'registry.example/shop:2.0.0', null, 4, 'teardown: refused', 'keelson')`);
    // a notification that could not be delivered: dead, with its last error
    const sinkId = await server.db.oneFirst(sql.type(z.object({ id: z.string() }))`
      insert into notification_sinks (name, kind, url, secret, enabled) values ('ops-webhook', 'webhook', 'http://127.0.0.1:9/hook', 'a-secret-of-16-chars', false) returning id`);
    const event = await server.db.one(sql.type(z.object({ id: z.string(), position: z.number() }))`
      select id, position from deployment_events where deployment_id = ${deploymentId} order by position desc limit 1`);
    await server.db.query(sql.unsafe`
      insert into notification_deliveries (event_id, sink_id, deployment_id, event_position, status, attempts, last_error, finished_at)
      values (${event.id}, ${sinkId}, ${deploymentId}, ${event.position}, 'dead', 8, 'connect ECONNREFUSED 127.0.0.1:9', now())`);

    await page.goto(`${server.url}/ui/deployments/shop/prod`);
    await page.locator('body[data-deployment-ready="true"]').waitFor({ timeout: 20_000 });

    // the current release: image, short commit, values hash
    expect(await page.evaluate(() => document.body.dataset.releaseId)).toBe(String(current.id));
    await expect(page.locator('#release-image').textContent()).resolves.toBe('registry.example/shop:2.0.0');
    await expect(page.locator('#release-sha').textContent()).resolves.toBe(second.slice(0, 12));
    expect(await page.locator('#release-values-hash').textContent()).toMatch(/^[0-9a-f]{12}$/);
    // where it was rendered from (migration 0013): the manifest path and the ops repo
    await expect(page.locator('#release-source').textContent()).resolves.toBe(`shop · ops repo ${repoId.slice(0, 8)}`);
    // the values diff by path, exactly what changed between the two rows' values_redacted
    const diff = await page.locator('#values-diff tbody tr').evaluateAll((rows) => rows.map((r) => `${(r as HTMLElement).dataset.change} ${(r as HTMLElement).dataset.path}`));
    expect(diff).toEqual(['changed db.host', 'changed feature.search', 'removed hosts', 'added ingress', 'changed replicas']);
    expect(diff.some((d) => d.includes('password'))).toBe(false);
    expect(previous.id).toBeLessThan(current.id);
    // the inventory of the current release, grouped by namespace
    const groups = await page.locator('#inventory-table tbody').evaluateAll((bodies) => bodies.map((b) => (b as HTMLElement).dataset.namespace));
    expect(groups).toContain('shop-prod');
    const objects = await page.locator('#inventory-table tbody[data-namespace="shop-prod"] tr[data-kind]').evaluateAll((rows) =>
      rows.map((r) => `${(r as HTMLElement).dataset.kind}/${(r as HTMLElement).dataset.name}`));
    expect(objects).toEqual(expect.arrayContaining(['ConfigMap/shop-settings', 'Deployment/shop', 'Service/shop']));

    // marks: drift repair, superseded, teardown; the rollback command on succeeded releases only
    await expect(page.locator('#history [data-action-id="test-drift"]').getAttribute('data-marks')).resolves.toBe('drift-repair');
    await expect(page.locator('#history [data-action-id="test-drift"] .mark').textContent()).resolves.toBe('drift repair');
    await expect(page.locator('#history [data-action-id="test-superseded"]').getAttribute('data-marks')).resolves.toBe('superseded');
    await expect(page.locator('#history [data-action-id="test-teardown"]').getAttribute('data-marks')).resolves.toBe('teardown');
    expect(await page.locator('#history [data-action-id^="test-"] .rollback-command').count()).toBe(0);
    await expect(page.locator(`#history [data-history-id="${previous.id}"] .rollback-command`).textContent()).resolves.toBe(`keelson rollback shop prod --release ${previous.id}`);
    await expect(page.locator(`#history [data-history-id="${current.id}"] .rollback-command`).textContent()).resolves.toBe(`keelson rollback shop prod --release ${current.id}`);
    // read-only: no form, no button other than copy/zoom/navigation acts on the deployment
    expect(await page.locator('form:not(#token-form)').count()).toBe(0);

    // notifications: the dead delivery highlighted with its last error
    await expect(page.locator('#notifications-dead').textContent()).resolves.toBe('1 dead');
    const dead = page.locator(`#notifications tr[data-event-id="${event.id}"] .delivery[data-status="dead"]`);
    await expect(dead.locator('.delivery-error').textContent()).resolves.toBe('connect ECONNREFUSED 127.0.0.1:9');
    expect(await page.locator('#notifications tr[data-type="deploy.succeeded"]').count()).toBeGreaterThanOrEqual(2);

    // never the unredacted values
    const html = await page.content();
    expect(html).not.toContain(CANARY_1);
    expect(html).not.toContain(CANARY_2);
    const text = await page.evaluate(() => document.body.innerText);
    expect(text).not.toContain(CANARY_2);
    // nor what the page reads: the snapshot (its context keeps values_override), history, notifications
    const { snapshot: served, history: servedHistory } = await page.evaluate(async (bearer) => {
      const read = async (p: string) => (await fetch(`/api/projects/shop/deployments/prod/${p}`, { headers: { authorization: `Bearer ${bearer}` } })).text();
      return { snapshot: await read('snapshot'), history: await read('history') + await read('notifications') };
    }, token);
    expect(served).toContain('"valuesOverride"');
    expect(served).toContain('[redacted]');
    for (const body of [served, servedHistory]) {
      expect(body).not.toContain(CANARY_1);
      expect(body).not.toContain(CANARY_2);
    }

    await page.locator('#release').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(ARTIFACTS, 'release.png'), fullPage: true });
    await page.evaluate(() => document.getElementById('release')?.scrollIntoView());
    await page.screenshot({ path: path.join(ARTIFACTS, 'release-view.png'), fullPage: false });
    expect(pageErrors).toEqual([]);
  });
});
